"""Score audio files with a detector and evaluate it on a labelled manifest (what ``eval/harness.py`` runs).

Each file is decoded, mixed to mono and resampled to 16 kHz by :func:`apallm.load_audio` before the detector
hears it, so no detector can tell the labels apart by file format or sample rate. A file that fails to load
is reported and skipped. The detector's P(spoof) becomes a bona fide score by
:func:`apallm.evaluation.core.bonafide_log_odds`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from apallm.audio import DEFAULT_MAX_DURATION_S, Clip, load_audio
from apallm.datasets.manifest import ManifestEntry
from apallm.detectors import Detector
from apallm.errors import AudioError
from apallm.evaluation.core import N_BOOT, bonafide_log_odds, evaluate_files
from apallm.evaluation.errors import DetectorOutputError
from apallm.evaluation.inputs import Trials, join_scores, read_keys, read_scores, write_keys, write_scores
from apallm.evaluation.report import write_report

__all__ = ["ClipFailure", "score_files", "evaluate_manifest"]

#: key columns written for a manifest: its entries' attack (as ``system``) and source (as ``source_repo``, the
#: group), named as realworld-dev's manifest.tsv names them
MANIFEST_COLUMNS = ("system", "source_repo")


@dataclass(frozen=True)
class ClipFailure:
    """A file that could not be scored: its id, the error type and message."""

    ref: str
    error: str
    message: str


def _check_output(p_spoof: Any, batch: Sequence[Clip], name: str) -> np.ndarray:
    try:
        p = np.asarray(p_spoof, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DetectorOutputError(f"detector {name!r} returned {type(p_spoof).__name__}, not numbers: {exc}") from None
    if p.shape != (len(batch),):
        raise DetectorOutputError(f"detector {name!r} returned shape {p.shape} for {len(batch)} clips; "
                                  f"expected ({len(batch)},)")
    bad = [f"{clip.id}: {value!r}" for clip, value in zip(batch, p.tolist(), strict=True)
           if not (np.isfinite(value) and 0.0 <= value <= 1.0)]
    if bad:
        raise DetectorOutputError(f"detector {name!r} returned {len(bad)} value(s) that are not a P(spoof) in "
                                  f"[0, 1]: {', '.join(bad[:5])}")
    return p


def score_files(detector: Detector, files: Sequence[tuple[str, str | os.PathLike]], *, batch_size: int = 8,
                on_failure: Callable[[ClipFailure], None] | None = None,
                max_duration_s: float | None = DEFAULT_MAX_DURATION_S) -> tuple[dict[str, float], list[ClipFailure]]:
    """P(spoof) of each file: ``{id: p}`` for the files scored, and the failures.

    Args:
        detector: any :class:`apallm.detectors.Detector`.
        files: ``(id, path)`` pairs; the id names the clip (``Clip.id``) and keys the result.
        batch_size: clips handed to ``detector.score`` at once.
        on_failure: called with each :class:`ClipFailure` as it happens (e.g. to print it).
        max_duration_s: a longer file fails with ``AudioTooLongError`` (None: no limit).

    Raises:
        DetectorOutputError: the detector returned something other than one P(spoof) in [0, 1] per clip.
        ValueError: ``batch_size < 1``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    scores: dict[str, float] = {}
    failures: list[ClipFailure] = []
    batch: list[Clip] = []

    def flush() -> None:
        p = _check_output(detector.score(batch), batch, detector.name)
        scores.update((clip.id, float(value)) for clip, value in zip(batch, p, strict=True))
        batch.clear()

    for ref, path in files:
        try:
            batch.append(load_audio(path, clip_id=ref, max_duration_s=max_duration_s))
        except AudioError as exc:
            failures.append(ClipFailure(ref, type(exc).__name__, exc.message))
            if on_failure is not None:
                on_failure(failures[-1])
            continue
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return scores, failures


def evaluate_manifest(entries: Sequence[ManifestEntry], out_dir: str | os.PathLike, *,
                      detector: Detector | None = None, scores: str | os.PathLike | None = None,
                      batch_size: int = 8, n_boot: int = N_BOOT, seed: int = 0,
                      title: str = "Spoofing countermeasure evaluation",
                      on_failure: Callable[[ClipFailure], None] | None = None,
                      max_duration_s: float | None = DEFAULT_MAX_DURATION_S
                      ) -> tuple[Trials, dict[str, Any], list[ClipFailure]]:
    """Evaluate a detector (or pre-computed scores) on manifest entries and write the report into ``out_dir``.

    ``entries`` (:class:`~apallm.datasets.ManifestEntry`, e.g. from ``build_manifest("realworld-dev", root)``)
    name each clip by ``id`` and read it from ``path``. Writes ``scores.tsv`` and ``keys.tsv`` (ASVspoof 5
    format, keyed by ``id``; the keys carry the attack as the ``system`` column and the source as
    ``source_repo``, ``unknown`` where null), then evaluates them exactly as ``apallm eval --scores scores.tsv
    --keys keys.tsv --group-by source_repo`` does: per-system table (each spoof system against all bona fide)
    and per-source table.

    Args:
        detector: scores each clip (decoded to 16 kHz mono); clips that fail to load are skipped.
        scores: instead of a detector, a score table keyed by the entries' ids or their stems; every entry needs
            a score.

        title: the title of ``summary.md``.
        max_duration_s: longer clips fail to load and are skipped (see :func:`score_files`).

    Returns:
        ``(trials, metrics.json dict, failures)``; the files that failed to load are also listed in
        ``metrics.json`` under ``skipped`` (``[{"id", "error", "message"}]``).

    Raises:
        EvaluationInputError (e.g. MissingIdsError for pre-computed scores, DetectorOutputError).
        ValueError: both or neither of ``detector`` and ``scores``.
    """
    if (detector is None) == (scores is None):
        raise ValueError("give exactly one of detector and scores")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys_path, scores_path = out / "keys.tsv", out / "scores.tsv"
    failures: list[ClipFailure] = []
    if detector is not None:
        p_spoof, failures = score_files(detector, [(entry.id, entry.path) for entry in entries],
                                        batch_size=batch_size, on_failure=on_failure, max_duration_s=max_duration_s)
        entries = [entry for entry in entries if entry.id in p_spoof]
    write_keys(keys_path, [(entry.id, entry.label, entry.attack or "unknown", entry.source or "unknown")
                           for entry in entries], MANIFEST_COLUMNS)
    if detector is not None:
        write_scores(scores_path, zip([entry.id for entry in entries],
                                      bonafide_log_odds([p_spoof[entry.id] for entry in entries]), strict=True))
    else:
        joined = join_scores(read_scores(scores), read_keys(keys_path), str(scores))
        write_scores(scores_path, zip(joined.ids, joined.scores, strict=True))
    trials, result = evaluate_files(keys=keys_path, scores=scores_path, group_by=("source_repo",), n_boot=n_boot,
                                    seed=seed)
    if failures:
        result["skipped"] = [{"id": f.ref, "error": f.error, "message": f.message} for f in failures]
    write_report(result, trials, out, title=title)
    return trials, result, failures

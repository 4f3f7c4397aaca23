"""Grounded training targets: ``apallm annotate MANIFEST -o sft.jsonl [--seed 0]``.

For every clip of a manifest the cues are measured (the first ``window_s`` seconds, the window
``apallm train sft`` feeds the model by default) and the target answer is written in the canonical answer
format (:func:`apallm.verdict.format_answer`): the label, a frequency-domain and a time-domain rationale citing
the cues of the rationale vocabulary (``cite`` in prompts/cues.yaml) that support the label (out of range for
``spoof``, in range for ``bonafide``, at most ``max_cues`` per domain, in the order of
:func:`apallm.evidence.measure_cues`, as :meth:`apallm.evidence.Evidence.supporting_cues` picks them; without one,
a sentence that says so), ``Regions`` from the manifest's spoof ``segments`` and ``System`` from its ``attack``
(spoof rows).

Each cited cue is phrased through one of the phrasings of ``prompts/rationale.yaml`` for its status, drawn by
a ``random.Random`` seeded with ``"<seed>:<clip id>"``: the same seed gives the same targets, another seed other
wordings of the same facts. Only measured values (formatted with the cue's ``fmt``) and the natural ranges are
written, so every target is grounded (:mod:`apallm.grounding`).

An optional ``rephrase(text) -> text`` hook (a local LLM, off by default) rewrites each domain's rationale; a
rewrite is kept only when it cites the same cues, statuses and numbers (:func:`apallm.grounding.same_facts`)
and none of its claims is contradicted by the measurements; else the template text stays.

Output rows: the manifest row, its ``path`` resolved (relative paths from the manifest's folder), and
``target``. A clip that cannot be read or measured, or a row without a usable path and label, is reported on
stderr and skipped; the run goes on.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from apallm.verdict import canonical_label, format_answer

if TYPE_CHECKING:  # the measuring stack (librosa) loads only when annotating, not for ``apallm --help``
    from apallm.evidence import Cue, Evidence

__all__ = ["AnnotateStats", "Target", "annotate_manifest", "annotate_row", "domain_rationale", "make_target",
           "phrase_cue"]

MAX_CUES = 3
WINDOW_S = 30.0
Rephrase = Callable[[str], str]


def _band(name: str) -> str | None:
    parts = name.split("_")
    if not name.startswith("band_energy_") or len(parts) != 4:
        return None
    lo, hi = int(parts[2]), int(parts[3])
    return f"{lo:g}-{hi:g} Hz" if hi < 1000 else f"{lo / 1000:g}-{hi / 1000:g} kHz"


def _fields(cue: Cue) -> dict[str, str]:
    from apallm.evidence.cues import cue_specs

    spec = cue_specs()[cue.name]
    fmt = spec.get("fmt", "{:g}")
    lo, hi = (float(x) for x in spec["range"])
    fields = {"v": "" if cue.value is None else fmt.format(cue.value), "lo": fmt.format(lo), "hi": fmt.format(hi),
              "unit": spec.get("unit", "")}
    band = _band(cue.name)
    if band:
        fields["band"] = band
    freq = (cue.detail or {}).get("freq_hz")
    if isinstance(freq, (int, float)):
        fields["freq"] = f"{freq:.0f}"
    if cue.name == "splice_candidates":
        times = (cue.detail or {}).get("times_s") or []
        fields["times"] = ", ".join(f"{t:.2f} s" for t in times) or "none"
    return fields


def phrase_cue(cue: Cue, rng: random.Random) -> str:
    """One phrasing of ``cue`` at its measured status, drawn from ``prompts/rationale.yaml`` (the ``cues.yaml``
    phrase when the file has none for that status)."""
    from apallm.evidence.cues import cue_specs
    from apallm.rationale import rationale_phrasings

    templates = (rationale_phrasings().get(cue.name, {}).get(cue.status)
                 or (cue_specs()[cue.name]["phrase"][cue.status],))
    return rng.choice(templates).format(**_fields(cue))


def domain_rationale(evidence: Evidence, domain: str, label: str, rng: random.Random, max_cues: int = MAX_CUES) -> str:
    """The citable cues of ``domain`` that support ``label`` (:meth:`Evidence.supporting_cues`), phrased and
    joined with ``"; "``."""
    chosen = evidence.supporting_cues(domain, label, max_cues)
    if not chosen:
        from apallm.evidence import no_supporting_cue

        return no_supporting_cue(domain, label)
    return "; ".join(phrase_cue(c, rng) for c in chosen)


def _rephrased(text: str, evidence: Evidence, rephrase: Rephrase) -> tuple[str, bool]:
    """``(text to use, accepted)``: the rewrite when it keeps every fact and contradicts no measurement."""
    from apallm.grounding import check_grounding, same_facts

    try:
        new = rephrase(text)
    except Exception:  # a rewriting model failing must not cost the clip its target
        return text, False
    if not isinstance(new, str) or not new.strip() or "\n" in new.strip():
        return text, False
    if not same_facts(text, new) or check_grounding(new, evidence).n_contradicted:
        return text, False
    return new.strip(), True


@dataclass
class Target:
    """An annotation: the answer text and how many rewrites the rephrase hook had rejected."""

    text: str
    rephrase_rejected: int = 0


def make_target(evidence: Evidence, label: str, *, rng: random.Random, regions=None, system: str | None = None,
                max_cues: int = MAX_CUES, rephrase: Rephrase | None = None) -> Target:
    """The canonical answer for ``label`` phrased from ``evidence`` (see the module notes)."""
    canon = canonical_label(label)
    if canon is None:
        raise ValueError(f"label must be 'bonafide' or 'spoof', got {label!r}")
    parts, rejected = [], 0
    for domain in ("frequency", "time"):
        text = domain_rationale(evidence, domain, canon, rng, max_cues)
        if rephrase is not None:
            text, ok = _rephrased(text, evidence, rephrase)
            rejected += not ok
        parts.append(text)
    return Target(format_answer(canon, *parts, regions=regions, system=system if canon == "spoof" else None), rejected)


def _regions(segments, duration_s: float | None = None) -> list[tuple[float, float]]:
    """The spoof segments as ``(start, end)``, cut to the measured window ``[0, duration_s]``."""
    out = []
    for seg in segments or ():
        if isinstance(seg, dict) and seg.get("label") == "spoof":
            start, end = float(seg["start"]), float(seg["end"])
            if duration_s is not None:
                end = min(end, duration_s)
            if 0 <= start < end:
                out.append((start, end))
    return out


def annotate_row(row: dict, manifest: str | Path, *, seed: int = 0, max_cues: int = MAX_CUES,
                 window_s: float | None = WINDOW_S, rephrase: Rephrase | None = None) -> tuple[dict, Target]:
    """Measure one manifest row's clip and return ``(output row, target)``.

    Raises:
        ValueError: no path or no bonafide/spoof label; apallm.AudioError: the clip cannot be read.
    """
    from apallm.audio import load_audio, split_windows
    from apallm.datasets.manifest import resolve_path
    from apallm.evidence import EvidenceConfig, extract_evidence

    if not isinstance(row.get("path"), str) or not row["path"].strip():
        raise ValueError("the row has no path")
    label = canonical_label(str(row.get("label") or ""))
    if label is None:
        raise ValueError(f"label must be 'bonafide' or 'spoof', got {row.get('label')!r}")
    path = resolve_path(row["path"], manifest)
    clip_id = str(row.get("id") or path.stem)
    clip = load_audio(path, clip_id=clip_id)
    duration_s = None
    if window_s:
        whole = len(clip.waveform)
        clip = split_windows(clip, window_s=window_s, policy="first")[0]
        if len(clip.waveform) < whole:  # regions past the window are not in what was measured
            duration_s = len(clip.waveform) / clip.sample_rate
    evidence = extract_evidence(clip, EvidenceConfig(render_image=False))
    attack = row.get("attack")
    system = attack if isinstance(attack, str) and attack.strip() and attack not in ("bonafide", "-") else None
    target = make_target(evidence, label, rng=random.Random(f"{seed}:{clip_id}"),
                         regions=_regions(row.get("segments"), duration_s), system=system, max_cues=max_cues,
                         rephrase=rephrase)
    return {**row, "path": str(path), "target": target.text}, target


@dataclass
class AnnotateStats:
    written: int = 0
    skipped: int = 0
    rephrase_rejected: int = 0


def annotate_manifest(manifest: str | Path, out: str | Path, *, seed: int = 0, max_cues: int = MAX_CUES,
                      window_s: float | None = WINDOW_S, rephrase: Rephrase | None = None,
                      log: TextIO | None = None) -> AnnotateStats:
    """Write one output row per usable manifest row to the JSONL ``out``; report skipped rows on ``log``
    (stderr by default).

    Raises:
        apallm.datasets.ManifestError: the manifest cannot be read at all (unknown format, bad CSV header).
    """
    from apallm.datasets.manifest import ManifestError, iter_records

    log = sys.stderr if log is None else log
    stats = AnnotateStats()
    errors: list[ManifestError] = []
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for line, row in iter_records(manifest, errors=errors):
            name = row.get("id") or row.get("path") or f"line {line}"
            try:
                record, target = annotate_row(row, manifest, seed=seed, max_cues=max_cues, window_s=window_s,
                                              rephrase=rephrase)
            except Exception as exc:  # one bad clip never stops the run
                stats.skipped += 1
                print(f"apallm annotate: skipped {name} ({manifest}:{line}): {type(exc).__name__}: {exc}", file=log)
                continue
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            stats.written += 1
            stats.rephrase_rejected += target.rephrase_rejected
    for exc in errors:
        stats.skipped += 1
        print(f"apallm annotate: skipped a row: {exc}", file=log)
    return stats

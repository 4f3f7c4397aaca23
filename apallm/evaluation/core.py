"""Metrics of joined trials, of a detector's predictions, and of score/key files: the ``metrics.json`` content.

Every number comes from :mod:`apallm.metrics` (ASVspoof semantics, scores higher = more bona fide):

* pooled: :func:`apallm.metrics.compute_metrics` (``eer``, ``eer_threshold``, ``min_dcf``, ``act_dcf``,
  ``cllr``, ``min_tdcf``, ``n_bonafide``, ``n_spoof``) and a stratified percentile bootstrap interval of the
  EER (:func:`apallm.metrics.bootstrap_eer_ci`);
* ``per_attack``: the same metrics for each attack's spoof trials against *all* bona fide trials, as the
  ASVspoof evaluation package reports them;
* ``groups``: for each value of a key column (a codec, a data source), the metrics of the trials with that
  value, where both labels occur (else only the counts);
* ``predictions``: for a predictions file, label accuracy, format validity of the rationales,
  label-rationale consistency (:mod:`apallm.rationale`) and, for records that carry their clip's measured
  cues, grounding of the rationale's claims (:mod:`apallm.grounding`, see :func:`evaluate_predictions`).

Predictions carry P(spoof); they are scored as the log-odds of bona fide, ``ln((1 - p) / p)`` with ``p``
clipped to ``[P_CLIP, 1 - P_CLIP]``: a natural-log likelihood ratio when ``p`` is a calibrated posterior under
equal priors, as actDCF and Cllr assume. The clipping keeps scores finite; clips scored beyond it tie.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apallm import metrics
from apallm.evaluation.errors import MalformedInputError, UnreadableInputError
from apallm.evaluation.inputs import (
    Keys,
    Predictions,
    Trials,
    apply_attacks,
    join_scores,
    keyed_trials,
    match_predictions,
    read_attacks,
    read_keys,
    read_manifest_attacks,
    read_predictions,
    read_scores,
)
from apallm.rationale import CONSISTENT, INCONSISTENT, UNVERIFIABLE, find_claims, judge_consistency

__all__ = ["P_CLIP", "N_BOOT", "CI_ALPHA", "bonafide_log_odds", "evaluate", "evaluate_predictions",
           "evaluate_files", "rationale_text"]

#: P(spoof) is clipped to [P_CLIP, 1 - P_CLIP] before taking log-odds (scores within +-13.8).
P_CLIP = 1e-6
#: bootstrap replicates for the EER confidence interval
N_BOOT = 1000
#: the EER interval covers 1 - CI_ALPHA (95 %)
CI_ALPHA = 0.05
SCORE_CONVERSION = f"cm-score = ln((1 - p) / p), p = P(spoof) clipped to [{P_CLIP:g}, 1 - {P_CLIP:g}]"


def bonafide_log_odds(p_spoof: Sequence[float] | np.ndarray) -> np.ndarray:
    """Bona fide scores from P(spoof): ``ln((1 - p) / p)`` with ``p`` clipped to ``[P_CLIP, 1 - P_CLIP]``."""
    p = np.clip(np.asarray(p_spoof, dtype=np.float64), P_CLIP, 1.0 - P_CLIP)
    return np.log1p(-p) - np.log(p)


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _metrics_or_counts(bona: np.ndarray, spoof: np.ndarray) -> dict[str, Any]:
    if bona.size and spoof.size:
        return metrics.compute_metrics(bona, spoof)
    return {"eer": None, "n_bonafide": int(bona.size), "n_spoof": int(spoof.size)}


def evaluate(trials: Trials, *, group_by: Sequence[str] = (), n_boot: int = N_BOOT, seed: int = 0) -> dict[str, Any]:
    """The metrics of ``trials`` as a JSON-ready dict (see the module notes; the keys are listed in the README).

    Args:
        trials: joined trials with both labels.
        group_by: columns of ``trials.groups`` to break the results down by.
        n_boot: bootstrap replicates for ``eer_ci``; 0 leaves the interval out (``null``).
        seed: seed of the bootstrap generator (the interval is reproducible).

    Raises:
        MalformedInputError: a ``group_by`` column is not in the keys.
    """
    bona, spoof = trials.bonafide_scores, trials.spoof_scores
    result: dict[str, Any] = metrics.compute_metrics(bona, spoof)
    result["eer_ci"] = list(metrics.bootstrap_eer_ci(bona, spoof, n_boot=n_boot, alpha=CI_ALPHA, seed=seed)) \
        if n_boot else None
    result["eer_ci_level"] = 1.0 - CI_ALPHA
    result["bootstrap"] = {"n_boot": int(n_boot), "seed": seed, "method": "stratified percentile bootstrap"}
    result["score_convention"] = "higher = more bona fide"

    result["attack_column"] = trials.attack_column
    per_attack = []
    attacks = sorted({a for a in trials.attacks if a is not None}, key=_natural_key)
    attack_of = np.array([a if a is not None else "" for a in trials.attacks], dtype=object)
    for attack in attacks:
        per_attack.append({"attack": attack, **metrics.compute_metrics(bona, trials.scores[attack_of == attack])})
    result["per_attack"] = per_attack

    groups: dict[str, list[dict[str, Any]]] = {}
    is_bona = trials.mask("bonafide")
    for column in group_by:
        if column.lower() not in trials.groups:
            have = ", ".join(trials.groups) or "none besides id, label and attack"
            raise MalformedInputError(f"the keys have no column {column!r} to group by (other columns: {have})")
        values = np.array(trials.groups[column.lower()], dtype=object)
        groups[column.lower()] = [
            {"value": value, **_metrics_or_counts(trials.scores[(values == value) & is_bona],
                                                  trials.scores[(values == value) & ~is_bona])}
            for value in sorted(set(values), key=_natural_key)]
    result["groups"] = groups
    return result


def rationale_text(answer: str | None, rationale: object) -> tuple[str, bool]:
    """The text a record's rationale says, and whether its format is valid.

    The ``answer`` text when there is one (valid when :func:`apallm.verdict.parse_answer` reads it fully:
    label, ``Frequency:`` and ``Time:``), else the ``rationale`` object (valid when it is
    ``{"frequency": ..., "time": ...}`` with both fields non-empty strings). A missing rationale is invalid.
    """
    from apallm.verdict import parse_answer

    if answer is not None:
        return answer, parse_answer(answer).ok
    if isinstance(rationale, dict):
        parts = [rationale.get(k) for k in ("frequency", "time")]
        valid = all(isinstance(p, str) and p.strip() for p in parts)
        return "\n".join(p for p in parts if isinstance(p, str)), valid
    if isinstance(rationale, str):
        return rationale, False
    return "", False


def _share(n: int, total: int) -> float | None:
    return n / total if total else None


def _consistency_counts(verdicts: list[str]) -> dict[str, Any]:
    counts = {key: verdicts.count(key) for key in (CONSISTENT, INCONSISTENT, UNVERIFIABLE)}
    verifiable = counts[CONSISTENT] + counts[INCONSISTENT]
    return {**counts, "rate": _share(counts[CONSISTENT], verifiable),
            "verifiable_rate": _share(verifiable, len(verdicts))}


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _dir_evidence(evidence_dir: Path, names: Sequence[str]) -> dict | None:
    """The ``<id>.json`` (or ``<stem of path>.json``) that ``apallm evidence`` wrote for a record, if any."""
    for name in names:
        for stem in dict.fromkeys((name, Path(name).stem)):
            path = evidence_dir / f"{stem}.json"
            if stem and path.is_file():
                try:
                    return json.loads(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise MalformedInputError(f"{path}: not an evidence JSON file ({exc})", str(path)) from exc
    return None


def grounding_summary(reports: Sequence[Any], n_scored: int,
                      none: Sequence[tuple[int, int]] = ()) -> dict[str, Any]:
    """The ``grounding`` block from per-record :class:`apallm.grounding.GroundingReport` s and, per record, the
    (held, contradicted) counts of :func:`apallm.grounding.check_none_statements` (see
    :func:`evaluate_predictions`)."""
    with_claims = [r for r in reports if r.n_claims]
    covered = [r.coverage for r in reports if r.coverage is not None]
    with_none = [(held, bad) for held, bad in none if held + bad]
    return {
        "n_with_evidence": len(reports),
        "n_without_evidence": n_scored - len(reports),
        "n_with_claims": len(with_claims),
        "n_claims": sum(r.n_claims for r in with_claims),
        "n_grounded": sum(r.n_grounded for r in with_claims),
        "n_contradicted": sum(r.n_contradicted for r in with_claims),
        "grounded_precision": _mean([r.precision for r in with_claims]),
        "contradiction_rate": _mean([r.n_contradicted / r.n_claims for r in with_claims]),
        "coverage": _mean(covered),
        "n_with_none_statements": len(with_none),
        "n_none_statements": sum(held + bad for held, bad in with_none),
        "n_none_contradicted": sum(bad for _, bad in with_none),
        "none_contradiction_rate": _mean([bad / (held + bad) for held, bad in with_none]),
    }


def evaluate_predictions(predictions: Predictions, keys: Keys,
                         evidence_dir: str | os.PathLike | None = None) -> tuple[Trials, dict[str, Any]]:
    """Join a predictions file to its keys; return the trials (scored records) and the ``predictions`` block.

    The block: ``n_records``, ``n_scored``, ``n_errors`` and ``errors`` (``[{"id", "line", "error"}]``, error
    records, left out of every metric); ``score_conversion``; ``accuracy``, ``balanced_accuracy`` and
    ``macro_f1`` of the predicted labels against the keys, ``n_labels_from_score`` (records whose label was
    taken as ``p >= 0.5``); ``rationale``: ``n_valid`` and ``valid_rate`` of the format (see
    :func:`rationale_text`); ``consistency``: counts of consistent / inconsistent / unverifiable records
    (:func:`apallm.rationale.judge_consistency` on the predicted label), ``rate`` = consistent / verifiable,
    ``verifiable_rate`` = verifiable / scored, and the same ``by_label`` (predicted label); ``grounding``: the
    rationale's claims checked against the clip's measured cues (:func:`apallm.grounding.check_grounding`) for
    the records that carry them (``evidence`` with ``cues``, as ``apallm batch --evidence`` writes, else the
    ``<id>.json`` or ``<stem of path>.json`` that ``apallm evidence`` wrote into ``evidence_dir``):
    ``grounded_precision`` is the mean over records with at least one recognised claim of grounded claims /
    claims, ``contradiction_rate`` the mean over the same records of contradicted claims / claims (a claim is
    grounded when its cue's measured status is the claimed one and its cited numbers match the measurement
    within the rounding of the cue's format; contradicted when the status or a number differs), ``coverage``
    the mean over records whose clip has out-of-range cues of the share of them cited; ``n_with_evidence``,
    ``n_without_evidence``, ``n_with_claims``, and the claim counts ``n_claims``, ``n_grounded``,
    ``n_contradicted``; and the rationale's "no cue lies outside / inside the range" statements
    (:func:`apallm.grounding.check_none_statements`): ``n_with_none_statements``, ``n_none_statements``,
    ``n_none_contradicted`` and ``none_contradiction_rate``, the mean over records with such a statement of
    contradicted / statements (one is contradicted when a citable cue of its domain was measured on the side of
    its range that it denies). The means are null when no record qualifies.

    Raises:
        MissingIdsError, AmbiguousIdError, DuplicateIdError, SingleClassError; UnreadableInputError
        (``evidence_dir`` is not a folder); MalformedInputError (an evidence file that is not JSON).
    """
    from apallm.grounding import check_grounding, check_none_statements, measurements

    if evidence_dir is not None and not Path(evidence_dir).is_dir():
        raise UnreadableInputError(f"{evidence_dir}: the evidence folder does not exist", str(evidence_dir))
    key_ids = list(keys.labels)
    scored, failed = match_predictions(predictions, keys)
    order = sorted(range(len(scored)), key=lambda r: scored[r])
    records = [predictions.records[r] for r in order]
    trials = keyed_trials(keys, [key_ids[scored[r]] for r in order], bonafide_log_odds([p.p_spoof for p in records]))

    # predicted labels as +-1 scores against threshold 0: accuracy etc. of the hard decisions
    decisions = np.array([1.0 if p.label == "bonafide" else -1.0 for p in records])
    is_bona = trials.mask("bonafide")
    hard = (decisions[is_bona], decisions[~is_bona])

    valid, verdicts, by_label, grounding, none = 0, [], {"bonafide": [], "spoof": []}, [], []
    for p in records:
        text, ok = rationale_text(p.answer, p.rationale)
        valid += ok
        claims = find_claims(text)
        verdict = judge_consistency(p.label, claims)
        verdicts.append(verdict)
        by_label[p.label].append(verdict)
        evidence = p.evidence
        if not measurements(evidence if isinstance(evidence, dict) else None) and evidence_dir is not None:
            evidence = _dir_evidence(Path(evidence_dir), p.names)
        if isinstance(evidence, dict) and measurements(evidence):
            grounding.append(check_grounding(claims, evidence))
            none.append(check_none_statements(text, evidence))
    errors = [{"id": names[0], "line": line, "error": error} for names, line, error in predictions.errors]
    block = {
        "n_records": len(predictions.records) + len(predictions.errors),
        "n_scored": len(records),
        "n_errors": len(errors),
        "errors": errors,
        "score_conversion": SCORE_CONVERSION,
        "accuracy": metrics.accuracy(*hard),
        "balanced_accuracy": metrics.balanced_accuracy(*hard),
        "macro_f1": metrics.macro_f1(*hard),
        "n_labels_from_score": sum(p.label_from_score for p in records),
        "rationale": {"n_valid": valid, "valid_rate": _share(valid, len(records))},
        "consistency": {**_consistency_counts(verdicts),
                        "by_label": {label: _consistency_counts(v) for label, v in by_label.items()}},
        "grounding": grounding_summary(grounding, len(records), none),
    }
    return trials, block


def evaluate_files(*, keys: str | os.PathLike, scores: str | os.PathLike | None = None,
                   predictions: str | os.PathLike | None = None, attacks: str | os.PathLike | None = None,
                   manifest: str | os.PathLike | None = None, group_by: Sequence[str] = (), n_boot: int = N_BOOT,
                   seed: int = 0, evidence_dir: str | os.PathLike | None = None) -> tuple[Trials, dict[str, Any]]:
    """Read, join and evaluate files, as ``apallm eval`` does: return the trials and the ``metrics.json`` dict.

    Exactly one of ``scores`` (a CM score table) and ``predictions`` (a predictions JSONL) is given; at most
    one of ``attacks`` (an attack table) and ``manifest`` (a JSONL manifest), which then replaces the keys'
    attack column for the per-attack table. ``evidence_dir`` (predictions only): a folder of ``apallm evidence``
    JSON files for records without their own ``evidence`` (see :func:`evaluate_predictions`).

    Raises:
        EvaluationInputError: a subclass naming what is wrong with which input.
        ValueError: both or neither of scores/predictions, or both attacks and manifest.
    """
    if (scores is None) == (predictions is None):
        raise ValueError("give exactly one of scores and predictions")
    if attacks is not None and manifest is not None:
        raise ValueError("give at most one of attacks and manifest")
    if evidence_dir is not None and predictions is None:
        raise ValueError("evidence_dir goes with predictions")
    key_table = read_keys(keys)
    block = None
    if scores is not None:
        trials = join_scores(read_scores(scores), key_table, str(scores))
    else:
        trials, block = evaluate_predictions(read_predictions(predictions), key_table, evidence_dir=evidence_dir)
    if attacks is not None:
        trials = apply_attacks(trials, read_attacks(attacks), str(attacks))
    elif manifest is not None:
        trials = apply_attacks(trials, read_manifest_attacks(manifest, key_table), str(manifest))
    result = evaluate(trials, group_by=group_by, n_boot=n_boot, seed=seed)
    if block is not None:
        result["predictions"] = block
    result["inputs"] = {name: None if value is None else str(value) for name, value in (
        ("scores", scores), ("predictions", predictions), ("keys", keys), ("attacks", attacks),
        ("manifest", manifest))}
    if evidence_dir is not None:
        result["inputs"]["evidence_dir"] = str(evidence_dir)
    return trials, result

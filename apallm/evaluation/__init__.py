"""Evaluation of spoofing countermeasures: ASVspoof-style score/key files, detector predictions, reports.

>>> from apallm.evaluation import evaluate_files, write_report
>>> trials, result = evaluate_files(scores="scores.tsv", keys="keys.tsv")    # doctest: +SKIP
>>> result["eer"], result["min_dcf"], result["per_attack"]                    # doctest: +SKIP
>>> write_report(result, trials, "eval_out")    # metrics.json, summary.md, det.png, hist.png  # doctest: +SKIP

Modules: :mod:`~apallm.evaluation.inputs` (reading and joining files), :mod:`~apallm.evaluation.core`
(metrics), :mod:`~apallm.evaluation.report` and :mod:`~apallm.evaluation.plots` (outputs),
:mod:`~apallm.evaluation.runner` (scoring audio with a detector), :mod:`~apallm.evaluation.cli`
(``apallm eval``), :mod:`~apallm.evaluation.errors` (one exception per kind of bad input).
"""

from apallm.evaluation.core import P_CLIP, bonafide_log_odds, evaluate, evaluate_files, evaluate_predictions
from apallm.evaluation.errors import (
    AmbiguousIdError,
    DetectorOutputError,
    DuplicateIdError,
    EvaluationInputError,
    LabelMismatchError,
    MalformedInputError,
    MissingIdsError,
    NonFiniteScoreError,
    SingleClassError,
    UnknownLabelError,
    UnreadableInputError,
)
from apallm.evaluation.inputs import Keys, Trials, read_keys, read_predictions, read_scores, write_keys, write_scores
from apallm.evaluation.report import summary_markdown, write_report
from apallm.evaluation.runner import ClipFailure, evaluate_manifest, score_files

__all__ = [
    "P_CLIP",
    "AmbiguousIdError",
    "ClipFailure",
    "DetectorOutputError",
    "DuplicateIdError",
    "EvaluationInputError",
    "Keys",
    "LabelMismatchError",
    "MalformedInputError",
    "MissingIdsError",
    "NonFiniteScoreError",
    "SingleClassError",
    "Trials",
    "UnknownLabelError",
    "UnreadableInputError",
    "bonafide_log_odds",
    "evaluate",
    "evaluate_files",
    "evaluate_manifest",
    "evaluate_predictions",
    "read_keys",
    "read_predictions",
    "read_scores",
    "score_files",
    "summary_markdown",
    "write_keys",
    "write_scores",
    "write_report",
]

"""Evaluation of spoofing countermeasures: ASVspoof-style score/key files, detector predictions, reports.

>>> from apallm.evaluation import evaluate_files, write_report
>>> trials, result = evaluate_files(scores="scores.tsv", keys="keys.tsv")    # doctest: +SKIP
>>> result["eer"], result["min_dcf"], result["per_attack"]                    # doctest: +SKIP
>>> write_report(result, trials, "eval_out")    # metrics.json, summary.md, det.png, hist.png  # doctest: +SKIP

Modules: :mod:`~apallm.evaluation.inputs` (reading and joining files), :mod:`~apallm.evaluation.core`
(metrics), :mod:`~apallm.evaluation.report` and :mod:`~apallm.evaluation.plots` (outputs),
:mod:`~apallm.evaluation.runner` (scoring audio with a detector), :mod:`~apallm.evaluation.errors` (one
exception per kind of bad input). The command ``apallm eval`` is :mod:`apallm.commands.eval`.
"""

from apallm._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "P_CLIP": ".core",
    "bonafide_log_odds": ".core",
    "evaluate": ".core",
    "evaluate_files": ".core",
    "evaluate_predictions": ".core",
    "AmbiguousIdError": ".errors",
    "DetectorOutputError": ".errors",
    "DuplicateIdError": ".errors",
    "EvaluationInputError": ".errors",
    "LabelMismatchError": ".errors",
    "MalformedInputError": ".errors",
    "MissingIdsError": ".errors",
    "NonFiniteScoreError": ".errors",
    "SingleClassError": ".errors",
    "UnknownLabelError": ".errors",
    "UnreadableInputError": ".errors",
    "Keys": ".inputs",
    "Trials": ".inputs",
    "read_keys": ".inputs",
    "read_predictions": ".inputs",
    "read_scores": ".inputs",
    "write_keys": ".inputs",
    "write_scores": ".inputs",
    "summary_markdown": ".report",
    "write_report": ".report",
    "ClipFailure": ".runner",
    "evaluate_manifest": ".runner",
    "score_files": ".runner",
})

"""Write an evaluation to a folder: ``metrics.json``, ``summary.md``, ``det.png`` and ``hist.png``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from apallm.evaluation.inputs import Trials

__all__ = ["OUTPUT_FILES", "format_headline", "summary_markdown", "write_report"]

OUTPUT_FILES = ("metrics.json", "summary.md", "det.png", "hist.png")
#: error messages listed in summary.md before "... and N more" (metrics.json lists them all)
SUMMARY_ERRORS = 10


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def _num(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def format_headline(result: dict[str, Any]) -> str:
    """One line: EER with its confidence interval and the trial counts, then minDCF, actDCF and Cllr."""
    ci = result.get("eer_ci")
    interval = f" [{100 * result['eer_ci_level']:.0f} % CI {_pct(ci[0])}-{_pct(ci[1])}]" if ci else ""
    return (f"EER {_pct(result['eer'])} %{interval} (n = {result['n_bonafide']} bona fide + {result['n_spoof']} "
            f"spoof); minDCF {_num(result['min_dcf'])}, actDCF {_num(result['act_dcf'])}, "
            f"Cllr {_num(result['cllr'])} bits, min t-DCF {_num(result['min_tdcf'])}")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _metric_cells(row: dict[str, Any]) -> list[str]:
    return [str(row["n_bonafide"]), str(row["n_spoof"]), _pct(row["eer"]), _num(row.get("min_dcf")),
            _num(row.get("act_dcf")), _num(row.get("cllr"))]


_METRIC_HEADER = ["n bona fide", "n spoof", "EER (%)", "minDCF", "actDCF", "Cllr (bits)"]


def summary_markdown(result: dict[str, Any], title: str = "Spoofing countermeasure evaluation") -> str:
    """The Markdown summary: headline metrics, per-attack and per-group tables, predictions block."""
    ci = result.get("eer_ci")
    lines = [f"# {title}", ""]
    inputs = {k: v for k, v in result.get("inputs", {}).items() if v is not None}
    if inputs:
        lines += [", ".join(f"{k}: `{v}`" for k, v in inputs.items()), ""]
    lines += [f"Scores: {result['score_convention']}. Costs as ASVspoof 5 (Pspoof 0.05, Cmiss 1, Cfa 10).", ""]
    lines += _table(["metric", "value"], [
        ["trials", f"{result['n_bonafide']} bona fide, {result['n_spoof']} spoof"],
        ["EER (%)", _pct(result["eer"])],
        [f"EER {100 * result['eer_ci_level']:.0f} % CI (%)",
         f"{_pct(ci[0])} - {_pct(ci[1])} ({result['bootstrap']['n_boot']} bootstrap replicates)" if ci else "n/a"],
        ["EER threshold", f"{result['eer_threshold']:.6g}"],
        ["minDCF", _num(result["min_dcf"])],
        ["actDCF", _num(result["act_dcf"])],
        ["Cllr (bits)", _num(result["cllr"])],
        ["min t-DCF", _num(result["min_tdcf"])],
    ])
    if result["per_attack"]:
        column = result.get("attack_column") or "attack"
        lines += ["", f"## Per {column}", "", f"Each {column}'s spoof trials against all bona fide trials.", ""]
        lines += _table([column] + _METRIC_HEADER,
                        [[row["attack"]] + _metric_cells(row) for row in result["per_attack"]])
    for column, rows in result.get("groups", {}).items():
        lines += ["", f"## Per {column}", "", f"Trials with each {column}; metrics where both labels occur.", ""]
        lines += _table([column] + _METRIC_HEADER, [[row["value"]] + _metric_cells(row) for row in rows])
    block = result.get("predictions")
    if block:
        cons = block["consistency"]
        lines += ["", "## Predictions", "", f"Scores: {block['score_conversion']}.", ""]
        lines += _table(["measure", "value"], [
            ["records", f"{block['n_records']} ({block['n_scored']} scored, {block['n_errors']} error records)"],
            ["accuracy", _num(block["accuracy"])],
            ["balanced accuracy", _num(block["balanced_accuracy"])],
            ["macro-F1", _num(block["macro_f1"])],
            ["labels taken from the score (p >= 0.5)", str(block["n_labels_from_score"])],
            ["rationale format valid", f"{block['rationale']['n_valid']} ({_pct(block['rationale']['valid_rate'])} %)"],
            ["label-rationale consistent / inconsistent / unverifiable",
             f"{cons['consistent']} / {cons['inconsistent']} / {cons['unverifiable']}"],
            ["consistency rate (of verifiable)", _pct(cons["rate"]) + " %"],
        ])
        lines += ["", "Consistency: a spoof answer must cite at least one out-of-range cue, a bona fide answer no "
                  "more out-of-range cues than in-range ones; answers citing no recognised cue phrase are "
                  "unverifiable."]
        ground = block.get("grounding")
        if ground and ground["n_with_evidence"]:
            lines += ["", "### Grounding", ""]
            lines += _table(["measure", "value"], [
                ["records with measured cues / with cue claims", f"{ground['n_with_evidence']} / "
                                                                 f"{ground['n_with_claims']}"],
                ["claims: grounded / contradicted / all",
                 f"{ground['n_grounded']} / {ground['n_contradicted']} / {ground['n_claims']}"],
                ["grounded precision (mean)", _num(ground["grounded_precision"])],
                ["contradiction rate (mean)", _num(ground["contradiction_rate"])],
                ["coverage of out-of-range cues (mean)", _num(ground["coverage"])],
                ["'no cue lies outside / inside' statements: contradicted / all",
                 f"{ground['n_none_contradicted']} / {ground['n_none_statements']}"],
                ["'no cue' contradiction rate (mean)", _num(ground["none_contradiction_rate"])],
            ])
            lines += ["", "A claim is grounded when its cue's measured status is the claimed one and its numbers "
                      "match the measurement within the rounding of the cue's format, contradicted when the "
                      "status or a number differs; means over records with at least one claim (coverage: over "
                      "records whose clip has out-of-range cues). A 'no cue lies outside (inside) the range' statement "
                      "is contradicted when a citable cue of its domain was measured outside (inside) its range."]
        if block["errors"]:
            lines += ["", "Error records (not evaluated):", ""]
            lines += [f"- `{e['id']}` (line {e['line']}): {e['error']}" for e in block["errors"][:SUMMARY_ERRORS]]
            if len(block["errors"]) > SUMMARY_ERRORS:
                lines.append(f"- ... and {len(block['errors']) - SUMMARY_ERRORS} more (see metrics.json)")
    if result.get("skipped"):
        lines += ["", f"Skipped {len(result['skipped'])} clip(s) that failed to load:", ""]
        lines += [f"- `{s['id']}`: {s['error']}: {s['message']}" for s in result["skipped"]]
    lines += ["", "Plots: `det.png` (DET curve, EER marked), `hist.png` (score histograms per label).", ""]
    return "\n".join(lines)


def write_report(result: dict[str, Any], trials: Trials, out_dir: str | os.PathLike,
                 title: str = "Spoofing countermeasure evaluation") -> dict[str, Path]:
    """Write :data:`OUTPUT_FILES` into ``out_dir`` (created if needed); return their paths by name."""
    from apallm.evaluation.plots import plot_det, plot_histograms  # matplotlib loads only when plotting

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in OUTPUT_FILES}
    paths["metrics.json"].write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["summary.md"].write_text(summary_markdown(result, title), encoding="utf-8")
    plot_det(trials.bonafide_scores, trials.spoof_scores, paths["det.png"])
    plot_histograms(trials.bonafide_scores, trials.spoof_scores, paths["hist.png"], threshold=result["eer_threshold"])
    return paths

"""``apallm eval``: ASVspoof metrics, per-attack tables and plots from score/key files or a predictions file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from apallm.commands._common import EXIT_OK, fail

DESCRIPTION = """\
Evaluate a spoofing countermeasure. Inputs follow the ASVspoof 5 evaluation package: a score table
'filename<TAB>cm-score' (header line; higher = more bona fide) and a key table 'filename<TAB>cm-label'
(bonafide/spoof; an optional attack column gives the per-attack table). Instead of scores, --predictions takes
a detector's JSONL verdicts (id/path, label, score = P(spoof), rationale or answer; an ALLM's raw answer from
apallm batch --evidence) and adds label accuracy, rationale format validity and label-rationale consistency.
--keys may also be a JSONL manifest (a held-out set: id/path, label, attack). Records that carry their clip's
measured cues ('evidence', from apallm batch --evidence; or the <id>.json files of apallm evidence in
--evidence-dir) add rationale grounding: grounded_precision, the mean over records with at least one
recognised cue claim of grounded claims / claims (grounded: the cue's measured status and numbers match the
claim within the rounding of the cue's format), and contradiction_rate, the mean of contradicted claims /
claims over the same records. Writes metrics.json, summary.md, det.png and hist.png into --out. Exit status: 0
on success, 2 on bad input (the error names the file and line)."""


def register(subparsers) -> None:
    """Add the ``eval`` command to the ``apallm`` command line."""
    p = subparsers.add_parser("eval", help="EER, minDCF, actDCF, Cllr, per-attack tables and plots from scores",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--scores", type=Path, metavar="S.tsv", help="CM score table (filename, cm-score)")
    source.add_argument("--predictions", type=Path, metavar="P.jsonl",
                        help="detector predictions, one JSON record per clip")
    p.add_argument("--keys", type=Path, required=True, metavar="K.tsv",
                   help="CM key table (filename, cm-label[, attack]), or a JSONL manifest (id/path, label[, attack]) "
                        "such as the held-out set the predictions were made on")
    attacks = p.add_mutually_exclusive_group()
    attacks.add_argument("--attacks", type=Path, metavar="A.tsv", help="attack table (filename, attack)")
    attacks.add_argument("--manifest", type=Path, metavar="M.jsonl",
                         help="JSONL manifest with id/path, label and attack (or system) per clip")
    p.add_argument("--evidence-dir", type=Path, metavar="DIR",
                   help="with --predictions: <id>.json evidence files (apallm evidence) for records without "
                        "their own 'evidence', for the grounding metrics")
    p.add_argument("--group-by", action="append", default=[], metavar="COLUMN",
                   help="also break the results down by this key column (e.g. codec); repeatable")
    p.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    p.add_argument("--n-boot", type=int, default=1000,
                   help="bootstrap replicates for the EER confidence interval (1000; 0 = no interval)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (0)")
    p.add_argument("--json", action="store_true", help="print metrics.json to stdout instead of a summary")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate, write the report, print the headline (or the JSON); 2 on bad input."""
    from apallm.evaluation.core import evaluate_files
    from apallm.evaluation.errors import EvaluationInputError
    from apallm.evaluation.report import format_headline, write_report

    if args.n_boot < 0:
        return fail("eval", "--n-boot must be 0 or more")
    if args.evidence_dir is not None and args.predictions is None:
        return fail("eval", "--evidence-dir goes with --predictions")
    try:
        trials, result = evaluate_files(keys=args.keys, scores=args.scores, predictions=args.predictions,
                                        attacks=args.attacks, manifest=args.manifest, group_by=args.group_by,
                                        n_boot=args.n_boot, seed=args.seed, evidence_dir=args.evidence_dir)
    except EvaluationInputError as exc:
        return fail("eval", f"{type(exc).__name__}: {exc.message}")
    paths = write_report(result, trials, args.out)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(format_headline(result))
        for row in result["per_attack"]:
            print(f"  {row['attack']}: EER {100 * row['eer']:.2f} % (n = {row['n_spoof']} spoof)")
        block = result.get("predictions")
        if block:
            print(f"predictions: accuracy {block['accuracy']:.4f}, rationale format valid "
                  f"{block['rationale']['n_valid']}/{block['n_scored']}, consistent "
                  f"{block['consistency']['consistent']}, inconsistent {block['consistency']['inconsistent']}, "
                  f"unverifiable {block['consistency']['unverifiable']}, error records {block['n_errors']}")
            ground = block["grounding"]
            if ground["n_with_claims"]:
                print(f"grounding ({ground['n_with_claims']} records with evidence and cue claims): grounded "
                      f"precision {ground['grounded_precision']:.4f}, contradiction rate "
                      f"{ground['contradiction_rate']:.4f}")
            if ground["n_with_none_statements"]:
                print(f"'no cue lies outside/inside the range' statements: {ground['n_none_contradicted']} of "
                      f"{ground['n_none_statements']} contradicted (rate {ground['none_contradiction_rate']:.4f} over "
                      f"{ground['n_with_none_statements']} records)")
        print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return EXIT_OK

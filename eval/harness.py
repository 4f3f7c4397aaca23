"""Score a detector on realworld-dev: EER with n and a bootstrap 95 % interval, per-source and per-system tables.

    python eval/harness.py [--detector NAME|module:factory|DIR | --model M | --adapter DIR] --out DIR [--root DIR]
    python eval/harness.py --scores S.tsv --out DIR [--root DIR]

Every clip is decoded and resampled to 16 kHz mono by apallm.load_audio before the detector hears it (the
labels differ in file format and sample rate inside some sources); a clip that fails to load is reported and
skipped. --scores takes pre-computed scores instead (filename<TAB>cm-score, higher = more bona fide, keyed by
the manifest path or its file stem). Writes scores.tsv, keys.tsv, metrics.json, summary.md, det.png and
hist.png into --out and prints the summary. The detector options are those of ``apallm explain`` (the shipped
detector when none is named); the clips come from the ``realworld-dev`` adapter of ``apallm.datasets``. Skips
(exit 0 with a message) when realworld-dev is absent (--root, $APALLM_REALWORLD_DEV, or
../shared/data/realworld-dev). Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from apallm import detectors
from apallm.datasets import build_manifest
from apallm.datasets.adapters.project_corpora import REALWORLD_DEV, corpus_root
from apallm.evaluation import EvaluationInputError, evaluate_manifest, summary_markdown


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    detectors.add_arguments(ap, generation=False)
    ap.add_argument("--scores", type=Path, metavar="S.tsv", help="pre-computed scores (filename, cm-score) instead "
                                                                "of a detector")
    ap.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    ap.add_argument("--root", default=None, help="realworld-dev folder")
    ap.add_argument("--batch-size", type=int, default=8, help="clips per detector call (8)")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates for the EER interval (1000)")
    args = ap.parse_args(argv)
    if args.scores and (args.model or args.adapter or args.detector or args.detector_arg):
        ap.error("--scores takes pre-computed scores: name no detector beside it")
    if args.cm:
        ap.error("--cm adds auxiliary scores to verdicts; the harness scores one detector (name it with --detector)")

    root = corpus_root(REALWORLD_DEV, args.root)
    if root is None:
        print("realworld-dev not found (give --root or set APALLM_REALWORLD_DEV): skipping")
        return 0
    entries = build_manifest(REALWORLD_DEV, root, probe=False)
    detector = None
    if not args.scores:
        try:
            detector = detectors.from_args(args, batch_size=args.batch_size)
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            print(f"harness: cannot load detector {args.detector or args.model or args.adapter or 'default'!r}: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
    name = detector.name if detector else args.scores.name
    print(f"realworld-dev: {len(entries)} clips from {root}; scoring with {name}", flush=True)
    try:
        _, result, failures = evaluate_manifest(
            entries, args.out, detector=detector, scores=args.scores, batch_size=args.batch_size, n_boot=args.n_boot,
            title=f"{name} on realworld-dev", max_duration_s=args.max_duration or None,
            on_failure=lambda f: print(f"skipped {f.ref}: {f.error}: {f.message}", flush=True))
    except EvaluationInputError as exc:
        print(f"harness: {type(exc).__name__}: {exc.message}", file=sys.stderr)
        return 2
    print(summary_markdown(result, f"{name} on realworld-dev"))
    print(f"{len(failures)} clip(s) skipped; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Score a detector on realworld-dev: EER with n and a bootstrap 95 % interval, per-source and per-system tables.

    python eval/harness.py --detector NAME|module:factory --out DIR [--root DIR] [--batch-size 8]
    python eval/harness.py --scores S.tsv --out DIR [--root DIR]

Every clip is decoded and resampled to 16 kHz mono by apallm.load_audio before the detector hears it (the
labels differ in file format and sample rate inside some sources); a clip that fails to load is reported and
skipped. --scores takes pre-computed scores instead (filename<TAB>cm-score, higher = more bona fide, keyed by
the manifest path or its file stem). Writes scores.tsv, keys.tsv, metrics.json, summary.md, det.png and
hist.png into --out and prints the summary. Skips (exit 0 with a message) when realworld-dev is absent
(--root, $APALLM_REALWORLD_DEV, or ../shared/data/realworld-dev). Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realworld import read_manifest, realworld_root  # noqa: E402

from apallm.detectors import load_detector, parse_pairs  # noqa: E402
from apallm.evaluation import EvaluationInputError, evaluate_manifest, summary_markdown  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--detector", metavar="SPEC", help="a registered detector name or 'package.module:factory'")
    source.add_argument("--scores", type=Path, metavar="S.tsv", help="pre-computed scores (filename, cm-score)")
    ap.add_argument("--detector-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="keyword for the detector's factory, e.g. checkpoint=runs/aasist (repeatable)")
    ap.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    ap.add_argument("--root", default=None, help="realworld-dev folder")
    ap.add_argument("--batch-size", type=int, default=8, help="clips per detector call (8)")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates for the EER interval (1000)")
    args = ap.parse_args(argv)

    root = realworld_root(args.root)
    if root is None:
        print("realworld-dev not found (give --root or set APALLM_REALWORLD_DEV): skipping")
        return 0
    rows = read_manifest(root)
    try:
        kwargs = parse_pairs(args.detector_arg)
        detector = load_detector(args.detector, **kwargs) if args.detector else None
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        print(f"harness: cannot load detector {args.detector!r}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    name = detector.name if detector else args.scores.name
    print(f"realworld-dev: {len(rows)} clips from {root}; scoring with {name}", flush=True)
    try:
        _, result, failures = evaluate_manifest(
            rows, args.out, detector=detector, scores=args.scores, batch_size=args.batch_size, n_boot=args.n_boot,
            title=f"{name} on realworld-dev",
            on_failure=lambda f: print(f"skipped {f.ref}: {f.error}: {f.message}", flush=True))
    except EvaluationInputError as exc:
        print(f"harness: {type(exc).__name__}: {exc.message}", file=sys.stderr)
        return 2
    print(summary_markdown(result, f"{name} on realworld-dev"))
    print(f"{len(failures)} clip(s) skipped; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

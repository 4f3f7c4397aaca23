"""``apallm annotate``: grounded training targets (canonical answers) for a manifest (see :mod:`apallm.annotate`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from apallm.annotate import MAX_CUES, WINDOW_S
from apallm.commands._common import EXIT_FAILED, EXIT_OK, fail


def register(sub) -> None:
    """Add the ``annotate`` command to the ``apallm`` command line."""
    p = sub.add_parser(
        "annotate", help="write grounded training targets (canonical answers) for a manifest",
        description="Measure every clip of a manifest and write its training target in the canonical answer "
                    "format, citing the measured cues that support its label through the phrasings of "
                    "prompts/rationale.yaml (one drawn per cue by an RNG seeded per clip). Output: the manifest "
                    "rows with a resolved path and 'target', ready for 'apallm train sft'. Bad clips are reported "
                    "on stderr and skipped. Exit status: 0 when every row was annotated, 1 when any was skipped, "
                    "2 when the manifest cannot be read.")
    p.add_argument("manifest", type=Path, help="manifest (.jsonl/.csv/.tsv) with path and label per clip")
    p.add_argument("-o", "--out", type=Path, required=True, help="output JSONL")
    p.add_argument("--seed", type=int, default=0, help="seed of the phrasing choice (0)")
    p.add_argument("--max-cues", type=int, default=MAX_CUES, help=f"cues cited per domain at most ({MAX_CUES})")
    p.add_argument("--window", type=float, default=WINDOW_S,
                   help=f"measure the first this many seconds, as SFT sees them ({WINDOW_S:g}; 0 = whole clip)")
    p.set_defaults(func=_cmd_annotate)


def _cmd_annotate(args: argparse.Namespace) -> int:
    from apallm.annotate import annotate_manifest
    from apallm.datasets.manifest import ManifestError

    if args.max_cues < 1:
        return fail("annotate", "--max-cues must be 1 or more")
    try:
        stats = annotate_manifest(args.manifest, args.out, seed=args.seed, max_cues=args.max_cues,
                                  window_s=args.window or None)
    except (ManifestError, OSError) as exc:
        return fail("annotate", f"{type(exc).__name__}: {exc}")
    print(f"annotated {stats.written} clip(s), skipped {stats.skipped}; wrote {args.out}")
    return EXIT_FAILED if stats.skipped else EXIT_OK

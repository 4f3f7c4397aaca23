"""Percentiles of every measured cue on realworld-dev, per label: where the natural-speech ranges in
prompts/cues.yaml come from, and how far each cue separates bona fide from spoof.

    python eval/cue_ranges.py [--root DIR] [--low 5 --high 95]

Skips (exit 0 with a message) when realworld-dev is absent.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realworld import read_manifest, realworld_root  # noqa: E402

from apallm import load_audio  # noqa: E402
from apallm.errors import AudioError  # noqa: E402
from apallm.evidence import measure_cues  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=None)
    ap.add_argument("--low", type=float, default=5.0)
    ap.add_argument("--high", type=float, default=95.0)
    args = ap.parse_args()
    root = realworld_root(args.root)
    if root is None:
        print("realworld-dev not found: skipping")
        return 0
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in read_manifest(root):
        try:
            clip = load_audio(row["abspath"])
        except AudioError as exc:
            print(f"skip {row['path']}: {exc}")
            continue
        for cue in measure_cues(clip):
            if cue.value is not None:
                values[cue.name][row["label"]].append(cue.value)
    band = f"p{args.low:g}-p{args.high:g}"
    print(f"{'cue':24s} {'bonafide ' + band:>26s} {'spoof ' + band:>26s} {'AUC':>6s}")
    for name, by_label in values.items():
        b, s = np.array(by_label["bonafide"]), np.array(by_label["spoof"])
        auc = float("nan")
        if len(b) and len(s):  # P(bona fide value > spoof value), ties count half
            auc = float(np.mean(b[:, None] > s[None, :]) + 0.5 * np.mean(b[:, None] == s[None, :]))
        fmt = lambda a: f"{np.percentile(a, args.low):10.4g} {np.percentile(a, args.high):10.4g} (n={len(a)})"  # noqa: E731
        print(f"{name:24s} {fmt(b):>26s} {fmt(s):>26s} {auc:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

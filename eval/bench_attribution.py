"""What attribution costs, against one scoring pass of the same detector in the same run.

    python eval/bench_attribution.py --clips 12 --threads 1

For each clip (realworld-dev, spread evenly, else synthetic speech): the best of ``--repeats`` timings of
``detector.score([clip])`` (one scoring pass), of :func:`apallm.attribution.attribute` with the shipped
design's path (spans left out of the pooling, each band masked in the encoder's spectrogram and encoded), and of
the generic path every other detector takes (a masked copy scored per span, band and cell). Prints the ratios to
the scoring pass (the issue's bar: at most 4x for the default detector), what attribution adds to the verdict's
own scoring pass (the shipped path's first pass is that pass: `explain` scores no more), and the scoring passes
each path reports. The shipped path is timed as it runs by default (``precision="auto"``: band passes in bfloat16
where the CPU has native bfloat16 units) and in float32 throughout.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


class _Generic:
    """The shipped detector seen as any detector: no pooled frames, so attribution masks and scores copies."""

    def __init__(self, detector):
        self.detector = detector

    def score(self, clips):
        return self.detector.score(clips)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def clips_to_time(count: int):
    from apallm.audio import as_clips, load_audio
    from apallm.datasets import build_manifest
    from apallm.datasets.adapters.project_corpora import REALWORLD_DEV, corpus_root

    root = corpus_root(REALWORLD_DEV)
    if root is None:
        from apallm.synth import speech_like

        print("realworld-dev not found: synthetic speech", file=sys.stderr)
        return as_clips([speech_like(3.0 + i % 4, seed=i) for i in range(count)]), "synthetic"
    entries = sorted(build_manifest(REALWORLD_DEV, root, probe=False), key=lambda e: e.id)
    picks = np.linspace(0, len(entries) - 1, count).round().astype(int)
    return [load_audio(entries[i].path) for i in picks], "realworld-dev"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--generic", action="store_true", help="also time the generic path (slow)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from apallm.attribution import attribute
    from apallm.detectors import load_detector

    detector = load_detector("default")
    clips, where = clips_to_time(args.clips)
    detector.score(clips[:1])  # warm up
    warm = attribute(detector, clips[0])
    rows = []
    for clip in clips:
        score = best_of(lambda c=clip: detector.score([c]), args.repeats)
        pooled = best_of(lambda c=clip: attribute(detector, c), args.repeats)
        exact = best_of(lambda c=clip: attribute(detector, c, precision="float32"), args.repeats)
        row = {"duration_s": clip.duration_s, "score_s": score, "pooled_s": pooled, "float32_s": exact}
        if args.generic:
            row["generic_s"] = best_of(lambda c=clip: attribute(_Generic(detector), c), 1)
            row["generic_passes"] = attribute(_Generic(detector), clip).cost_passes
        rows.append(row)
    total = sum(r["duration_s"] for r in rows)
    lowp = "bands in bfloat16" if "bfloat16" in warm.mask else "float32: no native bfloat16"
    print(f"{len(rows)} clips of {where}, {total:.1f} s of audio, {args.threads} thread(s), best of {args.repeats}")
    print(f"one scoring pass: {sum(r['score_s'] for r in rows):.2f} s ({total / sum(r['score_s'] for r in rows):.1f}x "
          f"real time)")
    for key, what in (("pooled_s", f"precision auto ({lowp})"), ("float32_s", "float32")):
        ratio = sum(r[key] for r in rows) / sum(r["score_s"] for r in rows)
        print(f"attribution, shipped design, {what}: {sum(r[key] for r in rows):.2f} s = {ratio:.2f}x the scoring "
              f"pass (per clip {min(r[key] / r['score_s'] for r in rows):.2f}-"
              f"{max(r[key] / r['score_s'] for r in rows):.2f}x); beyond the verdict's own scoring pass "
              f"{ratio - 1:.2f}x")
    if args.generic:
        generic = sum(r["generic_s"] for r in rows) / sum(r["score_s"] for r in rows)
        print(f"attribution, generic path: {generic:.2f}x the scoring pass "
              f"({np.mean([r['generic_passes'] for r in rows]):.1f} passes a clip on average)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The shipped ``lite`` ALLM against the shipped default detector, on one CPU core, over realworld-dev clips.

    python eval/bench_lite.py [--limit 24] [--sft-steps 6] [--json out.json]

In one process and one run, with ``torch.set_num_threads(1)`` and the clips decoded beforehand:
- score-only: ``score(clips)`` of each detector, end to end as a user calls it (the lite model measures the
  evidence, runs the default detector when its prompt reads that score, then one forward pass per batch);
  clips/s and times real time, the fastest of ``--repeats`` passes after a warm-up;
- explain latency: ``explain([clip])`` one clip at a time (generation included); mean and median seconds a clip,
  for the default detector too (its verdict with attribution);
- SFT: LoRA training steps of the lite base (batch 4, the recipe's prompts, full answers), samples/s; the default
  detector's counterpart is its head's training cost, the feature pass per clip (clips/s);
- peak memory: the resident-set growth of each phase (sampled every 5 ms).
Other processes slow every figure; the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "train"))
from bench_allm import PeakMemory  # noqa: E402

from apallm.audio import load_audio, split_windows  # noqa: E402
from apallm.datasets import build_manifest  # noqa: E402
from apallm.datasets.adapters.project_corpora import REALWORLD_DEV, corpus_root  # noqa: E402
from apallm.detectors import load_detector  # noqa: E402

CPU = torch.device("cpu")


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def latencies(detector, clips) -> list[float]:
    out = []
    for clip in clips:
        start = time.perf_counter()
        detector.explain([clip])
        out.append(time.perf_counter() - start)
    return out


def sft_samples_per_s(clips, labels, steps: int) -> tuple[float, float]:
    """(samples/s, peak MiB) of LoRA steps on the lite base with the recipe's settings."""
    import lite_allm

    from apallm.allm import default_target

    args = argparse.Namespace(model="lite-base", window=4.0, lora_r=8, cm_line="thermometer")  # the recipe's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the base's projectors are untrained: that is the point
        det = lite_allm.fresh_detector(lite_allm.VARIANTS[2], args, seed=0)
    windows = [split_windows(c, window_s=4.0, policy="sliding")[0] for c in clips]
    samples = [det.make_sample(w) for w in windows]
    data = [(s, default_target(label, s.evidence)) for s, label in zip(samples, labels, strict=True)]
    batches = lite_allm.batches_of((data * (steps * 4 // len(data) + 2))[: (steps + 1) * 4], 4)
    lite_allm.train(det, batches[:1], lr=1e-4, log_every=10**6)  # warm-up
    with PeakMemory(CPU) as mem:
        seconds = best_of(lambda: lite_allm.train(det, batches[1:], lr=1e-4, log_every=10**6), 1)
    return 4 * steps / seconds, mem.peak_mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=24, help="realworld-dev clips, spread over its sources")
    ap.add_argument("--explain-clips", type=int, default=6)
    ap.add_argument("--sft-steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    root = corpus_root(REALWORLD_DEV, args.data)
    if root is None:
        raise SystemExit("realworld-dev not found (give --data or set APALLM_REALWORLD_DEV): it is needed")
    torch.set_num_threads(1)
    entries = build_manifest(REALWORLD_DEV, root, probe=False)
    entries = entries[:: max(1, len(entries) // args.limit)][: args.limit]
    clips = [load_audio(e.path, clip_id=e.id) for e in entries]
    audio_s = sum(c.duration_s for c in clips)
    result = {"clips": len(clips), "audio_s": round(audio_s, 1), "threads": 1,
              "load_average_before": os.getloadavg()[0], "score": {}, "explain": {}}

    default = load_detector("default")
    lite = load_detector("allm", model="lite", device="cpu")
    for name, det in (("default", default), ("lite", lite)):
        det.score(clips[:2])  # warm-up
        with PeakMemory(CPU) as mem:
            seconds = best_of(lambda d=det: d.score(clips), args.repeats)
        result["score"][name] = {"seconds": round(seconds, 2), "clips_per_s": round(len(clips) / seconds, 2),
                                 "x_real_time": round(audio_s / seconds, 2), "peak_mib": round(mem.peak_mb)}
        print(f"score   {name:8s} {len(clips) / seconds:7.2f} clips/s  {audio_s / seconds:6.2f} x real time  "
              f"peak +{mem.peak_mb:.0f} MiB", flush=True)
    ratio = result["score"]["default"]["x_real_time"] / result["score"]["lite"]["x_real_time"]
    result["score"]["default_over_lite"] = round(ratio, 1)
    print(f"score   default / lite: {ratio:.1f}x")

    few = clips[: args.explain_clips]
    for name, det in (("default", default), ("lite", lite)):
        det.explain(few[:1])  # warm-up
        with PeakMemory(CPU) as mem:
            times = latencies(det, few)
        result["explain"][name] = {"mean_s": round(statistics.mean(times), 2),
                                   "median_s": round(statistics.median(times), 2), "peak_mib": round(mem.peak_mb)}
        print(f"explain {name:8s} {statistics.mean(times):6.2f} s/clip mean, {statistics.median(times):.2f} median  "
              f"peak +{mem.peak_mb:.0f} MiB", flush=True)

    if args.sft_steps:
        rate, peak = sft_samples_per_s(clips, [e.label for e in entries], args.sft_steps)
        with PeakMemory(CPU) as mem:
            feature_s = best_of(lambda: default.features(clips), 1)
        result["training"] = {"lite_sft_samples_per_s": round(rate, 3), "lite_sft_peak_mib": round(peak),
                              "default_feature_clips_per_s": round(len(clips) / feature_s, 2),
                              "default_feature_peak_mib": round(mem.peak_mb)}
        print(f"train   lite LoRA SFT {rate:.3f} samples/s (batch 4, peak +{peak:.0f} MiB); default detector's "
              f"feature pass {len(clips) / feature_s:.2f} clips/s", flush=True)
    result["load_average_after"] = os.getloadavg()[0]
    print(f"({len(clips)} clips, {audio_s:.0f} s of audio, one thread, load average "
          f"{result['load_average_before']:.1f} -> {result['load_average_after']:.1f})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Scoring speed of the shipped default detector against the published AASIST, on one CPU core, over realworld-dev.

Both detectors score every realworld-dev clip (decoded beforehand, so only scoring is timed), in the same process
and the same run, with ``torch.set_num_threads(1)``; each is timed ``--repeats`` times after a warm-up and the
fastest pass counts. Printed: seconds, times real time (audio seconds / scoring seconds) of each, and the ratio.

    python eval/bench_default_detector.py [--data ../shared/data/realworld-dev] [--repeats 2] [--json out.json]

Other processes on the same machine slow both; the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from apallm.audio import load_audio
from apallm.datasets import build_manifest
from apallm.datasets.adapters.project_corpora import REALWORLD_DEV, corpus_root
from apallm.detectors import load_detector


def time_detector(detector, clips, repeats: int) -> float:
    detector.score(clips[:2])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        detector.score(clips)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="realworld-dev folder (default: $APALLM_REALWORLD_DEV "
                                                           "or ../shared/data/realworld-dev)")
    ap.add_argument("--detectors", nargs="+", default=["default", "published-aasist"])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="only the first N clips (0: all)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    root = corpus_root(REALWORLD_DEV, args.data)
    if root is None:
        raise SystemExit("realworld-dev not found (give --data or set APALLM_REALWORLD_DEV): it is needed")
    torch.set_num_threads(1)
    entries = build_manifest(REALWORLD_DEV, root, probe=False)
    if args.limit:
        entries = entries[:args.limit]
    clips = [load_audio(e.path) for e in entries]
    audio_s = sum(c.duration_s for c in clips)
    result = {"clips": len(clips), "audio_s": round(audio_s, 1), "threads": 1, "cpu": platform.processor() or
              platform.machine(), "load_average_before": os.getloadavg()[0], "detectors": {}}
    for name in args.detectors:
        seconds = time_detector(load_detector(name), clips, args.repeats)
        result["detectors"][name] = {"seconds": round(seconds, 2), "x_real_time": round(audio_s / seconds, 1)}
        print(f"{name:18s} {seconds:7.1f} s  {audio_s / seconds:6.1f} x real time", flush=True)
    result["load_average_after"] = os.getloadavg()[0]
    names = list(result["detectors"])
    if len(names) == 2:
        a, b = (result["detectors"][n]["x_real_time"] for n in names)
        result["speed_ratio"] = round(a / b, 2)
        print(f"{names[0]} / {names[1]}: {a / b:.1f}x  ({len(clips)} clips, {audio_s:.0f} s of audio, one thread, "
              f"load average {result['load_average_before']:.1f} -> {result['load_average_after']:.1f})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

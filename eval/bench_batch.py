"""Batch explanation throughput of the shipped default detector on realworld-dev: clips/s and times real time.

Runs ``apallm batch``'s engine (:func:`apallm.batch.run_batch`: decode + resample, score, rationale from the
measured cues, one JSON record per clip appended to a file) over every realworld-dev clip, first one clip at a
time (the baseline a naive loop gets) and then in batches of ``--batch-size``, in the same process, and prints
both and their ratio. ``--evidence`` also writes the measured evidence into each record.

    python eval/bench_batch.py [--data ../shared/data/realworld-dev] [--batch-size 16] [--threads 2]

Other processes on the same cores lower the numbers: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

from apallm.batch import Item, read_results, run_batch
from apallm.datasets import build_manifest
from apallm.datasets.adapters.project_corpora import REALWORLD_DEV, corpus_root
from apallm.detectors import load_detector


def run(items, detector, batch_size: int, evidence: bool) -> tuple[float, list[dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.jsonl"
        start = time.perf_counter()
        run_batch(items, detector, out, batch_size=batch_size, include_evidence=evidence)
        wall = time.perf_counter() - start
        return wall, read_results(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="realworld-dev folder (default: $APALLM_REALWORLD_DEV "
                                                           "or ../shared/data/realworld-dev)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--evidence", action="store_true", help="write the measured evidence into each record")
    ap.add_argument("--limit", type=int, default=None, help="only the first N clips")
    args = ap.parse_args()
    root = corpus_root(REALWORLD_DEV, args.data)
    if root is None:
        raise SystemExit("realworld-dev not found (give --data or set APALLM_REALWORLD_DEV): this benchmark needs it")
    torch.set_num_threads(args.threads)
    items = [Item(id=e.id, path=e.path) for e in build_manifest(REALWORLD_DEV, root, probe=False)][: args.limit]
    detector = load_detector("default")
    audio_s = sum(sf.info(item.path).duration for item in items)
    results = {}
    for bs in (1, args.batch_size):
        run(items[:bs], detector, bs, args.evidence)  # warm-up
        wall, records = run(items, detector, bs, args.evidence)
        errors = sum("error" in r for r in records)
        results[bs] = wall
        print(f"batch size {bs:3d}: {len(records)} clips ({errors} errors) in {wall:.1f} s = "
              f"{len(records) / wall:.1f} clips/s", flush=True)
    one, many = results[1], results[args.batch_size]
    print(f"\n{len(items)} clips, {audio_s:.0f} s of audio; {args.threads} torch threads; "
          f"{platform.processor() or platform.machine()}; load average {os.getloadavg()[0]:.2f}")
    print(f"batched: {len(items) / many:.1f} clips/s = {audio_s / many:.0f}x real time; "
          f"one at a time: {len(items) / one:.1f} clips/s = {audio_s / one:.0f}x real time; "
          f"ratio {one / many:.2f}x")


if __name__ == "__main__":
    main()

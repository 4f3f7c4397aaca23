"""CPU scoring throughput of the countermeasures: clips per second and times real time.

Scores ``--clips`` synthetic 4 s clips (16 kHz) with AASIST, AASIST-L and the SSL front-end + AASIST model at a
tiny size and at the real XLS-R 300M size (random weights, built from the architecture's configuration)
through :class:`apallm.cm.CMDetector`
(the path ``apallm score`` takes: 64600-sample crop, batched forward passes in inference mode) with
1 and 2 torch threads. Throughput does not depend on the weights, so freshly initialised models are
used and nothing needs downloading. Audio decoding is not included (see ``bench_evidence.py`` for that).

    python eval/bench_cm.py [--clips 32] [--batch-size 16] [--threads 1 2]

Prints one line per model and thread count, and the machine's load average, since other processes on
the same cores lower the numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from apallm.audio import load_audio
from apallm.cm import CMDetector, build_preset, save_cm

CLIP_SECONDS = 4.0
SAMPLE_RATE = 16_000


def bench(detector: CMDetector, clips: list, threads: int) -> tuple[float, float]:
    """Clips per second and CPU seconds per clip for scoring ``clips`` once, after a warm-up batch."""
    torch.set_num_threads(threads)
    detector.score(clips[:detector.batch_size])
    wall, cpu = time.perf_counter(), time.process_time()
    detector.score(clips)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(clips) / wall, cpu / len(clips)


def build_model(name: str):
    if name in ("aasist", "aasist-l"):
        return build_preset(name)
    from apallm.cm.ssl import TINY_WAV2VEC2, XLSR_300M_WAV2VEC2, build_ssl_aasist

    sizes = {"ssl-tiny": TINY_WAV2VEC2, "ssl-xlsr-300m": XLSR_300M_WAV2VEC2}
    if name not in sizes:
        raise SystemExit(f"unknown model {name!r}")
    return build_ssl_aasist(ssl_config=dict(sizes[name])).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32, help="clips scored per measurement (32)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per forward pass (16)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (1 2)")
    parser.add_argument("--models", nargs="+", default=["aasist", "aasist-l", "ssl-tiny", "ssl-xlsr-300m"],
                        help="models to measure (aasist aasist-l ssl-tiny ssl-xlsr-300m)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    clips = [load_audio(0.1 * rng.standard_normal(int(CLIP_SECONDS * SAMPLE_RATE)).astype(np.float32),
                        sample_rate=SAMPLE_RATE, clip_id=f"c{i}") for i in range(args.clips)]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.2f}; {args.clips} clips of {CLIP_SECONDS:g} s, "
          f"batch {args.batch_size}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            torch.manual_seed(0)
            folder = save_cm(build_model(name), Path(tmp) / name, name=name, provenance={"source": "benchmark"})
            detector = CMDetector(folder, batch_size=args.batch_size)
            for threads in args.threads:
                rate, cpu = bench(detector, clips, threads)
                print(f"{name:<9} threads={threads}: {rate:6.2f} clips/s, {rate * CLIP_SECONDS:6.1f}x real time "
                      f"({cpu:.3f} CPU s per clip)", flush=True)


if __name__ == "__main__":
    main()

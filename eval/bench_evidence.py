"""Evidence extraction speed: decode + resample + CQT image + all cues, in x real time per CPU core.

    python eval/bench_evidence.py [--root DIR] [--repeat 1] [--kind cqt]

Runs pinned to one core with one BLAS/OpenMP thread. Uses ../shared/data/realworld-dev when present (every
clip, decoded from its file), else 60 generated clips of 2-12 s. Goal: at least 100x real time per core.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from apallm import load_audio  # noqa: E402
from apallm.datasets import build_manifest  # noqa: E402
from apallm.datasets.adapters.project_corpora import REALWORLD_DEV, corpus_root  # noqa: E402
from apallm.evidence import SpectrogramConfig, measure_cues, render_spectrogram  # noqa: E402


def generated_clips(folder: Path, n: int = 60) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        sr = int(rng.choice([16000, 22050, 44100]))
        seconds = float(rng.uniform(2, 12))
        t = np.arange(int(seconds * sr)) / sr
        f0 = 120 + 40 * np.sin(2 * np.pi * 0.5 * t)
        x = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / sr) / k for k in range(1, 30))
        x = 0.2 * x / np.max(np.abs(x)) * (np.sin(2 * np.pi * 3 * t) > -0.2) + 1e-3 * rng.standard_normal(len(t))
        path = folder / f"gen{i:03d}.flac"
        sf.write(path, x.astype(np.float32), sr)
        paths.append(str(path))
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=None)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--kind", default="cqt", choices=("cqt", "mel", "stft"))
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    root = corpus_root(REALWORLD_DEV, args.root)
    tmp = None
    if root is not None:
        paths = [entry.path for entry in build_manifest(REALWORLD_DEV, root, probe=False)]
        source = f"realworld-dev ({len(paths)} clips)"
    else:
        tmp = tempfile.TemporaryDirectory()
        paths = generated_clips(Path(tmp.name))
        source = f"generated audio ({len(paths)} clips; realworld-dev not found)"
    cfg = SpectrogramConfig(kind=args.kind)

    clip = load_audio(paths[0])  # warm-up: imports, filter banks, font
    measure_cues(clip)
    render_spectrogram(clip.waveform, clip.sample_rate, cfg)

    t_load = t_cues = t_img = 0.0
    audio_s = 0.0
    for _ in range(args.repeat):
        for path in paths:
            t0 = time.perf_counter()
            clip = load_audio(path)
            t1 = time.perf_counter()
            measure_cues(clip)
            t2 = time.perf_counter()
            render_spectrogram(clip.waveform, clip.sample_rate, cfg)
            t3 = time.perf_counter()
            t_load += t1 - t0
            t_cues += t2 - t1
            t_img += t3 - t2
            audio_s += clip.duration_s
    total = t_load + t_cues + t_img
    print(f"source: {source}, {audio_s / args.repeat:.1f} s of audio, {args.repeat} pass(es), 1 core")
    print(f"decode+resample {t_load:7.2f} s  ({audio_s / t_load:7.0f}x real time)")
    print(f"cues            {t_cues:7.2f} s  ({audio_s / t_cues:7.0f}x real time)")
    print(f"{args.kind} image       {t_img:7.2f} s  ({audio_s / t_img:7.0f}x real time)")
    print(f"total           {total:7.2f} s  ({audio_s / total:7.0f}x real time per core; "
          f"{len(paths) * args.repeat / total:.1f} clips/s)")
    print(f"evidence_x_realtime_per_core: {audio_s / total:.1f}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

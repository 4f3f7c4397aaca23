"""Signals whose truth is known, made by the tests themselves."""

from __future__ import annotations

import numpy as np
import pytest

SR = 16_000


def tone(freq=220.0, seconds=2.0, sr=SR, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def white_noise(seconds=2.0, sr=SR, amp=0.1, seed=0):
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def brickwall_lowpass(x, cutoff_hz, sr=SR):
    """Zero every FFT bin above the cut-off: a band limit as steep as a codec's."""
    spec = np.fft.rfft(x)
    spec[np.fft.rfftfreq(len(x), 1 / sr) > cutoff_hz] = 0
    return np.fft.irfft(spec, n=len(x)).astype(np.float32)


def speech_like(seconds=3.0, sr=SR, seed=0, f0=(110.0, 170.0), pauses=True):
    """A voiced harmonic source with a moving pitch, formant-like tilt, syllable envelope and pauses,
    over a quiet noise floor (-60 dBFS), like a close-talk recording of read speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    pitch = f0[0] + (f0[1] - f0[0]) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    wave = np.zeros(n)
    for k in range(1, 40):
        amp = 1.0 / k ** 1.2
        wave += amp * np.sin(k * phase) * (k * pitch < sr / 2 - 200)
    wave += 0.05 * rng.standard_normal(n)  # breath/fricative noise
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
    if pauses:
        env *= (np.sin(2 * np.pi * 0.5 * t) > -0.3)
    wave = wave * env
    wave = 0.3 * wave / np.max(np.abs(wave))
    wave += 10 ** (-60 / 20) * rng.standard_normal(n)
    return wave.astype(np.float32)


@pytest.fixture
def sr():
    return SR

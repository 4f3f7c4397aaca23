"""Signals whose truth is known, for tests, toy training sets and benchmarks.

``speech_like`` is not speech: it is a voiced harmonic source with a moving pitch, a syllable envelope,
pauses and a microphone noise floor, enough to exercise every cue and to train tiny models on a clear
acoustic difference (full band vs band-limited) in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SR = 16_000


def tone(freq: float = 220.0, seconds: float = 2.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def white_noise(seconds: float = 2.0, sr: int = SR, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def brickwall_lowpass(x: np.ndarray, cutoff_hz: float, sr: int = SR) -> np.ndarray:
    """Zero every FFT bin above the cut-off: a band limit as steep as a codec's."""
    spec = np.fft.rfft(x)
    spec[np.fft.rfftfreq(len(x), 1 / sr) > cutoff_hz] = 0
    return np.fft.irfft(spec, n=len(x)).astype(np.float32)


#: (F1, F2, F3) in Hz of seven vowels, after Peterson & Barney's adult male averages
VOWEL_FORMANTS = np.array([(730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (570, 840, 2410),
                           (300, 870, 2240), (660, 1720, 2410), (490, 1350, 1690)], dtype=float)
FORMANT_BANDWIDTHS = np.array([80.0, 100.0, 140.0])


def harmonic_voice(seconds: float = 3.0, sr: int = SR, seed: int = 0, f0: tuple[float, float] = (110.0, 170.0),
                   pauses: bool = True) -> np.ndarray:
    """A continuous voiced harmonic source with a moving pitch, spectral tilt, a 4 Hz loudness envelope,
    pauses, breath noise and a -60 dBFS noise floor: steady in spectral shape, for testing cues that look for
    changes of it. Voice activity detectors do not take it for speech (no formants): use :func:`speech_like`
    where a detector must hear speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    pitch = f0[0] + (f0[1] - f0[0]) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    wave = np.zeros(n)
    for k in range(1, 40):
        wave += (1.0 / k ** 1.2) * np.sin(k * phase) * (k * pitch < sr / 2 - 200)
    wave += 0.05 * rng.standard_normal(n)
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
    if pauses:
        env *= np.sin(2 * np.pi * 0.5 * t) > -0.3
    wave = wave * env
    wave = 0.3 * wave / np.max(np.abs(wave))
    wave += 10 ** (-60 / 20) * rng.standard_normal(n)
    return wave.astype(np.float32)


def speech_like(seconds: float = 3.0, sr: int = SR, seed: int = 0, f0: tuple[float, float] = (110.0, 170.0),
                pauses: bool = True) -> np.ndarray:
    """Syllables of synthetic speech, like a close-talk recording of read speech: in each 0.25 s syllable a
    voiceless onset (fricative noise at 2.5-7 kHz, in most syllables), then a vowel: a harmonic source with a
    moving pitch, spectral tilt and the formants of one of seven vowels, gliding into the next; pauses, breath
    noise and a -60 dBFS noise floor. Voice activity detectors take it for speech."""
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    pitch = f0[0] + (f0[1] - f0[0]) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    syllable_s = 0.25
    count = int(np.ceil(seconds / syllable_s)) + 2
    vowels = VOWEL_FORMANTS[rng.integers(0, len(VOWEL_FORMANTS), count)]
    position = t / syllable_s
    index = position.astype(int)
    within = position - index  # 0..1 through the syllable
    glide = np.clip((within - 0.6) / 0.4, 0.0, 1.0)[:, None]  # hold the vowel, then glide into the next
    formants = vowels[index] * (1 - glide) + vowels[index + 1] * glide
    voiced = np.zeros(n)
    for k in range(1, 40):
        fk = k * pitch
        resonance = sum((1.0 / (j + 1)) / (1 + ((fk - formants[:, j]) / FORMANT_BANDWIDTHS[j]) ** 2)
                        for j in range(3))
        voiced += (1.0 / k ** 0.6) * (resonance + 0.05) * np.sin(k * phase) * (fk < sr / 2 - 200)
    voiced /= np.max(np.abs(voiced))
    fricative = sosfilt(butter(4, (2500, 7000), btype="bandpass", fs=sr, output="sos"), rng.standard_normal(n))
    fricative /= np.max(np.abs(fricative))
    onset = within < 0.2
    has_fricative = (rng.random(count) < 0.6)[index]
    vowel_env = np.where(onset, 0.0, np.sin(np.pi * np.clip((within - 0.2) / 0.75, 0.0, 1.0)) ** 0.5)
    vowel_env = np.maximum(vowel_env, 0.15)  # voicing goes on through the consonants, as a murmur
    fricative_env = np.where(onset, np.sin(np.pi * within / 0.2), 0.0) * has_fricative
    wave = voiced * vowel_env + 0.25 * fricative * fricative_env + 0.01 * rng.standard_normal(n)
    if pauses:
        wave *= np.sin(2 * np.pi * 0.5 * t) > -0.3
    wave = 0.3 * wave / np.max(np.abs(wave))
    wave += 10 ** (-60 / 20) * rng.standard_normal(n)
    return wave.astype(np.float32)


TOY_TARGETS = {
    "bonafide": "bonafide\nFrequency: full band to 8 kHz\nTime: natural pauses",
    "spoof": "spoof\nFrequency: band limit near {cutoff:g} kHz\nTime: natural pauses",
}


def make_toy_set(folder: str | Path, n: int = 16, seed: int = 0, seconds: float = 2.0,
                 cutoff_hz: float = 3000.0, targets: bool = True) -> Path:
    """Write ``n`` clips (half bona fide: full-band speech-like; half spoof: the same kind of signal
    band-limited at ``cutoff_hz``) and a ``manifest.jsonl``; return the manifest's path.

    With ``targets`` each row carries a short answer in the canonical format, true to how the clip was
    made, so that a tiny byte-level model can learn to write it in minutes."""
    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        label = "spoof" if i % 2 else "bonafide"
        x = speech_like(seconds, seed=seed * 1000 + i)
        if label == "spoof":
            x = brickwall_lowpass(x, cutoff_hz)
        path = folder / f"toy{i:03d}.wav"
        sf.write(path, x, SR, subtype="PCM_16")
        row = {"id": path.stem, "path": str(path.resolve()), "label": label,
               "attack": "lowpass" if label == "spoof" else "bonafide", "dataset": "toy"}
        if targets:
            row["target"] = TOY_TARGETS[label].format(cutoff=cutoff_hz / 1000)
        rows.append(row)
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return manifest

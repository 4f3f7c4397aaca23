"""Codec and channel round trips: encode and decode a 16 kHz clip through what this machine can install,
so a countermeasure learns to look past the codec (applied to bona fide and spoof alike).

Codecs (libsndfile through soundfile; no external binaries): MP3 at several bitrates' worth of compression
levels, Ogg Vorbis at several qualities, Ogg Opus (at 48 kHz), narrow-band telephone channels (band-pass
300-3400 Hz at 8 kHz, then G.711 mu-law or A-law, or GSM 06.10). Every choice is drawn from a numpy Generator,
so a seed fixes the whole augmentation. The output has the input's length and rate.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import butter, sosfiltfilt

SR = 16_000

#: name -> (container, subtype, sample rate of the codec)
CODECS = {
    "mp3": ("MP3", "MPEG_LAYER_III", 16_000),
    "vorbis": ("OGG", "VORBIS", 16_000),
    "opus": ("OGG", "OPUS", 48_000),
    "mulaw": ("WAV", "ULAW", 8_000),
    "alaw": ("WAV", "ALAW", 8_000),
    "gsm": ("WAV", "GSM610", 8_000),
}
NARROWBAND = {"mulaw", "alaw", "gsm"}


@dataclass(frozen=True)
class CodecConfig:
    """Which codecs to draw from, and the range of libsndfile's compression level (0 best quality,
    1 smallest file) for the lossy wide-band ones."""

    codecs: tuple[str, ...] = ("mp3", "vorbis", "opus", "mulaw", "alaw", "gsm")
    compression: tuple[float, float] = (0.3, 1.0)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        unknown = set(self.codecs) - set(CODECS)
        if unknown or not self.codecs:
            raise ValueError(f"unknown codecs {sorted(unknown)}; choose from {', '.join(CODECS)}")


def telephone_band(x: np.ndarray, sr: int) -> np.ndarray:
    """300-3400 Hz band-pass (4th-order Butterworth, zero phase), the narrow-band telephone channel."""
    sos = butter(4, [300, 3400], btype="bandpass", fs=sr, output="sos")
    return sosfiltfilt(sos, x).astype(np.float32)


def round_trip(x: np.ndarray, codec: str, compression: float = 0.5, sr: int = SR) -> np.ndarray:
    """``x`` (mono float, ``sr`` Hz) encoded with ``codec`` and decoded back to ``sr`` Hz, same length."""
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
    fmt, subtype, rate = CODECS[codec]
    y = np.asarray(x, dtype=np.float32)
    if codec in NARROWBAND:
        y = telephone_band(y, sr)
    if rate != sr:
        y = soxr.resample(y, sr, rate, quality="HQ")
    y = np.clip(y, -1.0, 1.0)
    buf = io.BytesIO()
    kwargs = {"compression_level": float(compression)} if fmt in ("MP3", "OGG") else {}
    sf.write(buf, y, rate, format=fmt, subtype=subtype, **kwargs)
    buf.seek(0)
    decoded, got = sf.read(buf, dtype="float32")
    if got != sr:
        decoded = soxr.resample(decoded, got, sr, quality="HQ")
    out = np.zeros(len(x), dtype=np.float32)  # codecs add or drop a few samples of delay/padding
    n = min(len(x), len(decoded))
    out[:n] = decoded[:n]
    return out


def random_round_trip(x: np.ndarray, rng: np.random.Generator, config: CodecConfig = CodecConfig(),
                      sr: int = SR) -> tuple[np.ndarray, str]:
    """A round trip through a codec and compression level drawn from ``rng``; returns (audio, codec)."""
    codec = str(rng.choice(config.codecs))
    level = float(rng.uniform(*config.compression))
    return round_trip(x, codec, level, sr), codec

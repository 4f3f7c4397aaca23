"""Audio intake: any path, bytes, file object or array becomes a validated 16 kHz mono :class:`Clip`.

Decoding goes through libsndfile (soundfile: WAV, FLAC, OGG Vorbis/Opus, MP3, AIFF, ...); containers it
cannot read (MP4/M4A, WebM/Matroska) go through FFmpeg's libraries via PyAV when ``apallm[codecs]`` is
installed. Resampling uses soxr (the resampler librosa uses) at high quality.

Conditioning: the DC offset is removed and sub-audible rumble is cut by a high-pass (4th-order Butterworth at
20 Hz) before anything scores or measures the clip, so an offset or a rumbling microphone cannot
flip a verdict; the raw offset and clipping stay reported (measured on the decoded samples).

Each failure raises its own :class:`~apallm.errors.AudioError` subclass; silent audio is flagged, not refused.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from apallm.errors import (
    AudioTooLongError,
    AudioTooShortError,
    EmptyAudioError,
    NonFiniteAudioError,
    UnreadableAudioError,
    UnsupportedFormatError,
)

TARGET_SAMPLE_RATE = 16_000
#: ALLM audio encoders (Whisper-style, as in Qwen2-Audio and Qwen2.5-Omni) take at most 30 s.
ALLM_WINDOW_S = 30.0
DEFAULT_MAX_DURATION_S = 600.0
DEFAULT_MIN_DURATION_S = 0.25
#: peak level (dBFS) below which a clip is flagged silent
SILENCE_PEAK_DBFS = -60.0
#: a sample at or above this fraction of full scale counts as clipped
CLIP_LEVEL = 0.999
#: |mean| of the decoded samples above which a clip is flagged ``dc_offset`` (the offset itself is removed)
DC_FLAG_LEVEL = 0.01
#: high-pass corner (Hz) of the intake conditioning: below the lowest voice F0, above DC and rumble
HIGHPASS_HZ = 20.0
HIGHPASS_ORDER = 4

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".m4a", ".mp4",
                    ".aac", ".webm", ".mka", ".wma")

AudioSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | np.ndarray


@dataclass
class Clip:
    """A validated mono waveform at ``sample_rate`` (16 kHz unless asked otherwise).

    ``clipping_ratio`` and ``dc_offset`` are measured on the decoded samples before resampling and
    conditioning, where clipped plateaus are still exact. ``offset_s`` is the start within the source, for
    windows. ``flags``: ``silent``, ``clipped``, ``dc_offset`` (see :func:`load_audio`).
    """

    waveform: np.ndarray
    sample_rate: int = TARGET_SAMPLE_RATE
    id: str = "clip"
    source: str = "<array>"
    original_sample_rate: int = TARGET_SAMPLE_RATE
    original_channels: int = 1
    original_format: str | None = None
    offset_s: float = 0.0
    clipping_ratio: float = 0.0
    dc_offset: float = 0.0
    flags: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return len(self.waveform) / self.sample_rate

    @property
    def num_samples(self) -> int:
        return len(self.waveform)

    @property
    def is_silent(self) -> bool:
        return "silent" in self.flags

    @property
    def peak_dbfs(self) -> float:
        peak = float(np.max(np.abs(self.waveform))) if len(self.waveform) else 0.0
        return 20.0 * math.log10(peak) if peak > 0 else -math.inf

    def meta(self) -> dict:
        """JSON-ready description of the clip (no samples)."""
        return {
            "id": self.id,
            "source": self.source,
            "duration_s": round(self.duration_s, 4),
            "offset_s": round(self.offset_s, 4),
            "sample_rate": self.sample_rate,
            "original_sample_rate": self.original_sample_rate,
            "original_channels": self.original_channels,
            "original_format": self.original_format,
            "flags": list(self.flags),
        }


# --------------------------------------------------------------------------------------------- sniffing

def sniff_format(header: bytes) -> str | None:
    """Name the container from its first bytes; None when unknown. Non-audio formats get a ``non-audio:`` name."""
    if len(header) >= 12 and header[:4] in (b"RIFF", b"RIFX") and header[8:12] == b"WAVE":
        return "WAV"
    if header[:4] == b"RF64":
        return "RF64"
    if header[:4] == b"fLaC":
        return "FLAC"
    if header[:4] == b"OggS":
        return "OGG"
    if header[:4] == b"FORM" and header[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if header[:3] == b"ID3" or (len(header) >= 2 and header[0] == 0xFF and (header[1] & 0xE0) == 0xE0
                                and (header[1] & 0x06) != 0):
        return "MP3"
    if header[:4] == b"\x1aE\xdf\xa3":
        return "MATROSKA"
    if len(header) >= 8 and header[4:8] == b"ftyp":
        return "MP4"
    if header[:4] == b"0&\xb2u":
        return "ASF"
    if header[:4] == b"caff":
        return "CAF"
    for magic, name in ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"%PDF", "PDF"),
                        (b"PK\x03\x04", "ZIP"), (b"\x1f\x8b", "GZIP"), (b"\x7fELF", "ELF")):
        if header.startswith(magic):
            return f"non-audio:{name}"
    if header and all(32 <= b < 127 or b in (9, 10, 13) for b in header[:64]):
        return "non-audio:text"
    return None


_PYAV_FORMATS = {"MATROSKA", "MP4", "ASF"}


# --------------------------------------------------------------------------------------------- decoding

def _decode_soundfile(obj, source: str) -> tuple[np.ndarray, int]:
    data, sr = sf.read(obj, dtype="float32", always_2d=True)
    return data, int(sr)


def _decode_pyav(file, source: str) -> tuple[np.ndarray, int]:
    try:
        import av  # type: ignore
    except ImportError as exc:
        raise UnsupportedFormatError(
            "this container (MP4/M4A/AAC, WebM/Matroska, WMA) needs FFmpeg's decoders: pip install 'apallm[codecs]'",
            source,
        ) from exc
    try:
        with av.open(file) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise UnsupportedFormatError("the container has no audio stream", source)
            resampler = av.AudioResampler(format="flt", layout="mono")
            chunks, rate = [], None
            for frame in container.decode(stream):
                rate = frame.sample_rate
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except UnsupportedFormatError:
        raise
    except Exception as exc:  # PyAV raises many error types for broken streams
        raise UnreadableAudioError(f"cannot decode ({type(exc).__name__}: {exc})", source) from exc
    if not chunks or rate is None:
        raise EmptyAudioError("the audio stream holds no samples", source)
    return np.concatenate(chunks).astype(np.float32)[:, None], int(rate)


def _is_array(obj) -> bool:
    """numpy arrays and tensors (torch or anything with shape and dtype), but not file objects."""
    return isinstance(obj, np.ndarray) or (hasattr(obj, "shape") and hasattr(obj, "dtype")
                                           and not hasattr(obj, "read"))


def _to_float_array(array) -> np.ndarray:
    if hasattr(array, "detach") and hasattr(array, "cpu"):  # torch.Tensor without importing torch here
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    if array.dtype == np.int16:
        return array.astype(np.float32) / 32768.0
    if array.dtype == np.int32:
        return array.astype(np.float32) / 2147483648.0
    if array.dtype == np.uint8:
        return (array.astype(np.float32) - 128.0) / 128.0
    if array.dtype.kind in "iub":
        return array.astype(np.float32)
    raise UnsupportedFormatError(f"array of dtype {array.dtype} is not audio")


def _as_time_by_channel(array: np.ndarray, source: str) -> np.ndarray:
    if array.ndim == 1:
        return array[:, None]
    if array.ndim == 2:
        # (channels, time) as torchaudio gives it, or (time, channels) as soundfile gives it
        return array.T if array.shape[0] < array.shape[1] else array
    raise UnsupportedFormatError(f"expected a 1-D or 2-D array, got shape {array.shape}", source)


def _describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if _is_array(source):
        return f"<array {tuple(source.shape)}>"
    return f"<{getattr(source, 'name', type(source).__name__)}>"


def _decode(source: AudioSource, sample_rate: int | None, max_duration_s: float | None,
            name: str) -> tuple[np.ndarray, int, str | None]:
    """Return (time x channel float32 samples, rate, format name)."""
    if _is_array(source):
        if sample_rate is None:
            raise ValueError("load_audio(array) needs sample_rate= the array's sampling rate")
        array = _as_time_by_channel(_to_float_array(source), name)
        return array, int(sample_rate), None

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise UnreadableAudioError("no such file", name)
        if path.is_dir():
            raise UnreadableAudioError("is a directory, not an audio file", name)
        try:
            size = path.stat().st_size
            with open(path, "rb") as fh:
                header = fh.read(64)
        except OSError as exc:
            raise UnreadableAudioError(f"cannot read file ({exc.strerror or exc})", name) from exc
        opener = lambda: str(path)  # noqa: E731  (soundfile reads the file itself: no copy in memory)
    else:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        elif hasattr(source, "read"):
            data = source.read()
            if isinstance(data, str):
                raise UnsupportedFormatError("file object opened in text mode; open it with 'rb'", name)
        else:
            raise TypeError(f"cannot load audio from {type(source).__name__}")
        size, header = len(data), data[:64]
        opener = lambda: io.BytesIO(data)  # noqa: E731

    if size == 0:
        raise EmptyAudioError("zero-length input (0 bytes)", name)
    fmt = sniff_format(header)
    if fmt is not None and fmt.startswith("non-audio:"):
        raise UnsupportedFormatError(f"this is {fmt.split(':', 1)[1]} data, not audio", name)
    if fmt in _PYAV_FORMATS:
        array, rate = _decode_pyav(opener(), name)
        return array, rate, fmt

    try:
        info = sf.info(opener())
    except Exception as exc:
        if fmt is None:
            # unknown header: give FFmpeg a chance before calling it unsupported
            try:
                array, rate = _decode_pyav(opener(), name)
            except (UnreadableAudioError, EmptyAudioError):
                raise UnsupportedFormatError("not a recognised audio format", name) from exc
            return array, rate, "ffmpeg"
        raise UnreadableAudioError(f"corrupt or truncated {fmt} data ({_short(exc)})", name) from exc
    if info.frames == 0:
        raise EmptyAudioError(f"{fmt or info.format} file holds zero samples", name)
    if max_duration_s is not None and info.samplerate > 0 and info.frames / info.samplerate > max_duration_s:
        raise AudioTooLongError(
            f"{info.frames / info.samplerate:.1f} s is longer than the limit of {max_duration_s:g} s "
            "(raise max_duration_s, or cut the file)", name)
    try:
        array, rate = _decode_soundfile(opener(), name)
    except Exception as exc:
        raise UnreadableAudioError(f"corrupt or truncated {fmt or info.format} data ({_short(exc)})",
                                   name) from exc
    return array, rate, fmt or info.format


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


RESAMPLERS = ("soxr", "torchaudio")


def _resample(wave: np.ndarray, rate: int, target: int, resampler: str) -> np.ndarray:
    if resampler == "torchaudio":
        import torch

        from apallm._torchaudio_guard import torchaudio_problem

        problem = torchaudio_problem()
        if problem:
            raise RuntimeError(f"the torchaudio resampler is unavailable: {problem} (or use resampler='soxr')")
        import torchaudio.functional as AF

        return AF.resample(torch.from_numpy(wave), rate, target).numpy().astype(np.float32, copy=False)
    return soxr.resample(wave, rate, target, quality="HQ").astype(np.float32, copy=False)


def condition(wave: np.ndarray, sample_rate: int, highpass_hz: float | None = HIGHPASS_HZ) -> np.ndarray:
    """Remove the mean and, unless ``highpass_hz`` is None, high-pass at ``highpass_hz`` (4th-order
    Butterworth, causal: a zero-phase pass would ring at the clip's ends, and its group delay is 1.3 ms at 80 Hz,
    0.2 ms at 200 Hz)."""
    from scipy.signal import butter, sosfilt

    out = wave.astype(np.float64) - np.mean(wave, dtype=np.float64)
    if highpass_hz is not None:
        out = sosfilt(butter(HIGHPASS_ORDER, highpass_hz, btype="highpass", fs=sample_rate, output="sos"), out)
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------- public API

def load_audio(
    source: AudioSource,
    *,
    sample_rate: int | None = None,
    target_sample_rate: int = TARGET_SAMPLE_RATE,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
    clip_id: str | None = None,
    resampler: str = "soxr",
    conditioning: bool = True,
) -> Clip:
    """Decode, validate, mix to mono and resample ``source`` to ``target_sample_rate``.

    ``source`` is a path, bytes, a binary file object, or an array (numpy or torch; 1-D mono or 2-D with
    channels on the shorter axis) with its rate given as ``sample_rate``. Integer arrays are scaled to [-1, 1).

    Raises one :class:`~apallm.errors.AudioError` subclass per failure: ``UnreadableAudioError`` (missing,
    corrupt, truncated), ``UnsupportedFormatError`` (not audio, or no decoder), ``EmptyAudioError``,
    ``NonFiniteAudioError``, ``AudioTooLongError`` (over ``max_duration_s``; None disables the limit) and
    ``AudioTooShortError`` (under ``min_duration_s``). Silent audio loads with the flag ``"silent"``.

    ``resampler``: ``"soxr"`` (high quality, the default) or ``"torchaudio"`` (windowed-sinc, as many
    countermeasure recipes resample; use it to reproduce their published numbers exactly).

    ``conditioning`` (on by default) removes the DC offset and high-passes at :data:`HIGHPASS_HZ` after
    resampling (see :func:`condition`); turn it off only to reproduce a recipe that scored raw samples. Flags:
    ``silent`` (peak below -60 dBFS), ``clipped`` (over 0.1 % of samples at full scale) and ``dc_offset``
    (|mean| of the decoded samples above :data:`DC_FLAG_LEVEL`; ``Clip.dc_offset`` keeps the value).
    """
    if resampler not in RESAMPLERS:
        raise ValueError(f"unknown resampler {resampler!r}: use one of {', '.join(RESAMPLERS)}")
    name = _describe(source)
    array, rate, fmt = _decode(source, sample_rate, max_duration_s, name)
    if array.size == 0 or array.shape[0] == 0:
        raise EmptyAudioError("zero-length audio (no samples)", name)
    if rate <= 0:
        raise UnreadableAudioError(f"invalid sampling rate {rate}", name)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise NonFiniteAudioError(f"{bad} of {array.size} samples are NaN or infinite", name)

    duration = array.shape[0] / rate
    if max_duration_s is not None and duration > max_duration_s:
        raise AudioTooLongError(
            f"{duration:.1f} s is longer than the limit of {max_duration_s:g} s (raise max_duration_s, or cut it)",
            name)
    if duration < min_duration_s:
        raise AudioTooShortError(
            f"{duration * 1000:.0f} ms is shorter than the {min_duration_s * 1000:.0f} ms needed for analysis", name)

    clipping_ratio = float(np.mean(np.abs(array) >= CLIP_LEVEL))
    mono = array.mean(axis=1) if array.shape[1] > 1 else array[:, 0]
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    dc_offset = float(np.mean(mono, dtype=np.float64))
    if conditioning:  # before resampling too: a resampler rings at the steps an offset makes at the ends
        mono = (mono - dc_offset).astype(np.float32)
    if rate != target_sample_rate:
        mono = _resample(mono, rate, target_sample_rate, resampler)
    if conditioning:
        mono = condition(mono, target_sample_rate)

    flags = []
    peak = float(np.max(np.abs(mono)))
    if peak == 0.0 or 20.0 * math.log10(peak) < SILENCE_PEAK_DBFS:
        flags.append("silent")
    if clipping_ratio > 0.001:
        flags.append("clipped")
    if abs(dc_offset) > DC_FLAG_LEVEL:
        flags.append("dc_offset")

    if clip_id is None:
        clip_id = Path(str(source)).stem if isinstance(source, (str, os.PathLike)) else "clip"
    return Clip(
        waveform=mono,
        sample_rate=target_sample_rate,
        id=clip_id,
        source=name,
        original_sample_rate=rate,
        original_channels=int(array.shape[1]),
        original_format=fmt,
        clipping_ratio=clipping_ratio,
        dc_offset=dc_offset,
        flags=flags,
    )


def as_clip(source: Clip | AudioSource | tuple, **load_kwargs) -> Clip:
    """A :class:`Clip` from anything a detector is handed: a Clip (as it is), a path, bytes or a binary file
    (decoded by :func:`load_audio` with ``load_kwargs``), an ``(array, sample_rate)`` pair, or a bare array,
    which is taken as 16 kHz mono."""
    if isinstance(source, Clip):
        return source
    if isinstance(source, tuple) and len(source) == 2 and _is_array(source[0]):
        return load_audio(source[0], sample_rate=int(source[1]), **load_kwargs)
    if _is_array(source):
        return load_audio(source, sample_rate=TARGET_SAMPLE_RATE, **load_kwargs)
    return load_audio(source, **load_kwargs)


def as_clips(sources, **load_kwargs) -> list[Clip]:
    """:func:`as_clip` of each source; one source on its own (a path, bytes, a Clip, a file) counts as a list
    of one."""
    if isinstance(sources, (Clip, str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(sources, "read"):
        sources = [sources]
    elif _is_array(sources):
        raise TypeError("pass a list of arrays (each taken as 16 kHz mono), or (array, sample_rate) pairs")
    return [as_clip(s, **load_kwargs) for s in sources]


def split_windows(clip: Clip, window_s: float = ALLM_WINDOW_S, hop_s: float | None = None,
                  policy: str = "sliding") -> list[Clip]:
    """Cut a clip into windows an ALLM audio encoder can take (30 s by default).

    Policies: ``"first"`` keeps the first window, ``"center"`` the middle one, ``"sliding"`` covers the whole
    clip with windows every ``hop_s`` (default ``window_s``), the last one aligned to the clip's end so every
    window has full length and no sample is dropped. A clip no longer than ``window_s`` comes back whole.
    Each window keeps its start within the source in ``offset_s``.
    """
    if window_s <= 0:
        raise ValueError("window_s must be positive")
    hop_s = window_s if hop_s is None else hop_s
    if hop_s <= 0:
        raise ValueError("hop_s must be positive")
    n, win = clip.num_samples, int(round(window_s * clip.sample_rate))
    if n <= win:
        return [clip]
    if policy == "first":
        starts = [0]
    elif policy == "center":
        starts = [(n - win) // 2]
    elif policy == "sliding":
        hop = max(1, int(round(hop_s * clip.sample_rate)))
        starts = list(range(0, n - win, hop))
        if not starts or starts[-1] + win < n:
            starts.append(n - win)
    else:
        raise ValueError(f"unknown window policy {policy!r}: use 'first', 'center' or 'sliding'")
    windows = []
    for i, start in enumerate(starts):
        wave = clip.waveform[start:start + win]
        windows.append(replace(clip, waveform=wave, id=f"{clip.id}_w{i:02d}",
                               offset_s=clip.offset_s + start / clip.sample_rate, flags=list(clip.flags)))
    return windows

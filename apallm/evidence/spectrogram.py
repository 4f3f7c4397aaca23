"""Structured spectrogram images: the time-frequency evidence an ALLM is shown.

A "structured" image has everything needed to read it without a caption: a fixed dB scale (0 dB = a
full-scale sine, so levels compare across clips), a fixed colour map, labelled axes (frequency in Hz, time in
s), guide lines at the band edges 1, 2, 4 and 8 kHz, and a header naming the transform and the scale. Its size
snaps to multiples of 28 px, Qwen2.5-Omni's vision patch grid (14 px patches merged 2x2).

Rendering is deterministic: the same waveform and settings give a byte-identical PNG.
"""

from __future__ import annotations

import functools
import io
import math
import warnings
from dataclasses import asdict, dataclass, field

import librosa
import numpy as np
from PIL import Image, ImageDraw, ImageFont

PATCH = 28
KINDS = ("cqt", "mel", "stft")
BAND_EDGES_HZ = (1000, 2000, 4000, 8000)
_FLOOR_DB = -150.0


@dataclass(frozen=True)
class SpectrogramConfig:
    """How to compute and draw the spectrogram. ``width``/``height`` are snapped to multiples of 28."""

    kind: str = "cqt"
    width: int = 448
    height: int = 448
    db_min: float = -100.0
    db_max: float = 0.0
    cmap: str = "magma"
    fmin_hz: float = 32.70  # C1, as librosa's CQT default
    bins_per_octave: int = 24
    n_mels: int = 128
    n_fft: int = 512
    guides_hz: tuple[float, ...] = BAND_EDGES_HZ

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown spectrogram kind {self.kind!r}: choose one of {', '.join(KINDS)}")
        if self.db_max <= self.db_min:
            raise ValueError("db_max must be greater than db_min")
        object.__setattr__(self, "width", snap_to_patch(self.width))
        object.__setattr__(self, "height", snap_to_patch(self.height))


def snap_to_patch(pixels: int, patch: int = PATCH, minimum: int = 8 * PATCH) -> int:
    """Round to the nearest multiple of ``patch`` (at least ``minimum``, room for axes)."""
    return max(minimum, int(round(pixels / patch)) * patch)


@dataclass
class Spectrogram:
    """The rendered image (PNG bytes) and the matrix behind it (dB re full-scale sine, bins x frames)."""

    png: bytes
    matrix_db: np.ndarray
    frequencies_hz: np.ndarray
    times_s: np.ndarray
    config: SpectrogramConfig
    plot_box: tuple[int, int, int, int]  # left, top, right, bottom of the data area in pixels
    meta: dict = field(default_factory=dict)

    @property
    def image(self) -> Image.Image:
        return Image.open(io.BytesIO(self.png))

    def y_of(self, freq: float) -> float | None:
        """Pixel row of a frequency on the drawn axis (clamped to the plot; None when below it)."""
        left, top, right, bottom = self.plot_box
        if freq <= 0 and self.config.kind == "cqt":
            return float(bottom)
        return _y_of(max(float(freq), float(self.frequencies_hz[0])), self.frequencies_hz, self.config.kind, top,
                     bottom) if freq <= self.frequencies_hz[-1] * 1.03 else float(top)

    def x_of(self, t: float) -> float:
        """Pixel column of a time in seconds (clamped to the plot)."""
        left, top, right, bottom = self.plot_box
        duration = float(self.meta.get("duration_s") or 1.0)
        return left + max(0.0, min(1.0, t / duration)) * (right - left)

    def to_dict(self) -> dict:
        """JSON-ready description (no matrix)."""
        cfg = asdict(self.config)
        cfg["guides_hz"] = list(cfg["guides_hz"])
        return {
            **cfg,
            "frequency_range_hz": [round(float(self.frequencies_hz[0]), 2), round(float(self.frequencies_hz[-1]), 2)],
            "n_bins": int(self.matrix_db.shape[0]),
            "n_frames": int(self.matrix_db.shape[1]),
            "plot_box": list(self.plot_box),
            **self.meta,
        }


# ----------------------------------------------------------------------------------------------- transforms

def _memoize_librosa_cqt_filters() -> None:
    """Cache librosa's CQT filter bank in memory.

    librosa rebuilds the frequency-domain filters on every call (about two thirds of a CQT's time on a short
    clip) unless its disk cache is configured. The filters depend only on the settings, so keep them.
    If a librosa release renames the private helper, this does nothing and CQT is only slower.
    """
    from librosa.core import constantq

    original = getattr(constantq, "__vqt_filter_fft", None)
    if original is None or getattr(original, "_apallm_memo", False):
        return
    memo: dict = {}

    def key_of(value):
        if isinstance(value, np.ndarray):
            return ("nd", value.dtype.str, value.shape, value.tobytes())
        return value if isinstance(value, (int, float, str, type(None), bool)) else repr(value)

    @functools.wraps(original)
    def cached(*args, **kwargs):
        key = (tuple(key_of(a) for a in args), tuple(sorted((k, key_of(v)) for k, v in kwargs.items())))
        if key not in memo:
            if len(memo) > 64:
                memo.clear()
            memo[key] = original(*args, **kwargs)
        basis, n_fft, lengths = memo[key]
        # librosa rescales the basis in place for each octave: hand out a copy, keep the original
        return basis.copy(), n_fft, lengths

    cached._apallm_memo = True
    setattr(constantq, "__vqt_filter_fft", cached)


_memoize_librosa_cqt_filters()


def _cqt_hop(n_samples: int, plot_width: int, n_octaves: int) -> int:
    # librosa's multirate CQT needs the hop divisible by 2**(n_octaves - 1); aim for about one frame a pixel
    base = 2 ** max(0, n_octaves - 1)
    want = max(1, n_samples // max(1, plot_width))
    return base * 2 ** max(0, int(math.floor(math.log2(max(1, want / base)))))


def _cqt_layout(sr: int, cfg: SpectrogramConfig) -> tuple[int, np.ndarray]:
    # highest bin whose filter stays below Nyquist (hann filters reach about 0.75 bins above centre)
    q = 1.0 / (2 ** (1.0 / cfg.bins_per_octave) - 1)
    top = (sr / 2) / (1 + 0.75 / q) * 0.999
    n_bins = int(math.floor(cfg.bins_per_octave * math.log2(top / cfg.fmin_hz))) + 1
    freqs = librosa.cqt_frequencies(n_bins, fmin=cfg.fmin_hz, bins_per_octave=cfg.bins_per_octave)
    return n_bins, freqs


def _transform(wave: np.ndarray, sr: int, cfg: SpectrogramConfig, plot_width: int):
    """Return (magnitude-or-power matrix, is_power, frequencies, hop)."""
    if cfg.kind == "cqt":
        n_bins, freqs = _cqt_layout(sr, cfg)
        hop = _cqt_hop(len(wave), plot_width, int(math.ceil(n_bins / cfg.bins_per_octave)))
        with warnings.catch_warnings():
            # the lowest octaves of a short clip are shorter than their FFT; librosa pads them and says so
            warnings.filterwarnings("ignore", message="n_fft=.* is too large for input signal")
            mag = np.abs(librosa.cqt(wave, sr=sr, hop_length=hop, fmin=cfg.fmin_hz, n_bins=n_bins,
                                     bins_per_octave=cfg.bins_per_octave))
        return mag, False, freqs, hop
    hop = max(cfg.n_fft // 4, len(wave) // max(1, 2 * plot_width))
    if cfg.kind == "mel":
        power = librosa.feature.melspectrogram(y=wave, sr=sr, n_fft=cfg.n_fft, hop_length=hop, n_mels=cfg.n_mels,
                                               fmin=0.0, fmax=sr / 2, power=2.0)
        freqs = librosa.mel_frequencies(n_mels=cfg.n_mels, fmin=0.0, fmax=sr / 2)
        return power, True, freqs, hop
    power = np.abs(librosa.stft(wave, n_fft=cfg.n_fft, hop_length=hop)) ** 2
    return power, True, librosa.fft_frequencies(sr=sr, n_fft=cfg.n_fft), hop


@functools.lru_cache(maxsize=32)
def _reference(sr: int, cfg: SpectrogramConfig) -> float:
    """The level a full-scale 1 kHz sine reaches in this transform: 0 dB on the image."""
    t = np.arange(2 * sr, dtype=np.float64) / sr
    sine = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)
    mat, is_power, _, _ = _transform(sine, sr, cfg, plot_width=256)
    peak = float(np.max(mat[:, mat.shape[1] // 4: 3 * mat.shape[1] // 4]))
    return peak if is_power else peak ** 2


def spectrogram_db(wave: np.ndarray, sr: int, cfg: SpectrogramConfig, plot_width: int | None = None):
    """The matrix in dB re a full-scale sine: (matrix_db [bins x frames], frequencies_hz, times_s)."""
    plot_width = plot_width or cfg.width
    mat, is_power, freqs, hop = _transform(np.asarray(wave, dtype=np.float32), sr, cfg, plot_width)
    power = mat if is_power else mat ** 2
    db = 10.0 * np.log10(np.maximum(power, 1e-30) / _reference(sr, cfg))
    db = np.maximum(db, _FLOOR_DB).astype(np.float32)
    times = librosa.frames_to_time(np.arange(db.shape[1]), sr=sr, hop_length=hop)
    return db, freqs, times


# ----------------------------------------------------------------------------------------------- drawing

@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    import matplotlib

    path = f"{matplotlib.get_data_path()}/fonts/ttf/DejaVuSans.ttf"
    try:
        return ImageFont.truetype(path, size)
    except OSError:  # pragma: no cover - matplotlib always ships DejaVu
        return ImageFont.load_default()


@functools.lru_cache(maxsize=8)
def _lut(cmap: str) -> np.ndarray:
    import matplotlib

    colors = matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3]
    return np.round(colors * 255).astype(np.uint8)


def _fmt_hz(f: float) -> str:
    return f"{f / 1000:g}k" if f >= 1000 else f"{f:g}"


def _y_of(freq: float, freqs: np.ndarray, kind: str, top: int, bottom: int) -> float | None:
    """Pixel row of a frequency on the drawn axis (None when outside it)."""
    lo, hi = float(freqs[0]), float(freqs[-1])
    if kind == "cqt":
        pos = (math.log2(freq) - math.log2(lo)) / (math.log2(hi) - math.log2(lo)) if freq > 0 else -1
    elif kind == "mel":
        m = librosa.hz_to_mel
        pos = (float(m(freq)) - float(m(lo))) / (float(m(hi)) - float(m(lo)))
    else:
        pos = (freq - lo) / (hi - lo)
    if pos < -1e-6 or pos > 1.0 + 0.03:
        return None
    pos = min(max(pos, 0.0), 1.0)
    return bottom - pos * (bottom - top)


def _freq_ticks(kind: str) -> tuple[float, ...]:
    if kind == "cqt":
        return (62.5, 125, 250, 500, 1000, 2000, 4000, 8000)
    if kind == "mel":
        return (0, 250, 500, 1000, 2000, 4000, 8000)
    return (0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000)


def _time_step(duration: float) -> float:
    for step in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 15, 20, 30, 60, 120):
        if duration / step <= 7:
            return step
    return 300.0


def render_spectrogram(wave: np.ndarray, sr: int, config: SpectrogramConfig | None = None, *,
                       markers_s: list[float] | tuple[float, ...] = (),
                       regions_s: list[tuple[float, float]] | tuple = (),
                       title: str | None = None) -> Spectrogram:
    """Render ``wave`` (mono, ``sr`` Hz) as a structured spectrogram PNG and return it with its matrix.

    ``markers_s`` draws dashed vertical lines (e.g. splice candidates); ``regions_s`` shades time spans
    (e.g. predicted spoofed regions). Neither is drawn by default: the ALLM sees the plain evidence.
    """
    cfg = config or SpectrogramConfig()
    W, H = cfg.width, cfg.height
    fs = max(10, H // 40)
    left, right, top, bottom = int(fs * 3.6), W - 8, int(fs * 1.9), H - int(fs * 2.4)
    pw, ph = right - left, bottom - top

    db, freqs, times = spectrogram_db(wave, sr, cfg, plot_width=pw)
    duration = len(wave) / sr

    # data area: fixed dB range -> colour map, low frequencies at the bottom
    norm = np.clip((db - cfg.db_min) / (cfg.db_max - cfg.db_min), 0.0, 1.0)
    plane = Image.fromarray(np.ascontiguousarray(norm[::-1]).astype(np.float32), mode="F")
    plane = np.asarray(plane.resize((pw, ph), Image.Resampling.BILINEAR), dtype=np.float32)
    rgb = _lut(cfg.cmap)[np.clip(np.round(plane * 255), 0, 255).astype(np.uint8)]

    canvas = Image.new("RGB", (W, H), (255, 255, 255))
    canvas.paste(Image.fromarray(rgb, mode="RGB"), (left, top))
    draw = ImageDraw.Draw(canvas)
    font, small = _font(fs), _font(max(8, fs - 2))
    ink, guide = (0, 0, 0), (0, 230, 255)

    for start, end in regions_s:
        x0 = left + max(0.0, min(1.0, start / duration)) * pw
        x1 = left + max(0.0, min(1.0, end / duration)) * pw
        overlay = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        ImageDraw.Draw(overlay).rectangle([x0, top, x1, bottom], fill=(255, 40, 40, 70), outline=(255, 40, 40, 255))
        canvas = Image.alpha_composite(canvas.convert("RGBA"), overlay).convert("RGB")
        draw = ImageDraw.Draw(canvas)

    # band-edge guides, dashed, labelled at the right edge of the plot
    for f in cfg.guides_hz:
        y = _y_of(f, freqs, cfg.kind, top, bottom)
        if y is None:
            continue
        y = int(round(y))
        for x in range(left, right, 8):
            draw.line([(x, y), (min(x + 4, right), y)], fill=guide, width=1)
        above = y - fs >= top  # label above the line unless that would leave the plot
        draw.text((right - 2, y - 1 if above else y + 2), _fmt_hz(f), fill=guide, font=small,
                  anchor="rb" if above else "rt")

    for t in markers_s:
        if 0 <= t <= duration:
            x = int(round(left + t / duration * pw))
            for y in range(top, bottom, 6):
                draw.line([(x, y), (x, min(y + 3, bottom))], fill=(255, 255, 255), width=1)

    # axes, ticks and labels
    draw.rectangle([left - 1, top - 1, right, bottom], outline=ink, width=1)
    for f in _freq_ticks(cfg.kind):
        y = _y_of(f, freqs, cfg.kind, top, bottom)
        if y is None:
            continue
        y = int(round(y))
        draw.line([(left - 5, y), (left - 1, y)], fill=ink, width=1)
        draw.text((left - 7, y), _fmt_hz(f), fill=ink, font=small, anchor="rm")
    step = _time_step(duration)
    for i in range(int(duration / step + 1e-9) + 1):
        t = i * step
        x = int(round(left + t / duration * pw))
        draw.line([(x, bottom), (x, bottom + 4)], fill=ink, width=1)
        draw.text((x, bottom + 5), f"{t:g}", fill=ink, font=small, anchor="mt")
    draw.text((2, top - 3), "Hz", fill=ink, font=font, anchor="lb")
    draw.text((2, H - 2), "t (s)", fill=ink, font=font, anchor="lb")
    header = title or (f"{cfg.kind.upper()} | {cfg.db_min:g} to {cfg.db_max:g} dB re full scale "
                       f"| {duration:.2f} s")
    draw.text((left, top - 3), header, fill=ink, font=font, anchor="lb")

    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=False, compress_level=1)
    return Spectrogram(png=buf.getvalue(), matrix_db=db, frequencies_hz=np.asarray(freqs), times_s=times,
                       config=cfg, plot_box=(left, top, right, bottom), meta={"duration_s": round(duration, 4)})

"""Measured acoustic cues: numbers with units, a natural-speech range and a phrase an ALLM can cite.

All cues of a clip come from one pass: one STFT (32 ms, 10 ms hop, with its phase), a fine one (128 ms) for the
long-term spectral lines and the sub-bass, 25 ms frame levels and YIN pitch. Reference ranges, phrase templates
and the rationale vocabulary (``cite``) live in ``prompts/cues.yaml``; eval/cue_ranges.py measures how far each
cue separates bona fide from spoof on unseen sources.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from importlib import resources

import librosa
import numpy as np
import soxr
import yaml

from apallm.audio import Clip

N_FFT = 512
HOP = 160  # 10 ms at 16 kHz
FRAME = 400  # 25 ms
OCTAVE_BANDS = ((125, 250), (250, 500), (500, 1000), (1000, 2000), (2000, 4000), (4000, 8000))
BANDWIDTH_DROP_DB = 50.0
#: a band limit: the spectrum falls this far (dB) within CLIFF_SPAN of a frequency ...
CLIFF_DB = 20.0
#: ... (frequency ratio: a third of an octave) ...
CLIFF_SPAN = 2.0 ** (1.0 / 3.0)
#: ... against the median level of this much spectrum (Hz) just below it; cliffs are sought above CLIFF_MIN_HZ
CLIFF_REF_HZ = 500.0
CLIFF_MIN_HZ = 1000.0
#: the cut-off is where the spectrum has fallen this many dB below the passband level under the cliff
CUTOFF_DB = 6.0
FLOOR_DBFS = -120.0
F0_MIN, F0_MAX = 60.0, 500.0
VOICING_CORR = 0.7
SPLICE_Z = 8.0
SPLICE_MIN_GAP_S = 0.3
MAX_SPLICES = 5
#: long-term spectrum for narrow peaks and the sub-bass band: 128 ms frames (7.8 Hz bins)
N_FFT_FINE = 2048
#: a peak's prominence is its level above the running median over this many fine bins (~500 Hz)
PEAK_MEDIAN_BINS = 65
PEAK_BAND_HZ = (1000.0, 7500.0)
SUB_BASS_HZ = (20.0, 80.0)
SUB_BASS_REF_HZ = (100.0, 300.0)
HF_BAND_HZ = (4000.0, 8000.0)
SPEECH_BAND_HZ = (300.0, 4000.0)
#: fewest frames (or frame pairs) a statistic over voiced or pause frames needs
MIN_FRAMES = 10
#: a pause floor at or below this is digital silence: no noise whose spectrum could be measured
DIGITAL_SILENCE_DBFS = -100.0
N_CEPSTRA = 24
#: smallest spectral-shape change (mean |dB| across mel bands) that counts: steady tones stay below it
SPLICE_MIN_FLUX_DB = 1.0


@dataclass
class Cue:
    """One measurement. ``value`` is None when it cannot be measured on this clip (e.g. no voiced frames)."""

    name: str
    value: float | None
    unit: str
    range: tuple[float, float]
    phrase: str
    domain: str  # "frequency" or "time"
    status: str  # "low", "normal", "high" or "na"
    description: str = ""
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "value": None if self.value is None else _round(self.value),
            "unit": self.unit,
            "range": [_round(self.range[0]), _round(self.range[1])],
            "phrase": self.phrase,
            "domain": self.domain,
            "status": self.status,
        }
        if self.detail:
            out["detail"] = self.detail
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Cue":
        return cls(name=data["name"], value=data.get("value"), unit=data.get("unit", ""),
                   range=tuple(data.get("range", (math.nan, math.nan))), phrase=data.get("phrase", ""),
                   domain=data.get("domain", "time"), status=data.get("status", "na"),
                   description=data.get("description", ""), detail=data.get("detail", {}))

    def to_text(self) -> str:
        spec = cue_specs().get(self.name, {})
        fmt = spec.get("fmt", "{:g}")
        value = "n/a" if self.value is None else fmt.format(self.value)
        unit = f" {self.unit}" if self.unit and self.unit not in ("count",) else ""
        lo, hi = (fmt.format(x) for x in self.range)
        flag = "" if self.status == "normal" else f" {self.status.upper()}"
        return f"{self.name} = {value}{unit} [natural {lo} to {hi}]{flag}: {self.phrase}"


def _round(x: float) -> float:
    if x is None or not math.isfinite(x):
        return x
    return float(f"{x:.6g}")


@functools.lru_cache(maxsize=1)
def cue_specs() -> dict:
    """The cue table from prompts/cues.yaml (installed as ``apallm.prompts``)."""
    text = resources.files("apallm.prompts").joinpath("cues.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def make_cue(name: str, value: float | None, in_region: bool = False, **fields) -> Cue:
    """Build a cue from its spec: status against the range and the phrase from its template. ``in_region``: the
    value was measured in the second around an attributed span or cell (:func:`apallm.attribution.cues_in`), so
    it is judged against the natural range of such measurements (``region_range``; the whole-clip ``range`` where
    the spec has none)."""
    spec = cue_specs()[name]
    lo, hi = (float(x) for x in (spec.get("region_range", spec["range"]) if in_region else spec["range"]))
    if value is None or not math.isfinite(value):
        status = "na"
        value = None
    elif value < lo:
        status = "low"
    elif value > hi:
        status = "high"
    else:
        status = "normal"
    fmt = spec.get("fmt", "{:g}")
    template = spec["phrase"][status]
    values = {"v": "" if value is None else fmt.format(value), "lo": fmt.format(lo), "hi": fmt.format(hi),
              "unit": spec.get("unit", "")}
    phrase = template.format(**values, **{k: v for k, v in fields.items() if k != "detail"})
    return Cue(name=name, value=value, unit=spec.get("unit", ""), range=(lo, hi), phrase=phrase,
               domain=spec["domain"], status=status, description=spec.get("description", ""),
               detail=fields.get("detail", {}))


# ------------------------------------------------------------------------------------------ measurements

def _db(power, floor=1e-12):
    return 10.0 * np.log10(np.maximum(power, floor))


def frame_levels_dbfs(wave: np.ndarray) -> np.ndarray:
    """25 ms frame RMS level every 10 ms, in dBFS (0 dBFS = full-scale sine)."""
    if len(wave) < N_FFT:
        wave = np.pad(wave, (0, N_FFT - len(wave)))
    # frames start at i * HOP like the STFT's, offset so both are centred within 4 ms of each other
    offset = (N_FFT - FRAME) // 2
    frames = librosa.util.frame(wave[offset:], frame_length=FRAME, hop_length=HOP)
    ms = np.mean(frames.astype(np.float64) ** 2, axis=0)
    return np.maximum(_db(2.0 * ms, floor=1e-30), FLOOR_DBFS)


def activity(levels_db: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Split frames into active sound and pauses: (active mask, speech level, pause floor).

    Speech level is the 95th percentile of frame levels, the floor the 10th. Frames more than
    min(30 dB, half the contrast) below the speech level are pauses. With less than 10 dB of contrast the
    clip has no distinct pauses and every frame counts as active.
    """
    speech = float(np.percentile(levels_db, 95))
    floor = float(np.percentile(levels_db, 10))
    contrast = speech - floor
    if contrast < 10.0:
        return np.ones_like(levels_db, dtype=bool), speech, floor
    return levels_db > speech - min(30.0, 0.5 * contrast), speech, floor


def _smoothed_level_db(ltas_power: np.ndarray) -> np.ndarray:
    """The long-term spectrum in dB under a running median over 5 bins (~150 Hz): a lone tonal line does not
    count as bandwidth, and a cut-off is not smeared."""
    level = _db(ltas_power, floor=1e-20)
    return np.median(np.lib.stride_tricks.sliding_window_view(np.pad(level, 2, mode="edge"), 5), axis=1)


def bandwidth_hz(ltas_power: np.ndarray, freqs: np.ndarray, drop_db: float = BANDWIDTH_DROP_DB) -> float | None:
    """Effective bandwidth: the cut-off of a band limit where the long-term spectrum has one, else the
    highest frequency within ``drop_db`` of the speech band's level.

    A band limit (codec, resampler, telephone channel, a vocoder trained on narrow-band audio) is a cliff: a
    fall of :data:`CLIFF_DB` or more within a third of an octave (at least 60 dB/octave; a 10th-order
    Butterworth falls 60 dB/octave, natural speech about 6-12). Where the spectrum has such a cliff, the
    bandwidth is its cut-off: the first frequency :data:`CUTOFF_DB` below the passband level just under the
    cliff (a Butterworth's -3 dB point reads within 5 %). Without a cliff, the highest frequency
    within ``drop_db`` of the speech band (90th percentile of the spectrum's dB values between 100 Hz and
    4 kHz): natural speech slopes gently and stays within 50 dB up to 8 kHz in a clean 16 kHz recording.
    """
    level = _smoothed_level_db(ltas_power)
    band = (freqs >= 100) & (freqs <= 4000)
    if not band.any() or not np.isfinite(level).any():
        return None
    cutoff = _cliff_cutoff(level, freqs)
    if cutoff is not None:
        return cutoff
    ref = float(np.percentile(level[band], 90))
    above = np.nonzero(level >= ref - drop_db)[0]
    if len(above) == 0:
        return None
    return float(freqs[above[-1]])


def _cliff_cutoff(level: np.ndarray, freqs: np.ndarray) -> float | None:
    """The cut-off of the highest cliff in a smoothed dB spectrum (see :func:`bandwidth_hz`), or None."""
    df = float(freqs[1] - freqs[0])
    ref_bins = max(2, int(round(CLIFF_REF_HZ / df)))
    # the most any bin from frequency j upwards reaches: the loudest of what lies beyond
    beyond = np.maximum.accumulate(level[::-1])[::-1]
    last = len(level) - 1
    cliff = []
    for i in range(len(level)):
        if freqs[i] < CLIFF_MIN_HZ:
            continue
        j = int(np.ceil(freqs[i] * CLIFF_SPAN / df))
        if j > last - 1:  # fewer than two bins beyond: too close to Nyquist to tell
            break
        passband = float(np.median(level[max(0, i - ref_bins): i + 1]))
        if passband - beyond[j] >= CLIFF_DB:
            cliff.append((i, passband))
    if not cliff:
        return None
    # the highest run of cliff bins; its passband is the loudest reference inside it
    run_start = len(cliff) - 1
    while run_start > 0 and cliff[run_start - 1][0] == cliff[run_start][0] - 1:
        run_start -= 1
    start = cliff[run_start][0]
    passband = max(p for _, p in cliff[run_start:])
    inside = np.nonzero(level[start:] >= passband - CUTOFF_DB)[0]
    # the first bin past the last one within CUTOFF_DB: where the spectrum is CUTOFF_DB down
    edge = start + (inside[-1] + 1 if len(inside) else 0)
    return float(freqs[min(edge, len(freqs) - 1)])


def splice_candidates(log_mel: np.ndarray, active: np.ndarray, times: np.ndarray) -> list[tuple[float, float]]:
    """Spectral-flux spikes inside continuous sound: [(time_s, robust z-score)], strongest first.

    Flux is the mean absolute change of the level-normalised log-mel spectrum between the 50 ms before and
    after each frame: a persistent change of spectral shape (timbre, channel, band limit) scores high, while a
    change of loudness or a single-frame click does not. Frames next to a pause are skipped: a speech onset
    after silence is not a splice.
    """
    n = log_mel.shape[1]
    span = 5
    log_mel = log_mel - log_mel.mean(axis=0, keepdims=True)
    if n < 2 * span + 2:
        return []
    csum = np.cumsum(np.pad(log_mel, ((0, 0), (1, 0))), axis=1)
    idx = np.arange(span, n - span + 1)
    before = (csum[:, idx] - csum[:, idx - span]) / span
    after = (csum[:, idx + span] - csum[:, idx]) / span
    flux = np.mean(np.abs(after - before), axis=0)
    act = active[:n].astype(np.int32)
    act_csum = np.concatenate([[0], np.cumsum(act)])
    # every frame in the 2*span window around the boundary must be active
    fully_active = (act_csum[idx + span] - act_csum[idx - span]) == 2 * span
    if fully_active.sum() < 10:
        return []
    ref = flux[fully_active]
    med = float(np.median(ref))
    mad = float(np.median(np.abs(ref - med))) * 1.4826 + 1e-6
    z = (flux - med) / mad
    z[~fully_active] = 0.0
    peaks = []
    order = np.argsort(-z, kind="stable")
    for i in order:
        if z[i] < SPLICE_Z or len(peaks) >= MAX_SPLICES:
            break
        if flux[i] < SPLICE_MIN_FLUX_DB:  # an outlier of a perfectly steady sound, not an audible change
            continue
        t = float(times[idx[i]])
        if all(abs(t - p) >= SPLICE_MIN_GAP_S for p, _ in peaks):
            peaks.append((t, float(z[i])))
    return peaks


def pitch_track(wave: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """YIN F0 every 10 ms and its periodicity (normalised autocorrelation at the F0 period).

    Pitch needs no more than 4 kHz of bandwidth, so it is tracked at 8 kHz: a quarter of the work.
    """
    rate = 8000
    if sr != rate:
        wave = soxr.resample(wave, sr, rate, quality="HQ").astype(np.float32, copy=False)
    hop = rate // 100
    frame_length = 2 * int(math.ceil(rate / F0_MIN)) + 2 * hop  # two periods of the lowest F0 and a margin
    f0 = librosa.yin(wave, fmin=F0_MIN, fmax=F0_MAX, sr=rate, frame_length=frame_length, hop_length=hop,
                     center=True)
    padded = np.pad(wave, (frame_length // 2, frame_length // 2))
    frames = librosa.util.frame(padded, frame_length=frame_length, hop_length=hop).T[: len(f0)]
    max_lag = int(rate / F0_MIN)
    lag = np.clip(np.round(rate / f0).astype(int), 1, max_lag)
    width = frame_length - max_lag - 1
    x = frames[:, :width]
    y = np.take_along_axis(frames, np.arange(width)[None, :] + lag[:, None], axis=1)
    num = np.sum(x * y, axis=1)
    den = np.sqrt(np.sum(x * x, axis=1) * np.sum(y * y, axis=1)) + 1e-12
    return f0, num / den


# ------------------------------------------------------------------------------------------ synthesis cues

def ltas_peak(wave: np.ndarray, sr: int) -> tuple[float, float] | None:
    """The most prominent narrow peak of the long-term spectrum between 1 and 7.5 kHz: (prominence in dB
    above the running median over ~500 Hz, its frequency in Hz).

    Upsampling layers of neural vocoders (transposed convolutions, stride N) leave steady tones at multiples
    of fs/N, a line across the whole spectrogram; in natural speech a moving pitch smears harmonics in the
    long-term average, and only a steady hum or whistle makes such a line.
    """
    if len(wave) < N_FFT_FINE:
        wave = np.pad(wave, (0, N_FFT_FINE - len(wave)))
    power = np.abs(librosa.stft(wave, n_fft=N_FFT_FINE, hop_length=N_FFT_FINE // 4, center=False)) ** 2
    level = _db(power.mean(axis=1), floor=1e-20)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=N_FFT_FINE)
    from scipy.ndimage import median_filter

    prominence = level - median_filter(level, size=PEAK_MEDIAN_BINS, mode="nearest")
    band = (freqs >= PEAK_BAND_HZ[0]) & (freqs <= min(PEAK_BAND_HZ[1], sr / 2))
    if not band.any():
        return None
    i = int(np.argmax(np.where(band, prominence, -np.inf)))
    return float(prominence[i]), float(freqs[i])


def sub_bass_db(wave: np.ndarray, sr: int, active: np.ndarray) -> float | None:
    """Energy at 20-80 Hz against 100-300 Hz over active frames, dB (fine 7.8 Hz bins).

    A microphone picks up the voice's lowest harmonics, breath and room rumble below 80 Hz; acoustic models
    whose mel spectrogram starts at 80 Hz or so leave that band to the vocoder, which fills it with little.
    """
    if len(wave) < N_FFT_FINE:
        wave = np.pad(wave, (0, N_FFT_FINE - len(wave)))
    power = np.abs(librosa.stft(wave, n_fft=N_FFT_FINE, hop_length=HOP, center=False)) ** 2
    # the fine frame i is centred (N_FFT_FINE - N_FFT) / 2 samples after level frame i
    shift = int(round((N_FFT_FINE - N_FFT) / 2 / HOP))
    idx = np.arange(power.shape[1]) + shift
    keep = idx < len(active)
    sel = np.zeros(power.shape[1], dtype=bool)
    sel[keep] = active[idx[keep]]
    if sel.sum() < MIN_FRAMES:
        sel = np.ones(power.shape[1], dtype=bool)
    ltas = power[:, sel].mean(axis=1)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=N_FFT_FINE)
    sub = ltas[(freqs >= SUB_BASS_HZ[0]) & (freqs < SUB_BASS_HZ[1])].sum()
    ref = ltas[(freqs >= SUB_BASS_REF_HZ[0]) & (freqs < SUB_BASS_REF_HZ[1])].sum()
    if ref <= 0:
        return None
    return float(max(_db(sub / ref, floor=1e-12), FLOOR_DBFS))


def hf_phase_spread(stft: np.ndarray, freqs: np.ndarray, active: np.ndarray) -> float | None:
    """Median over active frames of the standard deviation of the group delay across 4-8 kHz, in radians
    per bin (the phase difference of neighbouring bins, unwrapped along frequency).

    0 for one impulse in the frame (a constant group delay); random phase (noise) gives about 2.3. Vocoders
    that draw the high band's phase from noise, or reconstruct it (Griffin-Lim), spread it more than the
    glottal pulses and fricatives of natural speech.
    """
    band = (freqs >= HF_BAND_HZ[0]) & (freqs <= HF_BAND_HZ[1])
    frames = stft[:, :len(active)][:, active[:stft.shape[1]]]
    if frames.shape[1] < MIN_FRAMES or band.sum() < 3:
        return None
    phase = np.unwrap(np.angle(frames[band]), axis=0)
    return float(np.median(np.std(np.diff(phase, axis=0), axis=0)))


def envelope_variation_db(log_mel: np.ndarray, voiced: np.ndarray) -> float | None:
    """Mean over mel-cepstral coefficients 1-24 of their standard deviation across voiced frames, dB: how
    much the spectral envelope moves from sound to sound (the global variance of statistical TTS).

    An acoustic model trained on a mean-squared error averages envelopes and flattens it; a steady vowel has
    almost none.
    """
    frames = log_mel[:, :len(voiced)][:, voiced[:log_mel.shape[1]]]
    if frames.shape[1] < MIN_FRAMES:
        return None
    from scipy.fft import dct

    ceps = dct(frames, type=2, norm="ortho", axis=0)[1:N_CEPSTRA + 1]
    return float(np.mean(np.std(ceps, axis=1)))


def band_flux_db(power: np.ndarray, freqs: np.ndarray, active: np.ndarray,
                 band_hz: tuple[float, float] = HF_BAND_HZ) -> float | None:
    """Median change of the band's level between consecutive active 10 ms frames, dB.

    Fricatives, bursts and breath make the 4-8 kHz band of natural speech flicker from frame to frame; a
    vocoder's high band can be unusually smooth over time (or, as noise, unusually busy).
    """
    sel = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    level = _db(power[sel].sum(axis=0), floor=1e-20)
    act = active[:len(level)]
    pairs = act[1:] & act[:-1]
    if pairs.sum() < MIN_FRAMES:
        return None
    return float(np.median(np.abs(np.diff(level))[pairs]))


def pause_hf_tilt_db(power: np.ndarray, freqs: np.ndarray, active: np.ndarray, pause_floor: float) -> float | None:
    """The noise in the pauses: energy at 4-8 kHz against 0.3-4 kHz, dB (white noise +0.3, pink -5.7).

    Room and microphone noise and breath have their own colour; a vocoder's pauses carry a faint copy of its
    speech spectrum or its own hiss. None without MIN_FRAMES pause frames or in digital silence.
    """
    pause = ~active[:power.shape[1]]
    if pause.sum() < MIN_FRAMES or pause_floor <= DIGITAL_SILENCE_DBFS:
        return None
    ltas = power[:, pause].mean(axis=1)
    hf = ltas[(freqs >= HF_BAND_HZ[0]) & (freqs <= HF_BAND_HZ[1])].sum()
    lf = ltas[(freqs >= SPEECH_BAND_HZ[0]) & (freqs < SPEECH_BAND_HZ[1])].sum()
    if hf <= 0 or lf <= 0:
        return None
    return float(_db(hf / lf))


def voice_quality(f0: np.ndarray, periodicity: np.ndarray, levels: np.ndarray,
                  voiced: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """(HNR dB, F0 jitter %, shimmer dB) over voiced 10 ms frames.

    HNR: median of 10 log10(r / (1 - r)), r the normalised autocorrelation at the pitch period (harmonic
    against noise power below 4 kHz). Jitter and shimmer are frame-level: the median relative change of F0,
    and the median change of the 25 ms level, between consecutive voiced frames (not cycle to cycle).
    """
    hnr = jitter = shimmer = None
    if voiced.sum() >= MIN_FRAMES:
        r = np.clip(periodicity[voiced], 1e-3, 0.999)
        hnr = float(np.median(10.0 * np.log10(r / (1.0 - r))))
    pairs = voiced[1:] & voiced[:-1]
    if pairs.sum() >= MIN_FRAMES:
        jitter = float(100.0 * np.median((np.abs(np.diff(f0)) / f0[1:])[pairs]))
        shimmer = float(np.median(np.abs(np.diff(levels[:len(voiced)]))[pairs]))
    return hnr, jitter, shimmer


def cepstral_peak_prominence(stft: np.ndarray, voiced: np.ndarray, sr: int) -> tuple[float, float] | None:
    """Cepstral peak prominence over voiced frames: (median CPP in dB, the F0 in Hz of the median peak).

    The real cepstrum of each voiced frame's dB spectrum (32 ms) has a peak at the pitch period, as high as the
    harmonics stand out of the noise between them; CPP is that peak above the cepstrum's regression line over
    the quefrencies of F0_MAX to F0_MIN. Here in the units of ``irfft`` of the dB spectrum (a clean harmonic
    comb gives several dB, breath and noise push it toward 0).
    """
    frames = np.abs(stft[:, :len(voiced)][:, voiced[:stft.shape[1]]])
    if frames.shape[1] < MIN_FRAMES:
        return None
    ceps = np.fft.irfft(_db(frames ** 2, floor=1e-18), axis=0)  # of 20 log10 |X|
    q = np.arange(ceps.shape[0]) / sr
    sel = (q >= 1.0 / F0_MAX) & (q <= 1.0 / F0_MIN)
    c, qq = ceps[sel], q[sel]
    slope, intercept = np.polyfit(qq, c, 1)  # one line per frame (columns)
    peak = np.argmax(c, axis=0)
    cpp = c[peak, np.arange(c.shape[1])] - (slope * qq[peak] + intercept)
    return float(np.median(cpp)), float(1.0 / np.median(qq[peak]))


def measure_cues(clip: Clip, in_region: bool = False) -> list[Cue]:
    """Every cue of ``clip`` (16 kHz mono), in a fixed order: frequency domain first, then time domain.
    ``in_region``: ``clip`` is the part of a clip around an attributed span or cell; its cues are judged against
    the natural ranges of such parts (see :func:`make_cue`)."""
    cue = functools.partial(make_cue, in_region=in_region)
    wave = np.asarray(clip.waveform, dtype=np.float32)
    sr = clip.sample_rate
    silent = clip.is_silent

    # frames lie inside the signal (no zero padding): a padded edge would leak energy above any band limit
    stft = librosa.stft(np.pad(wave, (0, max(0, N_FFT - len(wave)))), n_fft=N_FFT, hop_length=HOP, center=False)
    power = (np.abs(stft) ** 2).astype(np.float64)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
    levels = frame_levels_dbfs(wave)
    n = min(power.shape[1], len(levels))
    stft, power, levels = stft[:, :n], power[:, :n], levels[:n]
    active, speech_level, pause_floor = activity(levels)
    act_power = power[:, active] if active.any() else power
    log_mel = None
    if not silent:
        log_mel = _db(_mel_basis(sr) @ power)
        log_mel = np.maximum(log_mel, log_mel.max() - 80.0)

    f0 = periodicity = None
    voiced = np.zeros(n, dtype=bool)
    if not silent:
        f0, periodicity = pitch_track(wave, sr)
        m = min(len(f0), n)
        f0, periodicity = f0[:m], periodicity[:m]
        voiced = (periodicity > VOICING_CORR) & active[:m]

    cues: list[Cue] = []
    # ---------------- frequency domain
    ltas = act_power.mean(axis=1)
    cues.append(cue("bandwidth_hz", None if silent else bandwidth_hz(ltas, freqs)))
    total = float(ltas[(freqs >= 62.5)].sum())
    for lo, hi in OCTAVE_BANDS:
        sel = (freqs >= lo) & (freqs < hi) if hi < sr / 2 else (freqs >= lo)
        share = float(ltas[sel].sum()) / total if total > 0 and not silent else math.nan
        value = 10 * math.log10(share) if share > 0 else (math.nan if math.isnan(share) else -120.0)
        band = f"{lo:g}-{hi:g} Hz" if hi < 1000 else f"{lo / 1000:g}-{hi / 1000:g} kHz"
        cues.append(cue(f"band_energy_{lo}_{hi}", value, band=band))
    if silent:
        flatness = rolloff = None
    else:
        mag = np.sqrt(act_power)
        flatness = float(np.mean(librosa.feature.spectral_flatness(S=mag, power=2.0)))
        rolloff = float(np.median(librosa.feature.spectral_rolloff(S=mag, sr=sr, n_fft=N_FFT, roll_percent=0.85)))
    cues.append(cue("spectral_flatness", flatness))
    cues.append(cue("spectral_rolloff_hz", rolloff))
    peak = None if silent else ltas_peak(wave, sr)
    cues.append(cue("ltas_peak_db", None if peak is None else peak[0],
                    freq="n/a" if peak is None else f"{peak[1]:.0f}",
                    detail={} if peak is None else {"freq_hz": round(peak[1], 1)}))
    cues.append(cue("sub_bass_db", None if silent else sub_bass_db(wave, sr, active)))
    cues.append(cue("hf_phase_spread", None if silent else hf_phase_spread(stft, freqs, active)))
    cues.append(cue("envelope_variation_db", None if silent else envelope_variation_db(log_mel, voiced)))

    # ---------------- time domain
    cues.append(cue("speech_level_dbfs", None if silent else speech_level))
    cues.append(cue("pause_floor_dbfs", pause_floor))
    cues.append(cue("speech_to_pause_db", None if silent else speech_level - pause_floor))
    cues.append(cue("pause_ratio", None if silent else float(1.0 - active.mean())))

    f0_mean = f0_spread = voiced_ratio = None
    if not silent:
        m = len(f0)
        voiced_ratio = float(voiced.sum() / max(1, active[:m].sum()))
        if voiced.sum() >= 5:
            v = f0[voiced]
            f0_mean = float(np.mean(v))
            semis = 12.0 * np.log2(v / np.median(v))
            f0_spread = float(np.std(semis))
    cues.append(cue("f0_mean_hz", f0_mean))
    cues.append(cue("f0_spread_st", f0_spread))
    cues.append(cue("voiced_ratio", voiced_ratio))

    if silent:
        cues.append(cue("splice_candidates", None, times=""))
    else:
        times = (np.arange(n) * HOP + N_FFT / 2) / sr
        peaks = splice_candidates(log_mel, active, times)
        when = ", ".join(f"{t:.2f} s" for t, _ in sorted(peaks)) or "none"
        cues.append(cue("splice_candidates", float(len(peaks)), times=when,
                        detail={"times_s": [round(t, 3) for t, _ in sorted(peaks)],
                                "z": [round(z, 1) for _, z in sorted(peaks)]}))
    cues.append(cue("clipping_ratio", clip.clipping_ratio))
    cues.append(cue("dc_offset", clip.dc_offset))
    hnr = jitter = shimmer = None
    if not silent:
        hnr, jitter, shimmer = voice_quality(f0, periodicity, levels, voiced)
    cues.append(cue("hnr_db", hnr))
    cues.append(cue("f0_jitter_pct", jitter))
    cues.append(cue("shimmer_db", shimmer))
    cues.append(cue("hf_flux_db", None if silent else band_flux_db(power, freqs, active)))
    cues.append(cue("pause_hf_tilt_db", None if silent else pause_hf_tilt_db(power, freqs, active, pause_floor)))
    cpp = None if silent else cepstral_peak_prominence(stft, voiced, sr)
    cues.append(cue("cpp_db", None if cpp is None else cpp[0],
                    detail={} if cpp is None else {"peak_f0_hz": round(cpp[1], 1)}))
    return cues


@functools.lru_cache(maxsize=4)
def _mel_basis(sr: int) -> np.ndarray:
    return librosa.filters.mel(sr=sr, n_fft=N_FFT, n_mels=40, fmin=50.0, fmax=sr / 2).astype(np.float64)

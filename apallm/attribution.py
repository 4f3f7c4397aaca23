"""Where a detector looked: occlusion of time spans and frequency bands, and how P(spoof) moves.

>>> from apallm import load_audio, load_detector                       # doctest: +SKIP
>>> from apallm.attribution import attribute
>>> att = attribute(load_detector("default"), load_audio("clip.flac"))  # doctest: +SKIP
>>> att.top(3)                                                        # doctest: +SKIP

Each variant of the clip has one region replaced by the clip's own noise floor in the STFT domain: every
time-frequency bin of the region (a 0.5 s span across all frequencies, or one octave band across the whole
clip) gets the floor's magnitude (the 10th percentile over frames of that frequency's magnitude) and a random
phase, and the rest of the clip is resynthesised unchanged (Hann window, 75 % overlap: the unmasked part comes
back to within rounding). A region's ``delta`` is P(spoof) of the clip minus P(spoof) with the region masked:
positive where the region raised P(spoof). All variants go to :meth:`Detector.score` in one batch; a second,
small batch masks the cells where the strongest spans and bands cross (``top_k`` x ``top_k``).

Replacing a region by the clip's own noise floor keeps the clip's channel (its hiss and hum are still there)
and leaves no silence a detector could key on; band-stop filtering or zeroing instead adds a feature of its own
(a spectral hole). Comparing both maskings on real detectors, and holding the cost to 4 scoring passes, is
still to do: here the cost is (spans + bands + cells) passes, reported as ``cost_passes``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["OCTAVES", "Attribution", "Region", "attribute", "cues_in", "find_region_claims", "mask_region",
           "where_rationale"]

#: octave bands 125 Hz-8 kHz, as the measured cues use them
OCTAVES = ((125.0, 250.0), (250.0, 500.0), (500.0, 1000.0), (1000.0, 2000.0), (2000.0, 4000.0), (4000.0, 8000.0))
N_FFT = 512
HOP = 128
FLOOR_PERCENTILE = 10.0


@dataclass(frozen=True)
class Region:
    """A masked region and the drop of P(spoof) when it is masked. ``kind``: ``span`` (a time span across all
    frequencies), ``band`` (a frequency band across the whole clip) or ``cell`` (both)."""

    kind: str
    start_s: float
    end_s: float
    lo_hz: float
    hi_hz: float
    delta: float

    def to_dict(self) -> dict:
        return {"kind": self.kind, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "lo_hz": round(self.lo_hz, 1), "hi_hz": round(self.hi_hz, 1), "delta": round(self.delta, 4)}

    @classmethod
    def from_dict(cls, data: dict) -> Region:
        return cls(kind=data["kind"], start_s=float(data["start_s"]), end_s=float(data["end_s"]),
                   lo_hz=float(data["lo_hz"]), hi_hz=float(data["hi_hz"]), delta=float(data["delta"]))

    def phrase(self) -> str:
        """The rationale's sentence for the region, which :func:`find_region_claims` reads back."""
        return f"the detector's spoof evidence lies at {self.describe()} (P(spoof) drops by {self.delta:.2f} masked)"

    def describe(self) -> str:
        """``4-8 kHz between 1.20 and 1.70 s``, ``1.20-1.70 s``, or ``4-8 kHz``."""
        band = (f"{self.lo_hz:g}-{self.hi_hz:g} Hz" if self.hi_hz < 1000
                else f"{self.lo_hz / 1000:g}-{self.hi_hz / 1000:g} kHz")
        if self.kind == "band":
            return band
        span = f"{self.start_s:.2f}-{self.end_s:.2f} s"
        return span if self.kind == "span" else f"{band} between {self.start_s:.2f} and {self.end_s:.2f} s"


@dataclass
class Attribution:
    """P(spoof) of the clip, every span's and band's delta, the crossing cells', and what it cost."""

    score: float
    spans: list[Region]
    bands: list[Region]
    cells: list[Region] = field(default_factory=list)
    mask: str = "noise_floor"
    n_variants: int = 0
    cost_passes: float = 0.0

    def top(self, k: int = 3, kinds: Sequence[str] = ("cell", "span", "band")) -> list[Region]:
        """The ``k`` regions that raise P(spoof) most (positive delta), largest first."""
        regions = [r for r in (*self.cells, *self.spans, *self.bands) if r.kind in kinds and r.delta > 0]
        return sorted(regions, key=lambda r: -r.delta)[:k]

    def supports(self, lo_hz: float | None, hi_hz: float | None, start_s: float | None, end_s: float | None,
                 k: int = 3) -> bool:
        """Whether a cited band and/or span lies inside one of the :meth:`top` ``k`` regions, in every dimension
        it names (a band and a span together need a cell): how the grounding checker judges a "where" claim."""
        for r in self.top(k):
            band_ok = lo_hz is None or (r.kind != "span" and r.lo_hz <= lo_hz + 1 and hi_hz <= r.hi_hz + 1)
            span_ok = start_s is None or (
                r.kind != "band" and r.start_s - 0.005 <= start_s and end_s <= r.end_s + 0.005)
            if band_ok and span_ok:
                return True
        return False

    def to_dict(self) -> dict:
        return {"score": round(self.score, 4), "mask": self.mask, "n_variants": self.n_variants,
                "cost_passes": round(self.cost_passes, 2), "spans": [r.to_dict() for r in self.spans],
                "bands": [r.to_dict() for r in self.bands], "cells": [r.to_dict() for r in self.cells]}

    @classmethod
    def from_dict(cls, data: dict) -> Attribution:
        return cls(score=float(data["score"]), spans=[Region.from_dict(r) for r in data.get("spans", [])],
                   bands=[Region.from_dict(r) for r in data.get("bands", [])],
                   cells=[Region.from_dict(r) for r in data.get("cells", [])], mask=data.get("mask", "noise_floor"),
                   n_variants=int(data.get("n_variants", 0)), cost_passes=float(data.get("cost_passes", 0.0)))


def _stft(wave: np.ndarray) -> np.ndarray:
    import librosa

    return librosa.stft(wave, n_fft=N_FFT, hop_length=HOP, window="hann", center=True)


def _istft(spec: np.ndarray, length: int) -> np.ndarray:
    import librosa

    return librosa.istft(spec, hop_length=HOP, window="hann", center=True, length=length).astype(np.float32)


def mask_region(wave: np.ndarray, sr: int, start_s: float, end_s: float, lo_hz: float, hi_hz: float,
                seed: int = 0, spec: np.ndarray | None = None) -> np.ndarray:
    """``wave`` with the time-frequency region replaced by the clip's own noise floor (random phase)."""
    spec = _stft(wave) if spec is None else spec
    mag = np.abs(spec)
    floor = np.percentile(mag, FLOOR_PERCENTILE, axis=1)
    freqs = np.arange(spec.shape[0]) * sr / N_FFT
    times = np.arange(spec.shape[1]) * HOP / sr
    rows = (freqs >= lo_hz) & (freqs < hi_hz)
    cols = (times >= start_s) & (times < end_s)
    if not rows.any() or not cols.any():
        return wave.astype(np.float32, copy=True)
    out = spec.copy()
    phase = np.random.default_rng(seed).uniform(-np.pi, np.pi, (int(rows.sum()), int(cols.sum())))
    out[np.ix_(rows, cols)] = floor[rows, None] * np.exp(1j * phase)
    return _istft(out, len(wave))


def attribute(detector, clip, span_s: float = 0.5, bands: Sequence[tuple[float, float]] = OCTAVES,
              top_k: int = 2, seed: int = 0, score: float | None = None) -> Attribution:
    """Occlusion attribution of ``detector``'s P(spoof) on ``clip`` (anything :func:`apallm.audio.as_clips`
    takes) over ``span_s`` time spans and ``bands`` (see the module notes). ``score``: the clip's P(spoof)
    when already known (saves one pass)."""
    from apallm.audio import as_clips

    (clip,) = as_clips([clip])
    wave = np.asarray(clip.waveform, dtype=np.float32)
    sr = clip.sample_rate
    duration = len(wave) / sr
    nyquist = sr / 2
    bands = [(lo, min(hi, nyquist)) for lo, hi in bands if lo < nyquist]
    n_spans = max(1, math.ceil(duration / span_s - 1e-9))
    spans = [(i * span_s, min(duration, (i + 1) * span_s)) for i in range(n_spans)]
    spec = _stft(wave)

    def variant(start, end, lo, hi, k):
        return dataclasses.replace(clip, waveform=mask_region(wave, sr, start, end, lo, hi, seed + k, spec))

    first = [variant(s, e, 0.0, nyquist + 1, i) for i, (s, e) in enumerate(spans)]
    first += [variant(0.0, duration + 1, lo, hi, len(spans) + j) for j, (lo, hi) in enumerate(bands)]
    scored_clip = score is None
    scores = np.asarray(detector.score([clip, *first] if scored_clip else first), dtype=float)
    if scored_clip:
        score, scores = float(scores[0]), scores[1:]
    span_regions = [Region("span", s, e, 0.0, nyquist, float(score - p))
                    for (s, e), p in zip(spans, scores[:len(spans)], strict=True)]
    band_regions = [Region("band", 0.0, duration, lo, hi, float(score - p))
                    for (lo, hi), p in zip(bands, scores[len(spans):], strict=True)]
    top_spans = sorted(span_regions, key=lambda r: -r.delta)[:top_k]
    top_bands = sorted(band_regions, key=lambda r: -r.delta)[:top_k]
    pairs = [(s, b) for s in top_spans for b in top_bands]
    cells = []
    if pairs:
        second = [variant(s.start_s, s.end_s, b.lo_hz, b.hi_hz, 1000 + i) for i, (s, b) in enumerate(pairs)]
        cell_scores = np.asarray(detector.score(second), dtype=float)
        cells = [Region("cell", s.start_s, s.end_s, b.lo_hz, b.hi_hz, float(score - p))
                 for (s, b), p in zip(pairs, cell_scores, strict=True)]
    n_variants = len(first) + len(cells)
    return Attribution(score=float(score), spans=span_regions, bands=band_regions,
                       cells=sorted(cells, key=lambda r: -r.delta), n_variants=n_variants,
                       cost_passes=float(n_variants + scored_clip))


_WHERE = re.compile(
    r"spoof evidence lies at (?:(?P<band>\d+(?:\.\d+)?\s*[-\u2013]\s*\d+(?:\.\d+)?\s*k?Hz)"
    r"(?:\s+between\s+(?P<s1>\d+(?:\.\d+)?)\s+and\s+(?P<e1>\d+(?:\.\d+)?)\s*s)?"
    r"|(?P<s2>\d+(?:\.\d+)?)\s*[-\u2013]\s*(?P<e2>\d+(?:\.\d+)?)\s*s)", re.IGNORECASE)


def find_region_claims(text: str) -> list[dict]:
    """Every "the detector's spoof evidence lies at ..." claim in ``text``: ``{"text", "span", "lo_hz", "hi_hz",
    "start_s", "end_s"}`` (None for what the claim does not name; ``span`` the character offsets)."""
    claims = []
    for m in _WHERE.finditer(text or ""):
        lo = hi = start = end = None
        if m.group("band"):
            nums = re.findall(r"\d+(?:\.\d+)?", m.group("band"))
            scale = 1000.0 if re.search(r"khz", m.group("band"), re.IGNORECASE) else 1.0
            lo, hi = float(nums[0]) * scale, float(nums[1]) * scale
        s, e = m.group("s1") or m.group("s2"), m.group("e1") or m.group("e2")
        if s is not None:
            start, end = float(s), float(e)
        claims.append({"text": m.group(0), "span": m.span(), "lo_hz": lo, "hi_hz": hi, "start_s": start,
                       "end_s": end})
    return claims


#: cues measured inside a span get at least this much audio around it (pitch and pauses need context)
MIN_CUE_S = 1.0
#: a rationale names a cell rather than a stronger band or span when the cell keeps this share of its delta
SPECIFIC_SHARE = 0.9


def cues_in(clip, region: Region, min_s: float = MIN_CUE_S):
    """The measured cues of the part of ``clip`` that ``region`` spans (widened symmetrically to ``min_s``;
    a band's region is the whole clip)."""
    from apallm.audio import as_clips
    from apallm.evidence import measure_cues

    (clip,) = as_clips([clip])
    duration = len(clip.waveform) / clip.sample_rate
    start, end = region.start_s, region.end_s
    if end - start < min_s:
        pad = (min_s - (end - start)) / 2
        start, end = max(0.0, start - pad), min(duration, end + pad)
    a, b = int(round(start * clip.sample_rate)), int(round(end * clip.sample_rate))
    return measure_cues(dataclasses.replace(clip, waveform=clip.waveform[a:b]))


def where_rationale(attribution: Attribution, clip, k: int = 1, limit: int = 2) -> str:
    """Where the detector's spoof evidence lies and what is measured there: for each of the ``k`` top regions
    its :meth:`Region.phrase` (a cell first when it keeps :data:`SPECIFIC_SHARE` of the best delta), then the
    citable cues (:func:`apallm.evidence.citable`) measured out of
    range inside it, or a sentence that none is. Without a region that raises P(spoof), says so."""
    from apallm.evidence import citable

    top = attribution.top(k + 2)
    if top:  # a cell nearly as strong as the best region says more: where in time and frequency at once
        cells = [r for r in top if r.kind == "cell" and r.delta >= SPECIFIC_SHARE * top[0].delta]
        top = (cells + [r for r in top if r not in cells])[:k]
    if not top:
        return "no masked span or band lowers the detector's P(spoof)"
    parts = []
    for region in top:
        found = [c for c in cues_in(clip, region) if c.status in ("low", "high") and citable(c.name)][:limit]
        there = "; ".join(c.phrase for c in found) if found else (
            "no measured cue that separates real from synthetic speech lies outside the range of natural speech "
            "there")
        parts.append(f"{region.phrase()}; there {there}")
    return "; ".join(parts)

"""Where a detector looked: occlusion of time spans and frequency bands, and how P(spoof) moves.

>>> from apallm import load_audio, load_detector                       # doctest: +SKIP
>>> from apallm.attribution import attribute
>>> att = attribute(load_detector("default"), load_audio("clip.flac"))  # doctest: +SKIP
>>> att.top(3)                                                        # doctest: +SKIP

Each variant of the clip has one region replaced by the clip's own noise floor in the STFT domain: every
time-frequency bin of the region (a 0.5 s span across all frequencies, or a band across the whole clip) gets the
floor's magnitude (the 10th percentile over frames of that frequency's magnitude) and a random phase, and the
rest of the clip is resynthesised unchanged (Hann window, 75 % overlap: the unmasked part comes back to within
rounding). A region's ``delta`` is P(spoof) of the clip minus P(spoof) with the region masked: positive where
the region raised P(spoof). Cells cross the strongest spans and bands (``top_k`` x ``top_k``).

Replacing a region by the clip's own noise floor keeps the clip's channel (its hiss and hum are still there)
and leaves no hole a detector could key on; ``fill="zero"`` (band-stop filtering or a gap) is kept for
comparison: ``eval/faithfulness.py --fill zero`` measures both.

Cost. The default bands are three (:data:`BANDS`: 0-1, 1-4 and 4-8 kHz; :data:`OCTAVES` on request). A
detector whose head pools frame features over time (the shipped one, :attr:`DefaultDetector.pools_frames`)
occludes a span by leaving its frames out of the pooling, and a cell by pooling the band-masked copy's frames
inside the span; it masks each band in its encoder's own power spectrogram (the same floor, read as noise reads
in a power spectrogram: :func:`apallm.frontends.whisper.mask_bands`), so no copy is resynthesised and analysed
again. That is an encoder pass over the clip and one over each band copy, ``1 + len(bands)`` = 4 passes whatever
the clip's length, and the first gives the verdict's score too. Where the CPU has native bfloat16 units the
band copies run in bfloat16 (``precision="auto"``), their deltas taken against a bfloat16 pass of the clip: five
passes, four of them at about a third of the cost, and deltas within about 0.01 of float32's; the verdict and the
spans keep the float32 pass. Any other detector scores a masked copy per span, band and cell (``cost_passes``
reports it).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["BANDS", "OCTAVES", "Attribution", "Region", "attribute", "cues_in", "draw_attribution",
           "find_region_claims", "in_time", "mask_region", "mask_regions", "rationale_regions", "stft",
           "where_rationale"]

#: octave bands 125 Hz-8 kHz, as the measured cues use them
OCTAVES = ((125.0, 250.0), (250.0, 500.0), (500.0, 1000.0), (1000.0, 2000.0), (2000.0, 4000.0), (4000.0, 8000.0))
#: the default bands: voicing and the first formant, the formants above it, and the high band where vocoders
#: and upsampling layers leave most of their traces; three bands keep the cost at four passes
BANDS = ((0.0, 1000.0), (1000.0, 4000.0), (4000.0, 8000.0))
_MASK_NAMES = {"floor": "noise_floor", "zero": "zero"}
#: the precisions :func:`attribute` runs the band passes of the pooled path in
PRECISIONS = ("auto", "float32", "bfloat16")
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
    #: cues measured inside regions a rationale cites (:func:`where_rationale`): ``{"region": Region dict,
    #: "cues": [cue dicts]}``; the grounding checker reads a "there ..." claim against them
    measured: list[dict] = field(default_factory=list)

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
                "bands": [r.to_dict() for r in self.bands], "cells": [r.to_dict() for r in self.cells],
                **({"measured": self.measured} if self.measured else {})}

    def measured_in(self, lo_hz: float | None, hi_hz: float | None, start_s: float | None,
                    end_s: float | None) -> list[dict] | None:
        """The cues :func:`where_rationale` measured in the region a claim names (None when it measured none)."""
        for entry in self.measured:
            r = Region.from_dict(entry["region"])
            band = lo_hz is None or (abs(r.lo_hz - lo_hz) <= 1 and abs(r.hi_hz - hi_hz) <= 1)
            span = start_s is None or (abs(r.start_s - start_s) <= 0.006 and abs(r.end_s - end_s) <= 0.006)
            same_kind = (lo_hz is None) == (r.kind == "span") and (start_s is None) == (r.kind == "band")
            if band and span and same_kind:
                return entry["cues"]
        return None

    @classmethod
    def from_dict(cls, data: dict) -> Attribution:
        return cls(score=float(data["score"]), spans=[Region.from_dict(r) for r in data.get("spans", [])],
                   bands=[Region.from_dict(r) for r in data.get("bands", [])],
                   cells=[Region.from_dict(r) for r in data.get("cells", [])], mask=data.get("mask", "noise_floor"),
                   n_variants=int(data.get("n_variants", 0)), cost_passes=float(data.get("cost_passes", 0.0)),
                   measured=list(data.get("measured", [])))


def stft(wave: np.ndarray) -> np.ndarray:
    """The STFT every mask of this module works in (Hann, 512 points, hop 128): pass it to :func:`mask_regions`
    to mask one clip many ways without computing it again."""
    import librosa

    return librosa.stft(wave, n_fft=N_FFT, hop_length=HOP, window="hann", center=True)


def _istft(spec: np.ndarray, length: int) -> np.ndarray:
    import librosa

    return librosa.istft(spec, hop_length=HOP, window="hann", center=True, length=length).astype(np.float32)


def mask_region(wave: np.ndarray, sr: int, start_s: float, end_s: float, lo_hz: float, hi_hz: float,
                seed: int = 0, spec: np.ndarray | None = None, fill: str = "floor") -> np.ndarray:
    """``wave`` with the time-frequency region replaced by the clip's own noise floor with random phase
    (``fill="floor"``), or removed (``fill="zero"``: a band-stop or a gap, which leaves a spectral hole). A band
    that reaches the Nyquist frequency includes it."""
    return mask_regions(wave, sr, [(start_s, end_s, lo_hz, hi_hz)], seed=seed, spec=spec, fill=fill)


def mask_regions(wave: np.ndarray, sr: int, regions: Sequence[tuple[float, float, float, float]], *,
                 keep: bool = False, seed: int = 0, spec: np.ndarray | None = None, fill: str = "floor") -> np.ndarray:
    """``wave`` with every ``(start_s, end_s, lo_hz, hi_hz)`` region masked as :func:`mask_region` does, or, with
    ``keep``, everything but those regions (what the sufficiency metric scores)."""
    if fill not in _MASK_NAMES:
        raise ValueError(f"fill must be one of {sorted(_MASK_NAMES)}, got {fill!r}")
    spec = stft(wave) if spec is None else spec
    freqs = np.arange(spec.shape[0]) * sr / N_FFT
    times = np.arange(spec.shape[1]) * HOP / sr
    selected = np.zeros(spec.shape, dtype=bool)
    for start_s, end_s, lo_hz, hi_hz in regions:
        rows = (freqs >= lo_hz) & ((freqs < hi_hz) | (hi_hz >= sr / 2))
        cols = (times >= start_s) & (times < end_s)
        selected |= rows[:, None] & cols[None, :]
    if keep:
        selected = ~selected
    if not selected.any():
        return wave.astype(np.float32, copy=True)
    out = spec.copy()
    if fill == "zero":
        out[selected] = 0.0
    else:
        floor = np.broadcast_to(np.percentile(np.abs(spec), FLOOR_PERCENTILE, axis=1)[:, None], spec.shape)
        phase = np.random.default_rng(seed).uniform(-np.pi, np.pi, int(selected.sum()))
        out[selected] = floor[selected] * np.exp(1j * phase)
    return _istft(out, len(wave))


def attribute(detector, clip, span_s: float = 0.5, bands: Sequence[tuple[float, float]] = BANDS,
              top_k: int = 2, seed: int = 0, score: float | None = None, fill: str = "floor",
              precision: str = "auto") -> Attribution:
    """Occlusion attribution of ``detector``'s P(spoof) on ``clip`` (anything :func:`apallm.audio.as_clips`
    takes) over ``span_s`` time spans and ``bands`` (see the module notes). ``score``: the clip's P(spoof)
    when already known (saves one pass on the generic path). ``fill``: ``floor`` (the clip's noise floor) or
    ``zero`` (a spectral hole; for comparison, see :func:`mask_region`). ``precision`` (pooled path only): the
    band passes in ``float32``, or in ``bfloat16`` against a bfloat16 pass of the clip itself; ``auto`` takes
    bfloat16 where this CPU multiplies it clearly faster (:func:`apallm.frontends.whisper.bfloat16_is_faster`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    from apallm.audio import as_clips

    (clip,) = as_clips([clip])
    wave = np.asarray(clip.waveform, dtype=np.float32)
    sr = clip.sample_rate
    duration = len(wave) / sr
    nyquist = sr / 2
    bands = [(lo, min(hi, nyquist)) for lo, hi in bands if lo < nyquist]
    n_spans = max(1, math.ceil(duration / span_s - 1e-9))
    spans = [(i * span_s, min(duration, (i + 1) * span_s)) for i in range(n_spans)]
    if getattr(detector, "pools_frames", False) and n_spans > 1:
        return _attribute_pooled(detector, wave, duration, nyquist, spans, bands, top_k, seed, fill, precision)
    spec = stft(wave)

    def masked(start, end, lo, hi, k):
        return mask_region(wave, sr, start, end, lo, hi, seed + k, spec, fill=fill)

    def variant(start, end, lo, hi, k):
        return dataclasses.replace(clip, waveform=masked(start, end, lo, hi, k))

    first = [variant(s, e, 0.0, nyquist + 1, i) for i, (s, e) in enumerate(spans)]
    first += [variant(0.0, duration + 1, lo, hi, len(spans) + j) for j, (lo, hi) in enumerate(bands)]
    scored_clip = score is None
    scores = np.asarray(detector.score([clip, *first] if scored_clip else first), dtype=float)
    if scored_clip:
        score, scores = float(scores[0]), scores[1:]

    def score_cells(pairs):
        return detector.score([variant(s.start_s, s.end_s, b.lo_hz, b.hi_hz, 1000 + i)
                               for i, (s, b) in enumerate(pairs)])

    span_regions, band_regions, cells = _regions(float(score), spans, scores[:len(spans)], bands,
                                                 scores[len(spans):], duration, nyquist, top_k, score_cells)
    n_variants = len(first) + len(cells)
    return Attribution(score=float(score), spans=span_regions, bands=band_regions, cells=cells,
                       mask=_MASK_NAMES[fill], n_variants=n_variants, cost_passes=float(n_variants + scored_clip))


def _regions(score, spans, span_scores, bands, band_scores, duration, nyquist, top_k, score_cells):
    """The span and band regions from the masked copies' scores, and the cells where the ``top_k`` strongest
    of each cross, scored by ``score_cells(pairs)`` (largest delta first)."""
    span_regions = [Region("span", s, e, 0.0, nyquist, float(score - p))
                    for (s, e), p in zip(spans, span_scores, strict=True)]
    band_regions = [Region("band", 0.0, duration, lo, hi, float(score - p))
                    for (lo, hi), p in zip(bands, band_scores, strict=True)]
    top_spans = sorted(span_regions, key=lambda r: -r.delta)[:top_k]
    top_bands = sorted(band_regions, key=lambda r: -r.delta)[:top_k]
    pairs = [(s, b) for s in top_spans for b in top_bands]
    cells = [Region("cell", s.start_s, s.end_s, b.lo_hz, b.hi_hz, float(score - p))
             for (s, b), p in zip(pairs, np.asarray(score_cells(pairs), dtype=float) if pairs else [], strict=True)]
    return span_regions, band_regions, sorted(cells, key=lambda r: -r.delta)


def _attribute_pooled(detector, wave, duration, nyquist, spans, bands, top_k, seed, fill, precision) -> Attribution:
    """The path for detectors whose head pools frame features over time (:attr:`DefaultDetector.pools_frames`):
    one encoder pass over the clip, then one over each band-masked copy, the band masked in the encoder's own
    power spectrogram (:meth:`DefaultDetector.band_states`). A span is occluded by leaving its frames out of the
    pooling; a cell by pooling the band-masked copy's frames inside the span with the clip's elsewhere. So the
    cost is ``1 + len(bands)`` passes whatever the clip's length; every pooled vector comes from each state's
    sums over the whole clip and over each span. With ``precision`` bfloat16 the band copies and a copy of the
    clip itself are encoded in bfloat16, and each band's and cell's delta is taken against that copy (the verdict
    and the spans keep the float32 pass)."""
    import torch

    # the clip alone, as scoring runs it, so the score is the verdict's to the last bit
    (base,) = detector.frame_states(wave[None])
    score = float(detector.score_states([base])[0])
    if precision == "auto":
        from apallm.frontends.whisper import bfloat16_is_faster

        precision = "bfloat16" if bfloat16_is_faster(torch.get_num_threads()) else "float32"
    if precision == "bfloat16":
        reference, *copies = detector.band_states(wave, [None, *bands], fill=fill, seed=seed, dtype=torch.bfloat16)
    else:
        reference, copies = base, detector.band_states(wave, bands, fill=fill, seed=seed)
    lowp = reference is not base
    # bands and cells are scored against the pass of the clip in their own precision
    shift = score - float(detector.score_states([reference])[0]) if lowp else 0.0
    n_frames = base[0].shape[0]
    centres = (torch.arange(n_frames, dtype=torch.float64) + 0.5) / detector.frame_rate
    # each frame's span (its centre inside it), or len(spans) for a frame past the last span
    span_of = torch.full((n_frames,), len(spans), dtype=torch.long)
    for k, (s, e) in enumerate(spans):
        span_of[(centres >= s) & (centres < e)] = k
    counts = torch.bincount(span_of, minlength=len(spans) + 1)[:-1].to(torch.float64)

    centre = [h.mean(0) for h in base]  # frames less the clip's mean: their sums stay exact enough in float32

    def sums(states):
        """Per state: sums of x and x^2 (x: the frame less the clip's mean) over the clip ``(2, dim)`` and over
        each span ``(2, spans, dim)``."""
        out = []
        for h, mu in zip(states, centre, strict=True):
            x = h - mu
            both = torch.stack([x, x * x])
            per_span = torch.zeros(2, len(spans) + 1, x.shape[1]).index_add_(1, span_of, both)
            out.append((both.sum(1).double(), per_span[:, :-1].double()))
        return out

    def pooled(parts, n):
        """Pooled vectors (mean and standard deviation of each state in turn) from sums over ``n`` frames."""
        columns = []
        for total, mu in zip(parts, centre, strict=True):
            mean, square = total[0] / n, total[1] / n
            columns += [mean + mu, (square - mean * mean).clamp_min(0).sqrt()]
        return torch.cat(columns, dim=-1).float().numpy()

    at_base, at_band = sums(base), [sums(c) for c in copies]
    at_reference = sums(reference) if lowp else at_base
    # a span that holds every frame cannot be left out: its delta is 0
    left = (n_frames - counts).clamp_min(1)[:, None]
    span_scores = detector.score_pooled(pooled([t[:, None] - s for t, s in at_base], left))
    span_scores = np.where((counts == n_frames).numpy(), score, span_scores)
    band_scores = shift + detector.score_pooled(np.stack([pooled([t for t, _ in b], n_frames) for b in at_band]))

    def score_cells(pairs):
        rows = []
        for s, b in pairs:
            k, j = spans.index((s.start_s, s.end_s)), bands.index((b.lo_hz, b.hi_hz))
            rows.append(pooled([t - s_[:, k] + c[:, k]
                                for (t, s_), (_, c) in zip(at_reference, at_band[j], strict=True)], n_frames))
        return shift + detector.score_pooled(np.stack(rows))

    span_regions, band_regions, cells = _regions(score, spans, span_scores, bands, band_scores, duration, nyquist,
                                                 top_k, score_cells)
    return Attribution(score=score, spans=span_regions, bands=band_regions, cells=cells,
                       mask=f"{_MASK_NAMES[fill]} in the encoder's spectrogram; spans left out of pooling"
                            + ("; bands in bfloat16" if lowp else ""),
                       n_variants=len(copies), cost_passes=float(1 + len(copies) + lowp))


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
    a band's region is the whole clip). A span's or a cell's cues are judged against the natural range of cues
    measured so around the span or cell that raises the shipped detector's P(spoof) most on each bona fide clip
    (``region_range`` in prompts/cues.yaml: a second of speech varies more than a clip); a band's, the whole
    clip's, against the whole-clip range."""
    from apallm.audio import as_clips
    from apallm.evidence import measure_cues

    (clip,) = as_clips([clip])
    duration = len(clip.waveform) / clip.sample_rate
    start, end = region.start_s, region.end_s
    if end - start < min_s:
        pad = (min_s - (end - start)) / 2
        start, end = max(0.0, start - pad), min(duration, end + pad)
    a, b = int(round(start * clip.sample_rate)), int(round(end * clip.sample_rate))
    return measure_cues(dataclasses.replace(clip, waveform=clip.waveform[a:b]), in_region=in_time(region))


def in_time(region: Region) -> bool:
    """Whether ``region`` is a part of the clip in time (a span or a cell), whose cues :func:`cues_in` judges
    against the in-region ranges, rather than a band over the whole clip."""
    return region.kind != "band"


def rationale_regions(attribution: Attribution, k: int = 1) -> list[Region]:
    """The ``k`` regions a rationale cites: the top regions, a cell first when it keeps :data:`SPECIFIC_SHARE` of
    the best delta (a cell nearly as strong as the best region says more: where in time and frequency at once)."""
    top = attribution.top(k + 2)
    if top:
        cells = [r for r in top if r.kind == "cell" and r.delta >= SPECIFIC_SHARE * top[0].delta]
        top = (cells + [r for r in top if r not in cells])[:k]
    return top


def where_rationale(attribution: Attribution, clip, k: int = 1, limit: int = 2) -> str:
    """Where the detector's spoof evidence lies and what is measured there: for each of the ``k`` top regions
    its :meth:`Region.phrase` (a cell first when it keeps :data:`SPECIFIC_SHARE` of the best delta), then the
    cues citable there (:func:`apallm.evidence.citable`, ``in_region`` for a span or a cell) measured out of
    their range inside it, or a sentence that none is.
    Without a region that raises P(spoof), says so. What it measured is kept in ``attribution.measured``."""
    from apallm.evidence import citable

    top = rationale_regions(attribution, k)
    if not top:
        return "no masked span or band lowers the detector's P(spoof)"
    parts = []
    for region in top:
        measured = cues_in(clip, region)
        attribution.measured.append({"region": region.to_dict(), "cues": [c.to_dict() for c in measured]})
        found = [c for c in measured if c.status in ("low", "high")
                 and citable(c.name, in_region=in_time(region))][:limit]
        there = "; ".join(c.phrase for c in found) if found else (
            "no measured cue that separates real from synthetic speech lies outside the range of natural speech")
        parts.append(f"{region.phrase()}; there {there}")
    return "; ".join(parts)


#: how the drawing colours a delta: full red at this rise of P(spoof)
DRAW_FULL_DELTA = 0.2


def draw_attribution(spectrogram, attribution, k: int = 2, strip_px: int = 16) -> bytes:
    """The structured spectrogram (a :class:`~apallm.evidence.Spectrogram`) with its attribution drawn, for
    people (the ALLM sees the plain image): a strip under the plot whose red shows how much each time span
    raised P(spoof) (white where masking it did not lower the score), red marks on the right edge at the bands
    that raised it, and outlines around the ``k`` cells that raised it most. PNG bytes."""
    import io

    from PIL import Image, ImageDraw

    att = Attribution.from_dict(attribution) if isinstance(attribution, dict) else attribution
    base = spectrogram.image.convert("RGB")
    width, height = base.size
    left, top, right, bottom = spectrogram.plot_box
    canvas = Image.new("RGB", (width, height + strip_px + 4), (255, 255, 255))
    canvas.paste(base, (0, 0))
    draw = ImageDraw.Draw(canvas)

    def red(delta: float) -> tuple[int, int, int]:
        a = max(0.0, min(1.0, delta / DRAW_FULL_DELTA))
        return (255, int(round(255 * (1 - a))), int(round(255 * (1 - a))))

    y0, y1 = height + 2, height + 2 + strip_px
    shown = float(spectrogram.meta.get("duration_s") or math.inf)
    for r in att.spans:
        if r.start_s >= shown:
            continue
        draw.rectangle([spectrogram.x_of(r.start_s), y0, spectrogram.x_of(r.end_s), y1], fill=red(r.delta))
    draw.rectangle([left - 1, y0 - 1, right, y1], outline=(0, 0, 0))

    for r in att.bands:
        if r.delta <= 0:
            continue
        ya, yb = spectrogram.y_of(r.hi_hz), spectrogram.y_of(r.lo_hz)
        if ya is None or yb is None:
            continue
        draw.rectangle([right - 5, ya, right, yb], fill=red(r.delta), outline=(200, 0, 0))
    for r in [c for c in att.cells if c.delta > 0][:k]:
        ya, yb = spectrogram.y_of(r.hi_hz), spectrogram.y_of(r.lo_hz)
        if ya is None or yb is None:
            continue
        draw.rectangle([spectrogram.x_of(r.start_s), ya, spectrogram.x_of(r.end_s), yb], outline=(255, 0, 0),
                       width=2)
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()

"""Is a rationale faithful to the detector and informative about the clip? Metrics over explained clips.

- **comprehensiveness**: how much P(spoof) drops when the regions a rationale cites (its "the detector's spoof
  evidence lies at ..." claims, else the attribution's top region) are masked, against masking random regions
  of the same size (same duration, same width in Hz) in the same clip. A faithful rationale cites what the
  detector used: its drop is well above the random one.
- **sufficiency**: P(spoof) with only the cited regions kept (everything else masked): near the clip's own
  score when the cited parts carry the decision.
- **informativeness**: the share of spoof verdicts whose rationale cites at least one measured cue that
  supports spoof (a grounded, out-of-range cue claim), and the share of verdicts on bona fide clips (true label)
  that cite one: a cue vocabulary that means something fires on spoofs and not on bona fide speech.

Masking is :func:`apallm.attribution.mask_regions` (the clip's own noise floor), the same as attribution's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from apallm.attribution import Attribution, Region, find_region_claims, mask_regions, stft

__all__ = ["ClipFaithfulness", "cited_regions", "clip_faithfulness", "informativeness", "random_like",
           "summarize_faithfulness"]


def cited_regions(rationale: str, attribution: Attribution | Mapping, duration_s: float,
                  nyquist_hz: float = 8000.0) -> list[Region]:
    """The regions ``rationale`` cites in its "where" claims, or the attribution's top region when it cites none
    (a rationale always stands on the attribution it was given)."""
    att = Attribution.from_dict(attribution) if isinstance(attribution, Mapping) else attribution
    regions = []
    for c in find_region_claims(rationale):
        band = c["lo_hz"] is not None
        span = c["start_s"] is not None
        kind = "cell" if band and span else "band" if band else "span"
        regions.append(Region(kind, c["start_s"] if span else 0.0, c["end_s"] if span else duration_s,
                              c["lo_hz"] if band else 0.0, c["hi_hz"] if band else nyquist_hz, math.nan))
    return regions or att.top(1)


def random_like(region: Region, duration_s: float, nyquist_hz: float, rng: np.random.Generator) -> Region:
    """A region of the same kind and size placed at random in the clip: the same duration (a span or cell) and
    the same width in Hz (a band or cell)."""
    start, end, lo, hi = 0.0, duration_s, 0.0, nyquist_hz
    if region.kind in ("span", "cell"):
        length = min(region.end_s - region.start_s, duration_s)
        start = float(rng.uniform(0.0, max(0.0, duration_s - length)))
        end = start + length
    if region.kind in ("band", "cell"):
        width = min(region.hi_hz - region.lo_hz, nyquist_hz)
        lo = float(rng.uniform(0.0, max(0.0, nyquist_hz - width)))
        hi = lo + width
    return Region(region.kind, start, end, lo, hi, math.nan)


@dataclass
class ClipFaithfulness:
    score: float
    cited: list[Region]
    drop_cited: float
    drop_random: float
    sufficiency: float

    def to_dict(self) -> dict:
        return {"score": self.score, "cited": [r.describe() for r in self.cited], "drop_cited": self.drop_cited,
                "drop_random": self.drop_random, "sufficiency": self.sufficiency}


def clip_faithfulness(detector, clip, rationale: str, attribution, *, n_random: int = 3, seed: int = 0,
                      fill: str = "floor") -> ClipFaithfulness | None:
    """Comprehensiveness (cited vs ``n_random`` random masks of the same size) and sufficiency of one explained
    clip, in one batch of ``2 + n_random`` scored copies, masked with ``fill`` (see
    :func:`apallm.attribution.mask_regions`). None when the rationale cites nothing and the attribution has no
    region that raises P(spoof)."""
    from apallm.audio import as_clips

    (clip,) = as_clips([clip])
    wave = np.asarray(clip.waveform, dtype=np.float32)
    duration, nyquist = len(wave) / clip.sample_rate, clip.sample_rate / 2
    cited = cited_regions(rationale, attribution, duration, nyquist)
    if not cited:
        return None
    rng = np.random.default_rng(seed)
    spec = stft(wave)

    def bounds(regions):
        return [(r.start_s, r.end_s, r.lo_hz, r.hi_hz) for r in regions]

    copies = [mask_regions(wave, clip.sample_rate, bounds(cited), spec=spec, seed=seed, fill=fill),
              mask_regions(wave, clip.sample_rate, bounds(cited), keep=True, spec=spec, seed=seed + 1, fill=fill)]
    copies += [mask_regions(wave, clip.sample_rate, bounds([random_like(r, duration, nyquist, rng) for r in cited]),
                            spec=spec, seed=seed + 2 + i, fill=fill) for i in range(n_random)]
    scores = np.asarray(detector.score([clip, *[dataclasses.replace(clip, waveform=c) for c in copies]]), dtype=float)
    base = float(scores[0])
    return ClipFaithfulness(score=base, cited=cited, drop_cited=base - float(scores[1]),
                            drop_random=float(np.mean(base - scores[3:])), sufficiency=float(scores[2]))


def _cites_spoof_cue(record: Mapping) -> bool:
    """Whether a verdict record's rationale cites a measured cue out of its natural range, grounded in the
    record's evidence (and, for cues cited "there", in what its attribution measured in the region)."""
    from apallm.grounding import GROUNDED, check_grounding

    rationale = record.get("rationale") or {}
    text = rationale if isinstance(rationale, str) else " ".join(
        str(rationale.get(k, "")) for k in ("frequency", "time"))
    report = check_grounding(text, record.get("evidence"), attribution=record.get("attribution"))
    return any(c.verdict == GROUNDED and c.claim.cue != "attribution" and c.claim.status in ("low", "high")
               for c in report.checks)


def informativeness(records: Iterable[Mapping]) -> dict:
    """Over verdict records (``Verdict.to_dict()`` with ``evidence``; ``true_label`` where known): the share of
    spoof verdicts that cite a measured cue supporting spoof, the share of bona fide verdicts that do (a
    template rationale never does; an ALLM may), and the share of bona fide clips (true label) whose verdict
    does. ``n_*`` give the counts."""
    spoof = bona = true_bona = 0
    spoof_hits = bona_hits = true_bona_hits = 0
    for r in records:
        if r.get("label") not in ("spoof", "bonafide") or r.get("evidence") is None:
            continue
        hit = _cites_spoof_cue(r)
        if r["label"] == "spoof":
            spoof, spoof_hits = spoof + 1, spoof_hits + hit
        else:
            bona, bona_hits = bona + 1, bona_hits + hit
        if r.get("true_label") == "bonafide":
            true_bona, true_bona_hits = true_bona + 1, true_bona_hits + hit

    def share(hits, n):
        return hits / n if n else None

    return {"spoof_verdicts_citing_a_spoof_cue": share(spoof_hits, spoof), "n_spoof_verdicts": spoof,
            "bonafide_verdicts_citing_a_spoof_cue": share(bona_hits, bona), "n_bonafide_verdicts": bona,
            "bonafide_clips_citing_a_spoof_cue": share(true_bona_hits, true_bona), "n_bonafide_clips": true_bona}


def summarize_faithfulness(rows: Sequence[ClipFaithfulness]) -> dict:
    """Means over clips: the drop for cited and for random regions, their ratio (comprehensiveness against
    random), the mean score and the mean sufficiency."""
    rows = [r for r in rows if r is not None]
    if not rows:
        return {"n": 0}
    cited = float(np.mean([r.drop_cited for r in rows]))
    rand = float(np.mean([r.drop_random for r in rows]))
    return {"n": len(rows), "drop_cited": cited, "drop_random": rand,
            "comprehensiveness_ratio": cited / rand if rand > 0 else None,
            "score": float(np.mean([r.score for r in rows])),
            "sufficiency": float(np.mean([r.sufficiency for r in rows]))}

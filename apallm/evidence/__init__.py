"""Acoustic evidence for one clip: the structured spectrogram image and the measured cues.

>>> from apallm import load_audio, extract_evidence
>>> ev = extract_evidence(load_audio("clip.flac"))          # doctest: +SKIP
>>> ev.cue("bandwidth_hz").value, ev.to_text()              # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from apallm.audio import Clip
from apallm.evidence.cues import Cue, cue_specs, make_cue, measure_cues
from apallm.evidence.spectrogram import (
    KINDS,
    Spectrogram,
    SpectrogramConfig,
    render_spectrogram,
    snap_to_patch,
)

__all__ = ["Cue", "Evidence", "EvidenceConfig", "KINDS", "Spectrogram", "SpectrogramConfig", "citable", "cue_specs",
           "no_supporting_cue", "supports",
           "extract_evidence", "make_cue", "measure_cues", "render_spectrogram", "snap_to_patch"]


@dataclass(frozen=True)
class EvidenceConfig:
    """What to compute. ``mark_splices`` draws the splice candidates on the image (off for model input)."""

    spectrogram: SpectrogramConfig = field(default_factory=SpectrogramConfig)
    render_image: bool = True
    mark_splices: bool = False


@dataclass
class Evidence:
    """The clip's description, its spectrogram (image + matrix) and its cues."""

    clip: dict
    cues: list[Cue]
    spectrogram: Spectrogram | None = None
    flags: list[str] = field(default_factory=list)

    def cue(self, name: str) -> Cue:
        for c in self.cues:
            if c.name == name:
                return c
        raise KeyError(f"no cue named {name!r}; have {', '.join(c.name for c in self.cues)}")

    def by_domain(self, domain: str) -> list[Cue]:
        return [c for c in self.cues if c.domain == domain]

    def rationale(self, label: str, limit: int = 3) -> tuple[str, str]:
        """(frequency, time) rationale phrased from the measured cues, consistent with ``label``: a spoof
        verdict cites the out-of-range cues of each domain, a bona fide verdict the in-range ones; only cues
        of the rationale vocabulary (:func:`citable`) are cited."""
        return (self._domain_rationale("frequency", label, limit), self._domain_rationale("time", label, limit))

    def supporting_cues(self, domain: str, label: str, limit: int = 3) -> list[Cue]:
        """The first ``limit`` citable cues of ``domain`` that support ``label`` (out of range for spoof, in
        range for bona fide), in measuring order."""
        return [c for c in self.by_domain(domain) if supports(c.status, label) and citable(c.name)][:limit]

    def _domain_rationale(self, domain: str, label: str, limit: int) -> str:
        chosen = self.supporting_cues(domain, label, limit)
        if not chosen:
            return no_supporting_cue(domain, label)
        return "; ".join(c.phrase for c in chosen)

    def to_dict(self) -> dict:
        out = {"clip": dict(self.clip), "flags": list(self.flags), "cues": [c.to_dict() for c in self.cues]}
        if self.spectrogram is not None:
            out["spectrogram"] = self.spectrogram.to_dict()
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> "Evidence":
        """Rebuild from :meth:`to_dict` output (without the image, which lives in its PNG file)."""
        return cls(clip=dict(data.get("clip", {})), cues=[Cue.from_dict(c) for c in data.get("cues", [])],
                   flags=list(data.get("flags", [])))

    def to_text(self, only_notable: bool = False, compact: bool = False, limit: int | None = None) -> str:
        """A block for prompts: one line a cue, grouped by domain, out-of-range cues marked. ``compact``: the
        out-of-range cues, each as ``name = value unit [natural lo to hi] LOW|HIGH`` without its phrase (a
        few tokens a cue, for small LMs on CPU): those a rationale may cite (:func:`citable`) always, then the
        others, furthest outside their range (relative to its width) first, up to ``limit`` lines in all;
        then the citable cues within their range. A citable cue is listed once, under the heading of its side
        of the range, and with its phrase, the claim an answer citing it makes (value and status included)."""
        if compact:
            notable = sorted((c for c in self.cues if c.status in ("low", "high")),
                             key=lambda c: (citable(c.name), _outside(c)), reverse=True)
            must = sum(citable(c.name) for c in notable)
            shown = notable[:max(limit, must)] if limit is not None else notable
            more = f" ({len(notable) - len(shown)} more)" if len(shown) < len(notable) else ""
            def line(c: Cue) -> str:  # a citable cue keeps its phrase: the words a grounded answer copies
                return c.to_text() if citable(c.name) else c.to_text().split(": ", 1)[0]

            if notable:
                head = f"Measured cues outside the range of natural speech{more}:\n" + "\n".join(map(line, shown))
            else:
                head = "Measured cues: all within the range of natural speech."
            # a rationale cites these with their values (Evidence.rationale), so the prompt always gives them
            listed = {c.name for c in shown}
            vocabulary = [c for c in self.cues if citable(c.name) and c.name not in listed and c.value is not None]
            if not vocabulary:
                return head
            return head + "\nCues a rationale may cite:\n" + "\n".join(map(line, vocabulary))
        lines = [f"Measured acoustic evidence for {self.clip.get('duration_s', 0):.2f} s of audio "
                 "(natural-speech range in brackets):"]
        if self.flags:
            lines.append(f"flags: {', '.join(self.flags)}")
        for domain in ("frequency", "time"):
            cues = [c for c in self.by_domain(domain) if not only_notable or c.status in ("low", "high")]
            if cues:
                lines.append(f"[{domain} domain]")
                lines.extend(f"- {c.to_text()}" for c in cues)
        return "\n".join(lines)

    def save(self, out_dir: str | Path, stem: str, extra: dict | None = None) -> tuple[Path | None, Path]:
        """Write ``<stem>.png`` (when rendered) and ``<stem>.json`` (with ``extra``'s keys added); return their
        paths."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        png = None
        if self.spectrogram is not None:
            png = out_dir / f"{stem}.png"
            png.write_bytes(self.spectrogram.png)
        js = out_dir / f"{stem}.json"
        data = self.to_dict()
        if png is not None:
            data["spectrogram"]["image"] = png.name
        data.update(extra or {})
        js.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return png, js


def _outside(cue: Cue) -> float:
    """How far ``cue`` lies outside its natural range, in widths of the range."""
    lo, hi = cue.range
    if cue.value is None:
        return 0.0
    return max(lo - cue.value, cue.value - hi, 0.0) / max(hi - lo, 1e-9)


def supports(status: str, label: str) -> bool:
    """Whether a cue measured with ``status`` supports ``label``: out of range (low, high) supports spoof, in
    range (normal) supports bona fide; an unmeasurable cue supports neither."""
    return status in (("low", "high") if label == "spoof" else ("normal",))


def no_supporting_cue(domain: str, label: str) -> str:
    """What a rationale says when no citable cue of ``domain`` supports ``label``."""
    where = "outside" if label == "spoof" else "inside"
    return f"no {domain}-domain cue that separates real from synthetic speech lies {where} the range of natural speech"


def citable(name: str, in_region: bool = False) -> bool:
    """Whether a rationale may cite the cue: ``cite`` in prompts/cues.yaml, set by eval/cue_ranges.py to
    whether the cue separates bona fide from spoof on unseen sources (leave-one-source-out AUC >= 0.65).
    ``in_region``: as measured around a span or a cell an attribution cites (``region_cite``, from the same test
    on such measurements; ``cite`` where the spec has none). Every cue is measured and reported either way; a cue
    without the field is citable."""
    spec = cue_specs().get(name, {})
    return bool(spec.get("region_cite", spec.get("cite", True)) if in_region else spec.get("cite", True))


def extract_evidence(clip: Clip, config: EvidenceConfig | None = None) -> Evidence:
    """Measure every cue of ``clip`` and render its structured spectrogram."""
    config = config or EvidenceConfig()
    cues = measure_cues(clip)
    spec = None
    if config.render_image:
        markers = ()
        if config.mark_splices:
            markers = tuple(next(c for c in cues if c.name == "splice_candidates").detail.get("times_s", ()))
        spec = render_spectrogram(clip.waveform, clip.sample_rate, config.spectrogram, markers_s=markers)
    return Evidence(clip=clip.meta(), cues=cues, spectrogram=spec, flags=list(clip.flags))

"""One clip analysed for the demo: the detector's verdict, the measured cues, the spectrogram as drawn and the
tables beside it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from apallm.audio import Clip
from apallm.verdict import NO_SPEECH, Verdict

#: the spectrogram as the demo draws it: wider than the model's input, for reading by eye
DISPLAY_WIDTH, DISPLAY_HEIGHT = 896, 448
CUE_HEADERS = ["cue", "value", "unit", "natural range", "status", "domain"]
CM_HEADERS = ["countermeasure", "P(spoof)", "label"]


@dataclass
class Analysis:
    """One browser session's clip: what was measured and decided, and the chat about it."""

    clip: Clip
    evidence: object  # apallm.evidence.Evidence (without image)
    verdict: Verdict
    answer: str  # the detector's verdict as the canonical answer text (the ALLM's own words when it has them)
    cm_scores: dict[str, float] = field(default_factory=dict)
    turns: list[tuple[str, str]] = field(default_factory=list)  # (question, answer) after the verdict
    messages: list[dict] = field(default_factory=list)  # the chat as shown


def can_chat(detector) -> bool:
    """True for an audio LLM: it streams free-form answers about a clip."""
    return callable(getattr(detector, "stream", None))


def analyse_clip(clip: Clip, detector, cms: Sequence = ()) -> Analysis:
    """Explain the clip with the detector, the auxiliary countermeasures' scores beside it; measure its cues."""
    from apallm.detectors import explain_with
    from apallm.evidence import EvidenceConfig, extract_evidence

    verdict = explain_with(detector, [clip], cms, include_evidence=can_chat(detector))[0]
    answer = (verdict.evidence or {}).get("answer", {}).get("text")
    verdict.evidence = None
    if answer is None:
        answer = (verdict.to_answer() if verdict.label != NO_SPEECH else
                  f"no speech\n{verdict.rationale.frequency}")
    evidence = extract_evidence(clip, EvidenceConfig(render_image=False))
    return Analysis(clip=clip, evidence=evidence, verdict=verdict, answer=answer,
                    cm_scores=dict(verdict.cm_scores or {}))


def display_spectrogram(analysis: Analysis, detector=None):
    """The clip's structured spectrogram as the demo shows it (PIL image): band-edge guides, splice
    candidates as white dashed lines, the detector's predicted regions shaded red, and its attribution when the
    verdict has one (:func:`apallm.attribution.draw_attribution`: a strip under the plot, marks at the bands)."""
    from apallm.evidence import SpectrogramConfig, render_spectrogram

    base = detector.evidence_config.spectrogram if can_chat(detector) else SpectrogramConfig()
    cfg = replace(base, width=DISPLAY_WIDTH, height=DISPLAY_HEIGHT)
    splices = analysis.evidence.cue("splice_candidates").detail.get("times_s", [])
    clip = analysis.clip
    spec = render_spectrogram(clip.waveform, clip.sample_rate, cfg, markers_s=splices,
                              regions_s=analysis.verdict.regions)
    if not analysis.verdict.attribution:
        return spec.image.convert("RGB")
    import io

    from PIL import Image

    from apallm.attribution import draw_attribution

    return Image.open(io.BytesIO(draw_attribution(spec, analysis.verdict.attribution))).convert("RGB")


def cue_rows(evidence) -> list[list[str]]:
    """One row per cue: name, value, unit, natural range, status, domain."""
    from apallm.evidence import cue_specs

    rows = []
    for c in evidence.cues:
        fmt = cue_specs().get(c.name, {}).get("fmt", "{:g}")
        value = "n/a" if c.value is None else fmt.format(c.value)
        status = {"low": "LOW", "high": "HIGH", "na": "n/a"}.get(c.status, c.status)
        rows.append([c.name, value, c.unit, f"{fmt.format(c.range[0])} to {fmt.format(c.range[1])}", status,
                     c.domain])
    return rows


def cm_rows(cm_scores: Mapping[str, float]) -> list[list]:
    return [[name, round(p, 4), "spoof" if p >= 0.5 else "bonafide"] for name, p in cm_scores.items()]

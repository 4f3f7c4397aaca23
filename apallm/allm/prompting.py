"""What the ALLM is shown and what it is taught to answer.

Input options exist for ablations: the audio alone; plus the spectrogram image; plus the measured-cue text;
plus auxiliary countermeasure scores. Prompt texts live in ``prompts/allm.yaml``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import resources

import yaml

from apallm.evidence import Evidence
from apallm.verdict import LABEL_WORDS, format_answer


@dataclass(frozen=True)
class PromptOptions:
    """Which evidence enters the prompt. The audio is always heard."""

    spectrogram: bool = True
    cues: bool = False
    cm_scores: bool = False
    compact_cues: bool = False  # the cues as Evidence.to_text(compact=True): short lines, the citable cues in full

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping | None) -> PromptOptions:
        data = dict(data or {})
        unknown = set(data) - {"spectrogram", "cues", "cm_scores", "compact_cues"}
        if unknown:
            raise ValueError(f"unknown prompt options: {', '.join(sorted(unknown))}")
        return cls(**data)

    @classmethod
    def parse(cls, text: str) -> PromptOptions:
        """From the CLI form ``audio``, ``audio+spectrogram``, ``audio+spectrogram+cues+cm``."""
        parts = {p.strip() for p in text.lower().split("+") if p.strip()}
        unknown = parts - {"audio", "spectrogram", "cues", "cm"}
        if unknown:
            raise ValueError(f"unknown input parts {sorted(unknown)}: use audio[+spectrogram][+cues][+cm]")
        return cls(spectrogram="spectrogram" in parts, cues="cues" in parts, cm_scores="cm" in parts)


#: out-of-range cues a compact cue block lists at most (each costs about 15 tokens)
COMPACT_CUES = 4


@functools.lru_cache(maxsize=1)
def _shipped_prompts() -> dict:
    text = resources.files("apallm.prompts").joinpath("allm.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def prompt_texts(overrides: Mapping[str, str] | None = None) -> dict:
    """prompts/allm.yaml, with ``overrides`` (e.g. a shorter system prompt for a run) on top."""
    texts = dict(_shipped_prompts())
    unknown = set(overrides or {}) - set(texts)
    if unknown:
        raise ValueError(f"unknown prompt keys {sorted(unknown)}; known: {sorted(texts)}")
    texts.update(overrides or {})
    return texts


#: the thresholds of ``{thermometer}`` in the ``cm_score`` prompt
THERMOMETER = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def cm_leaning(score: float, threshold: float = 0.5) -> str:
    """The label word a countermeasure's P(spoof) leans to at ``threshold`` (``{leaning}`` in the ``cm_score``
    prompt): a word the answer can copy is easier for a small LM to use than a number."""
    return LABEL_WORDS["spoof" if score >= threshold else "bonafide"]


def cm_thermometer(score: float) -> str:
    """P(spoof) as label words, its leaning at each threshold of :data:`THERMOMETER` (``{thermometer}``). The
    share of "spoof" words grades the score in words a small LM can copy."""
    return " ".join(cm_leaning(score, t) for t in THERMOMETER)


def user_text(evidence: Evidence | None, options: PromptOptions, cm_scores: Mapping[str, float] | None = None,
              texts: Mapping[str, str] | None = None) -> str:
    """The text part of the user turn (the audio and image parts are added by the backend). ``texts``
    overrides prompts/allm.yaml."""
    texts = texts or prompt_texts()
    parts = []
    if options.spectrogram:
        spec = (evidence.spectrogram.config if evidence is not None and evidence.spectrogram is not None else None)
        if spec is None:
            raise ValueError("the spectrogram option needs evidence rendered with an image")
        parts.append(texts["spectrogram"].format(kind=spec.kind.upper(), db_min=spec.db_min, db_max=spec.db_max))
    if options.cues:
        if evidence is None:
            raise ValueError("the cues option needs evidence")
        cues = (evidence.to_text(compact=True, limit=COMPACT_CUES) if options.compact_cues else evidence.to_text())
        parts.append(texts["cues"].format(cues=cues))
    if options.cm_scores:
        if not cm_scores:
            raise ValueError("the cm_scores option needs auxiliary countermeasure scores for every clip")
        parts.extend(texts["cm_score"].format(name=name, score=float(score), leaning=cm_leaning(float(score)),
                                              thermometer=cm_thermometer(float(score)))
                     for name, score in cm_scores.items())
    parts.append(texts["instruction"])
    return "\n".join(parts)


def default_target(label: str, evidence: Evidence) -> str:
    """A training answer built from the clip's own measurements, in the canonical answer format: the label,
    then per domain the cues that support it (out of range for spoof, in range for bona fide)."""
    return format_answer(label, *evidence.rationale(label))

"""The verdict a detector answers with, and the one canonical answer text an ALLM writes.

Canonical answer text (the label word first, so its first token can be scored in one forward pass)::

    spoof
    Frequency: energy stops near 4000 Hz, a band limit below natural wide-band speech (7000-8000 Hz)
    Time: pauses are -120.0 dBFS, near digital silence
    Regions: 1.20-1.85 s; 3.00-3.40 s
    System: vits

``Regions`` and ``System`` are optional. :func:`parse_answer` reads that format and the usual ways a model
drifts from it (markdown, "Answer:" prefixes, synonyms such as "bona fide"/"fake", missing lines) and never
raises: it reports whether the text parsed fully, partly or not at all.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

BONAFIDE, SPOOF = "bonafide", "spoof"
#: the two labels of a clip, spelled as ASVspoof spells them; every module takes them from here
LABELS = (BONAFIDE, SPOOF)
#: the abstaining label: the clip holds no (or too little) speech for a verdict about speech
NO_SPEECH = "no_speech"
VERDICT_LABELS = (*LABELS, NO_SPEECH)
#: scores in this closed band around the 0.5 threshold are shown as uncertain beside the label
UNCERTAIN_BAND = (0.4, 0.6)
#: the words written for each label in answers; their first tokens must differ in every tokenizer
LABEL_WORDS = {"bonafide": "bonafide", "spoof": "spoof"}

_SYNONYMS = {
    "bonafide": ("bonafide", "bona fide", "bona-fide", "genuine", "real", "authentic", "human", "natural"),
    "spoof": ("spoof", "spoofed", "spoofing", "fake", "deepfake", "deep fake", "synthetic", "synthesized",
              "synthesised", "generated", "ai-generated", "cloned", "converted"),
}
_LABEL_RE = re.compile(
    r"\b(" + "|".join(sorted((re.escape(w) for ws in _SYNONYMS.values() for w in ws), key=len, reverse=True))
    + r")\b", re.IGNORECASE)
_TAG_RE = re.compile(
    r"^\s*(?P<tag>answer|label|verdict|prediction|decision|classification|frequency(?:[ -]domain)?(?: evidence)?"
    r"|time(?:[ -]domain)?(?: evidence)?|regions?|system|score)\s*[:=\-]\s*(?P<rest>.*)$", re.IGNORECASE)
_NUM = r"[-+]?\d+(?:\.\d+)?"
_REGION_RE = re.compile(rf"({_NUM})\s*s?\s*(?:-|–|—|to)\s*({_NUM})\s*s?", re.IGNORECASE)


def canonical_label(word: str | None) -> str | None:
    """Map a label word or synonym ("bona fide", "Fake", ...) to ``bonafide``/``spoof``; None if neither."""
    if not word:
        return None
    w = re.sub(r"[^a-z -]", "", word.strip().lower())
    for label, words in _SYNONYMS.items():
        if w in words:
            return label
    return None


@dataclass
class Rationale:
    frequency: str = ""
    time: str = ""

    def to_dict(self) -> dict:
        return {"frequency": self.frequency, "time": self.time}


def parse_band(text: str | tuple | list) -> tuple[float, float]:
    """``"0.4,0.6"`` (or a pair) -> (0.4, 0.6), checked: 0 <= low <= 0.5 <= high <= 1."""
    try:
        low, high = (float(x) for x in (text.split(",") if isinstance(text, str) else text))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"an uncertain band is LOW,HIGH (e.g. 0.4,0.6), not {text!r}") from exc
    if not 0.0 <= low <= 0.5 <= high <= 1.0:
        raise ValueError(f"an uncertain band needs 0 <= low <= 0.5 <= high <= 1, got {low:g},{high:g}")
    return low, high


def is_uncertain(score: float | None, band: tuple[float, float] = UNCERTAIN_BAND) -> bool:
    return score is not None and band[0] <= score <= band[1]


@dataclass
class Verdict:
    """label (``bonafide``/``spoof``, or ``no_speech`` when the detector abstains), score = P(spoof) in [0, 1]
    (None only for ``no_speech``), rationale, and optional extras.

    ``flags`` name what the reader must know about the clip (``silent``, ``clipped``, ``dc_offset``,
    ``no_speech``); ``uncertain`` says the score lies in the uncertain band around 0.5 (computed from
    :data:`UNCERTAIN_BAND` unless given).
    """

    label: str
    score: float | None
    rationale: Rationale = field(default_factory=Rationale)
    evidence: dict | None = None
    regions: list[tuple[float, float]] = field(default_factory=list)
    system: str | None = None
    detector: str | None = None
    id: str | None = None
    flags: list[str] = field(default_factory=list)
    uncertain: bool | None = None
    cm_scores: dict[str, float] | None = None  # auxiliary countermeasures' P(spoof), shown beside the verdict
    #: where the detector looked (:meth:`apallm.attribution.Attribution.to_dict`): spans and bands with the drop
    #: of P(spoof) when each is masked
    attribution: dict | None = None

    def __post_init__(self):
        label = self.label if self.label in VERDICT_LABELS else canonical_label(self.label)
        if label is None:
            raise ValueError(f"label must be one of {VERDICT_LABELS}, got {self.label!r}")
        self.label = label
        if self.score is None and label != NO_SPEECH:
            raise ValueError(f"a {label} verdict needs a score (only {NO_SPEECH} may have none)")
        if self.score is not None:
            score = float(self.score)
            if not math.isfinite(score) or not 0.0 <= score <= 1.0:
                raise ValueError(f"score is P(spoof) and must lie in [0, 1], got {self.score!r}")
            self.score = score
        self.flags = list(dict.fromkeys(self.flags or []))
        if label == NO_SPEECH and NO_SPEECH not in self.flags:
            self.flags.append(NO_SPEECH)
        if self.uncertain is None:
            self.uncertain = label != NO_SPEECH and is_uncertain(self.score)
        self.uncertain = bool(self.uncertain)
        if isinstance(self.rationale, dict):
            self.rationale = Rationale(**self.rationale)
        if self.evidence is not None and hasattr(self.evidence, "to_dict"):
            self.evidence = self.evidence.to_dict()
        if self.attribution is not None and hasattr(self.attribution, "to_dict"):
            self.attribution = self.attribution.to_dict()
        regions = []
        for region in self.regions or []:
            start, end = (float(x) for x in region)
            if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
                raise ValueError(f"a region is (start_s, end_s) with 0 <= start < end, got {region!r}")
            regions.append((start, end))
        self.regions = regions

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "score": self.score, "uncertain": self.uncertain,
                               "flags": list(self.flags), "rationale": self.rationale.to_dict()}
        if self.id is not None:
            out = {"id": self.id, **out}
        if self.regions:
            out["regions"] = [[s, e] for s, e in self.regions]
        if self.system is not None:
            out["system"] = self.system
        if self.detector is not None:
            out["detector"] = self.detector
        if self.cm_scores:
            out["cm_scores"] = dict(self.cm_scores)
        if self.evidence is not None:
            out["evidence"] = self.evidence
        if self.attribution is not None:
            out["attribution"] = self.attribution
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Verdict":
        unknown = set(data) - {"id", "label", "score", "rationale", "regions", "system", "detector", "evidence",
                               "flags", "uncertain", "cm_scores", "attribution"}
        if unknown:
            raise ValueError(f"unknown verdict fields: {', '.join(sorted(unknown))}")
        for key in ("label", "score"):
            if key not in data:
                raise ValueError(f"a verdict needs {key!r}")
        return cls(label=data["label"], score=data["score"], rationale=Rationale(**data.get("rationale", {})),
                   evidence=data.get("evidence"), regions=[tuple(r) for r in data.get("regions", [])],
                   system=data.get("system"), detector=data.get("detector"), id=data.get("id"),
                   flags=list(data.get("flags", [])), uncertain=data.get("uncertain"), cm_scores=data.get("cm_scores"),
                   attribution=data.get("attribution"))

    @property
    def display_label(self) -> str:
        """The label as people read it: ``spoof (uncertain)`` inside the uncertain band, ``no speech``."""
        if self.label == NO_SPEECH:
            return "no speech"
        return f"{self.label} (uncertain)" if self.uncertain else self.label

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Verdict":
        return cls.from_dict(json.loads(text))

    def to_answer(self) -> str:
        """The canonical answer text for this verdict (what an ALLM is trained to write)."""
        if self.label == NO_SPEECH:
            raise ValueError("a no_speech verdict has no answer text: the detector abstained")
        return format_answer(self.label, self.rationale.frequency, self.rationale.time, self.regions, self.system)


def format_answer(label: str, frequency: str, time: str, regions=None, system: str | None = None) -> str:
    """Write the canonical answer text: label word first, then the frequency and time rationale."""
    canon = canonical_label(label) if label not in LABELS else label
    if canon is None:
        raise ValueError(f"label must be one of {LABELS}, got {label!r}")
    lines = [LABEL_WORDS[canon], f"Frequency: {_one_line(frequency)}", f"Time: {_one_line(time)}"]
    if regions:
        lines.append("Regions: " + "; ".join(f"{float(s):.2f}-{float(e):.2f} s" for s, e in regions))
    if system:
        lines.append(f"System: {_one_line(system)}")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


@dataclass
class ParsedAnswer:
    """What :func:`parse_answer` could read. ``status``: ``"full"``, ``"partial"`` or ``"none"``."""

    status: str
    label: str | None = None
    frequency: str = ""
    time: str = ""
    regions: list[tuple[float, float]] = field(default_factory=list)
    system: str | None = None
    score: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "full"

    def to_verdict(self, score: float | None = None, **extra) -> Verdict:
        """A Verdict from the parsed text. ``score`` (e.g. from label logits) wins over a written score."""
        if self.label is None:
            raise ValueError("the answer has no label: " + "; ".join(self.problems))
        if score is None:
            score = self.score if self.score is not None else (1.0 if self.label == "spoof" else 0.0)
        return Verdict(label=self.label, score=score, rationale=Rationale(self.frequency, self.time),
                       regions=self.regions, system=self.system, **extra)


def parse_answer(text: Any) -> ParsedAnswer:
    """Read an answer text leniently; never raises."""
    try:
        return _parse(text)
    except Exception as exc:  # a parser for model output must not take a batch down
        return ParsedAnswer(status="none", problems=[f"unparseable ({type(exc).__name__}: {exc})"])


def _clean(line: str) -> str:
    line = re.sub(r"[*_`#>]+", "", line)
    return re.sub(r"^\s*(?:[-•]|\d+[.)])\s+", "", line).strip()


def _parse(text: Any) -> ParsedAnswer:
    if text is None:
        return ParsedAnswer(status="none", problems=["empty answer"])
    if not isinstance(text, str):
        text = str(text)
    lines = [_clean(line) for line in text.replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        return ParsedAnswer(status="none", problems=["empty answer"])

    label = None
    fields: dict[str, list[str]] = {}
    current = None
    for i, line in enumerate(lines):
        m = _TAG_RE.match(line)
        if m:
            tag = m.group("tag").lower()
            key = ("label" if tag in ("answer", "label", "verdict", "prediction", "decision", "classification")
                   else "frequency" if tag.startswith("frequency") else "time" if tag.startswith("time")
                   else "regions" if tag.startswith("region") else tag)
            current = key
            fields.setdefault(key, []).append(m.group("rest").strip())
            continue
        if i == 0 and label is None:
            found = _LABEL_RE.search(line)
            if found and found.start() <= 2:
                label = canonical_label(found.group(1))
                current = None
                continue
        if current in ("frequency", "time", "system"):
            fields[current].append(line)  # a rationale wrapped over several lines

    problems: list[str] = []
    if label is None and "label" in fields:
        found = _LABEL_RE.search(" ".join(fields["label"]))
        label = canonical_label(found.group(1)) if found else None
    if label is None:
        problems.append("no label (bonafide/spoof) at the start or on an 'Answer:' line")

    frequency = " ".join(fields.get("frequency", [])).strip()
    time = " ".join(fields.get("time", [])).strip()
    if not frequency:
        problems.append("no 'Frequency:' rationale")
    if not time:
        problems.append("no 'Time:' rationale")

    regions: list[tuple[float, float]] = []
    for chunk in fields.get("regions", []):
        for a, b in _REGION_RE.findall(chunk):
            start, end = float(a), float(b)
            if 0 <= start < end:
                regions.append((start, end))
            else:
                problems.append(f"ignored region {a}-{b}")
    system = " ".join(fields.get("system", [])).strip() or None
    if system and system.lower() in ("none", "n/a", "unknown", "-"):
        system = None

    score = None
    for chunk in fields.get("score", []):
        m = re.search(_NUM, chunk)
        if m and 0.0 <= float(m.group()) <= 1.0:
            score = float(m.group())

    found = sum(x is not None and x != "" for x in (label, frequency, time))
    status = "full" if found == 3 else "partial" if found else "none"
    return ParsedAnswer(status=status, label=label, frequency=frequency, time=time, regions=regions,
                        system=system, score=score, problems=problems)

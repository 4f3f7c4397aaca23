"""Find the measured-cue phrases a rationale cites, and check that they agree with its label.

Every cue of ``prompts/cues.yaml`` has one phrase template per status (``low``, ``normal``, ``high``, ``na``),
for example ``bandwidth_hz`` / ``low``::

    energy stops near {v} Hz, a band limit below natural wide-band speech ({lo}-{hi} Hz)

:func:`template_regex` turns a template into a regular expression: the literal text must match (case and
whitespace aside, any dash for ``-``), ``{v}``, ``{lo}`` and ``{hi}`` capture numbers (signed, decimals,
thousands commas), ``{band}`` an octave such as ``125-250 Hz`` or ``1-2 kHz``, ``{times}`` a list of times such
as ``1.52 s, 3.04 s`` or ``none``, and any other field a short run of text. :func:`find_claims` looks for every
template in a text and returns what it finds as :class:`CueClaim` s (cue name, status, value, span, captured
fields), so a rationale written from measured evidence can be read back as structured claims.

Identifying a claim:

* several cues may share a template (the six ``band_energy_<lo>_<hi>`` cues do): the captured ``{band}`` picks
  the cue whose name ends in its edges in Hz (``1-2 kHz`` -> ``band_energy_1000_2000``);
* a cue may use one template for several statuses (``dc_offset`` low and high): the captured ``{v}`` picks the
  status against the cue's range, as :func:`apallm.evidence.make_cue` does;
* where phrases overlap (``energy extends to {v} Hz`` is the start of ``energy extends to {v} Hz, as in
  natural wide-band speech``), the longest match wins;
* a phrase that still names no single (cue, status) is not reported.

Besides the one ``cues.yaml`` phrase per (cue, status), :func:`find_claims` recognises every phrasing of
``prompts/rationale.yaml`` (several per cue and status, written into training targets by
:mod:`apallm.annotate`): :func:`claim_patterns` is the union of both files' templates, a template both use
counting once.

The claim's status is the status its phrase *asserts*; whether the cited value and range match the clip's
measurement is for a grounding check to decide (``value`` and ``fields`` carry what was written).

**Label-rationale consistency** (:func:`judge_consistency`): count the distinct (cue, status) pairs a
rationale cites, ``out`` of them out of range (``low``/``high``) and ``in_`` in range (``normal``; ``na``
counts as neither). A rationale with no recognised phrase is *unverifiable*. Otherwise a ``spoof`` label is
*consistent* when ``out >= 1`` (it cites at least one anomaly), a ``bonafide`` label when ``out <= in_`` (no
more anomalies than normal findings); anything else is *inconsistent*.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources

import yaml

from apallm.evidence.cues import cue_specs
from apallm.verdict import LABELS

__all__ = [
    "CONSISTENT",
    "INCONSISTENT",
    "UNVERIFIABLE",
    "CueClaim",
    "CuePattern",
    "claim_patterns",
    "cue_patterns",
    "find_claims",
    "judge_consistency",
    "rationale_phrasings",
    "template_regex",
]

CONSISTENT = "consistent"
INCONSISTENT = "inconsistent"
UNVERIFIABLE = "unverifiable"
OUT_OF_RANGE = ("low", "high")

_NUM = r"(?<![\w.])[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d])"
_UNSIGNED = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_DASH = r"[-\u2010\u2011\u2012\u2013\u2014]"
#: what each template field matches; any other field matches a short run of text on one line
FIELD_PATTERNS = {
    "v": _NUM,
    "lo": _NUM,
    "hi": _NUM,
    "band": rf"{_UNSIGNED}\s*(?:{_DASH}|to)\s*{_UNSIGNED}\s*k?Hz",
    "times": rf"none|{_UNSIGNED}\s*s(?:\s*(?:,|and)\s*{_UNSIGNED}\s*s)*",
    "unit": r"[^\s,;:()]+",
    "freq": _UNSIGNED,
}
_TEXT_FIELD = r"[^\n]+?"
NUMBER_FIELDS = ("v", "lo", "hi")


def template_regex(template: str) -> re.Pattern:
    """Compile a cue phrase template (a Python format string) into a case-insensitive regex.

    Each field becomes a named group (see :data:`FIELD_PATTERNS`); a field used twice must repeat the same
    text. Literal spaces match any run of whitespace and ``-`` any dash.
    """
    parts, seen = [], set()
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        for i, chunk in enumerate(re.split(r"(\s+|-)", literal)):
            if i % 2:
                parts.append(r"\s+" if chunk.isspace() else _DASH)
            elif chunk:
                parts.append(re.escape(chunk))
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"template field {{{name}}} is not a plain name: {template!r}")
        if name in seen:
            parts.append(f"(?P={name})")
        else:
            seen.add(name)
            parts.append(f"(?P<{name}>{FIELD_PATTERNS.get(name, _TEXT_FIELD)})")
    pattern = "".join(parts)
    if re.match(r"\w", template):
        pattern = r"\b" + pattern
    if re.search(r"\w$", template):
        pattern += r"\b"
    return re.compile(pattern, re.IGNORECASE)


@dataclass(frozen=True)
class CuePattern:
    """One distinct template and the (cue, status) pairs that use it."""

    template: str
    regex: re.Pattern
    uses: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CueClaim:
    """A cue phrase found in a text.

    ``value`` is the number written for ``{v}`` (None when the phrase has none), ``span`` the ``(start, end)``
    character offsets in the searched text, ``fields`` every captured field as written.
    """

    cue: str
    status: str
    value: float | None
    span: tuple[int, int]
    text: str
    domain: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def out_of_range(self) -> bool:
        """True when the phrase asserts a value outside the natural-speech range (``low`` or ``high``)."""
        return self.status in OUT_OF_RANGE


@functools.lru_cache(maxsize=1)
def cue_patterns() -> tuple[CuePattern, ...]:
    """A :class:`CuePattern` for every distinct phrase template in ``prompts/cues.yaml``."""
    uses: dict[str, list[tuple[str, str]]] = {}
    for name, spec in cue_specs().items():
        for status, template in spec["phrase"].items():
            uses.setdefault(template, []).append((name, status))
    return tuple(CuePattern(t, template_regex(t), tuple(u)) for t, u in uses.items())


STATUSES = ("low", "normal", "high", "na")


@functools.lru_cache(maxsize=1)
def rationale_phrasings() -> dict[str, dict[str, tuple[str, ...]]]:
    """The phrasings of ``prompts/rationale.yaml``: ``{cue: {status: (template, ...)}}``.

    Raises:
        ValueError: a cue that ``cues.yaml`` does not know, an unknown status, or a status without a list of
            non-empty template strings.
    """
    text = resources.files("apallm.prompts").joinpath("rationale.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    specs = cue_specs()
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for cue, by_status in data.items():
        if cue not in specs:
            raise ValueError(f"rationale.yaml: unknown cue {cue!r}")
        if not isinstance(by_status, dict):
            raise ValueError(f"rationale.yaml: {cue} must map statuses to lists of phrasings")
        out[cue] = {}
        for status, templates in by_status.items():
            if status not in STATUSES:
                raise ValueError(f"rationale.yaml: {cue}: unknown status {status!r}")
            if (not isinstance(templates, list) or not templates
                    or not all(isinstance(t, str) and t.strip() for t in templates)):
                raise ValueError(f"rationale.yaml: {cue}.{status} must be a list of non-empty strings")
            out[cue][status] = tuple(templates)
    return out


@functools.lru_cache(maxsize=1)
def claim_patterns() -> tuple[CuePattern, ...]:
    """A :class:`CuePattern` for every distinct template of ``cues.yaml`` and ``rationale.yaml``."""
    uses: dict[str, list[tuple[str, str]]] = {}
    for pattern in cue_patterns():
        uses[pattern.template] = list(pattern.uses)
    for name, by_status in rationale_phrasings().items():
        for status, templates in by_status.items():
            for template in templates:
                pairs = uses.setdefault(template, [])
                if (name, status) not in pairs:
                    pairs.append((name, status))
    known = {p.template: p for p in cue_patterns()}
    return tuple(known[t] if t in known and tuple(u) == known[t].uses else CuePattern(t, template_regex(t), tuple(u))
                 for t, u in uses.items())


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("\u2212", "-"))


def _band_edges_hz(text: str) -> tuple[int, int]:
    lo, hi = re.findall(_UNSIGNED, text)
    scale = 1000.0 if re.search(r"khz", text, re.IGNORECASE) else 1.0
    return round(_number(lo) * scale), round(_number(hi) * scale)


def _status_of(value: float, cue: str) -> str:
    lo, hi = (float(x) for x in cue_specs()[cue]["range"])
    return "low" if value < lo else "high" if value > hi else "normal"


def _resolve(pattern: CuePattern, groups: dict[str, str]) -> tuple[str, str] | None:
    """The one (cue, status) a match of ``pattern`` with these captured ``groups`` stands for, or None."""
    uses = list(pattern.uses)
    if len({cue for cue, _ in uses}) > 1 and "band" in groups:
        lo, hi = _band_edges_hz(groups["band"])
        uses = [(cue, status) for cue, status in uses if cue.endswith(f"_{lo}_{hi}")]
    if len(uses) > 1 and len({cue for cue, _ in uses}) == 1 and "v" in groups:
        status = _status_of(_number(groups["v"]), uses[0][0])
        uses = [(cue, s) for cue, s in uses if s == status]
    return uses[0] if len(uses) == 1 else None


def find_claims(text: str, patterns: Iterable[CuePattern] | None = None) -> list[CueClaim]:
    """Every cue phrase in ``text``, in order of appearance, without overlaps (the longest match wins).

    ``patterns`` defaults to :func:`claim_patterns` (the phrases of ``cues.yaml`` and ``rationale.yaml``).
    """
    if not text:
        return []
    specs = cue_specs()
    found = []
    for pattern in claim_patterns() if patterns is None else patterns:
        for match in pattern.regex.finditer(text):
            groups = {k: v for k, v in match.groupdict().items() if v is not None}
            resolved = _resolve(pattern, groups)
            if resolved is None:
                continue
            cue, status = resolved
            value = _number(groups["v"]) if "v" in groups else None
            found.append(CueClaim(cue=cue, status=status, value=value, span=match.span(), text=match.group(0),
                                  domain=specs[cue]["domain"], fields=groups))
    found.sort(key=lambda c: (c.span[0], c.span[0] - c.span[1]))
    claims: list[CueClaim] = []
    for claim in found:
        if not claims or claim.span[0] >= claims[-1].span[1]:
            claims.append(claim)
    return claims


def judge_consistency(label: str, claims: Iterable[CueClaim]) -> str:
    """:data:`CONSISTENT`, :data:`INCONSISTENT` or :data:`UNVERIFIABLE` (see the module notes).

    Args:
        label: the label the rationale argues for, ``bonafide`` or ``spoof``.
        claims: the rationale's claims, e.g. :func:`find_claims` of its text.

    Raises:
        ValueError: ``label`` is not ``bonafide`` or ``spoof``.
    """
    if label not in LABELS:
        raise ValueError(f"label must be 'bonafide' or 'spoof', got {label!r}")
    cited = {(c.cue, c.status) for c in claims}
    if not cited:
        return UNVERIFIABLE
    out = sum(status in OUT_OF_RANGE for _, status in cited)
    in_ = sum(status == "normal" for _, status in cited)
    consistent = out >= 1 if label == "spoof" else out <= in_
    return CONSISTENT if consistent else INCONSISTENT

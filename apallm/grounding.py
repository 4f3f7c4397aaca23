"""Check a rationale's cue claims against the clip's measurements.

:func:`apallm.rationale.find_claims` reads a rationale back as claims (which cue, which status it asserts,
which value it cites); :func:`check_grounding` compares each claim with what was measured on the clip (an
:class:`apallm.evidence.Evidence`, its ``to_dict()``, a ``{"cues": [...]}`` record, or a list of cues):

* **grounded**: the cue was measured, its measured status is the claimed status, and every number the claim
  cites agrees with the measurement within the rounding of the cue's ``fmt`` in ``prompts/cues.yaml``
  (``{:.1f}`` allows +-0.05, ``{:.0f}`` +-0.5): the value ``{v}``, the natural range ``{lo}``/``{hi}``, and the
  splice times ``{times}`` (to +-0.005 s, when the measurement carries them) and the frequency ``{freq}`` of a
  long-term spectral line (to +-0.5 Hz, against the measurement's ``freq_hz``);
* **contradicted**: the cue was measured but its status differs, or a cited number is off;
* **unmeasured**: the measurements have no such cue (neither grounded nor contradicted).

Per rationale (:class:`GroundingReport`): ``precision`` = grounded / claims (None without claims),
``n_contradicted`` the contradicted claims, ``coverage`` = the share of the clip's out-of-range cues (measured
``low``/``high``) that the rationale cites with any claim (None when the clip has none).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from apallm.evidence.cues import cue_specs
from apallm.rationale import _NUM, OUT_OF_RANGE, CueClaim, _number, find_claims

__all__ = ["CONTRADICTED", "GROUNDED", "UNMEASURED", "ClaimCheck", "GroundingReport", "check_claim",
           "check_grounding", "check_none_statements", "check_region_claims", "measurements", "same_facts",
           "value_tolerance"]

GROUNDED = "grounded"
CONTRADICTED = "contradicted"
UNMEASURED = "unmeasured"
TIME_TOLERANCE_S = 0.005
#: a cited frequency (``{freq}``, written to the hertz) against the measured one
FREQ_TOLERANCE_HZ = 0.5


def value_tolerance(cue: str) -> float:
    """Half a unit in the last place the cue's ``fmt`` writes (``{:+.1f}`` -> 0.05; no precision -> 0.5)."""
    fmt = cue_specs().get(cue, {}).get("fmt", "{:g}")
    m = re.search(r"\.(\d+)[fFeE%]", fmt)
    return 0.5 * 10.0 ** -int(m.group(1)) if m else 0.5


def measurements(evidence) -> dict[str, dict]:
    """``{cue name: {"value", "status", "range", "detail"}}`` from an Evidence, its dict, or cues.

    Accepts an :class:`apallm.evidence.Evidence`, a dict with ``cues`` (``Evidence.to_dict()``, a batch
    record's ``evidence``, an ``apallm evidence`` JSON file), a list of :class:`apallm.evidence.Cue` or cue
    dicts, or a mapping of cue name to either.
    """
    if evidence is None:
        return {}
    if hasattr(evidence, "cues") and not isinstance(evidence, Mapping):
        evidence = evidence.cues
    if isinstance(evidence, Mapping):
        if "cues" in evidence:
            evidence = evidence["cues"]
        else:
            evidence = [{"name": k, **(v if isinstance(v, Mapping) else _cue_dict(v))} for k, v in evidence.items()]
    out = {}
    if isinstance(evidence, (str, bytes)) or not isinstance(evidence, Iterable):
        return out
    for cue in evidence:  # anything that is not a cue (a malformed record) is ignored
        data = cue if isinstance(cue, Mapping) else _cue_dict(cue) if hasattr(cue, "status") else {}
        if isinstance(data.get("name"), str):
            out[data["name"]] = {"value": data.get("value"), "status": data.get("status", "na"),
                                 "range": data.get("range"), "detail": data.get("detail") or {}}
    return out


def _cue_dict(cue) -> dict:
    return {"name": cue.name, "value": cue.value, "status": cue.status, "range": list(cue.range),
            "detail": dict(cue.detail or {})}


@dataclass(frozen=True)
class ClaimCheck:
    """One claim and how it compares with the measurement: ``verdict`` is grounded / contradicted / unmeasured."""

    claim: CueClaim
    verdict: str
    measured_status: str | None
    measured_value: float | None
    reason: str = ""

    def to_dict(self) -> dict:
        return {"cue": self.claim.cue, "status": self.claim.status, "value": self.claim.value,
                "text": self.claim.text, "verdict": self.verdict, "measured_status": self.measured_status,
                "measured_value": self.measured_value, "reason": self.reason}


def _close(written: float, measured, tol: float) -> bool:
    if measured is None or not isinstance(measured, (int, float)) or not math.isfinite(measured):
        return False
    return abs(written - float(measured)) <= tol * (1 + 1e-6) + 1e-9 * max(1.0, abs(float(measured)))


def check_claim(claim: CueClaim, measured: Mapping[str, dict]) -> ClaimCheck:
    """Compare one claim with the measurements (see the module notes)."""
    m = measured.get(claim.cue)
    if m is None:
        return ClaimCheck(claim, UNMEASURED, None, None, f"{claim.cue} was not measured")
    status, value = m.get("status", "na"), m.get("value")
    if status != claim.status:
        return ClaimCheck(claim, CONTRADICTED, status, value, f"claims {claim.status}, measured {status}")
    tol = value_tolerance(claim.cue)
    if claim.value is not None and not _close(claim.value, value, tol):
        return ClaimCheck(claim, CONTRADICTED, status, value, f"cites {claim.fields.get('v')}, measured {value}")
    bounds = m.get("range")
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        bounds = cue_specs().get(claim.cue, {}).get("range")
    for i, key in enumerate(("lo", "hi")):
        if key in claim.fields and bounds is not None and not _close(_number(claim.fields[key]), bounds[i], tol):
            return ClaimCheck(claim, CONTRADICTED, status, value,
                              f"cites {key} {claim.fields[key]}, the natural range is {bounds[0]} to {bounds[1]}")
    times = (m.get("detail") or {}).get("times_s")
    if "times" in claim.fields and times is not None:
        written = [_number(t) for t in re.findall(r"\d+(?:\.\d+)?", claim.fields["times"])]
        if len(written) != len(times) or not all(
                _close(w, t, TIME_TOLERANCE_S) for w, t in zip(written, times, strict=True)):
            return ClaimCheck(claim, CONTRADICTED, status, value,
                              f"cites times {claim.fields['times']}, measured {times}")
    freq = (m.get("detail") or {}).get("freq_hz")
    if "freq" in claim.fields and isinstance(freq, (int, float)) and not _close(
            _number(claim.fields["freq"]), freq, FREQ_TOLERANCE_HZ):
        return ClaimCheck(claim, CONTRADICTED, status, value, f"cites {claim.fields['freq']} Hz, measured {freq} Hz")
    return ClaimCheck(claim, GROUNDED, status, value)


@dataclass(frozen=True)
class GroundingReport:
    """A rationale's claims checked against one clip's measurements."""

    checks: tuple[ClaimCheck, ...]
    #: the clip's cues measured out of range (low/high)
    out_of_range: tuple[str, ...]
    #: those of them the rationale cites
    cited_out_of_range: tuple[str, ...]

    @property
    def n_claims(self) -> int:
        return len(self.checks)

    @property
    def n_grounded(self) -> int:
        return sum(c.verdict == GROUNDED for c in self.checks)

    @property
    def n_contradicted(self) -> int:
        return sum(c.verdict == CONTRADICTED for c in self.checks)

    @property
    def precision(self) -> float | None:
        """Grounded claims / claims; None for a rationale without recognised claims."""
        return self.n_grounded / self.n_claims if self.checks else None

    @property
    def coverage(self) -> float | None:
        """Share of the clip's out-of-range cues that are cited; None when the clip has none."""
        return len(self.cited_out_of_range) / len(self.out_of_range) if self.out_of_range else None

    def to_dict(self) -> dict:
        return {"n_claims": self.n_claims, "n_grounded": self.n_grounded, "n_contradicted": self.n_contradicted,
                "precision": self.precision, "coverage": self.coverage, "out_of_range": list(self.out_of_range),
                "cited_out_of_range": list(self.cited_out_of_range), "claims": [c.to_dict() for c in self.checks]}


def check_grounding(rationale: str | Iterable[CueClaim], evidence, attribution=None) -> GroundingReport:
    """Check every claim of ``rationale`` (a text, or claims from :func:`find_claims`) against ``evidence``
    (anything :func:`measurements` takes). With ``attribution`` (an :class:`apallm.attribution.Attribution`
    or its dict, e.g. ``Verdict.attribution``) a text's "where" claims are checked too: see
    :func:`check_region_claims`."""
    claims = find_claims(rationale) if isinstance(rationale, str) else list(rationale)
    measured = measurements(evidence)
    local = _measured_there(rationale, attribution) if attribution is not None and isinstance(rationale, str) else []
    checks = tuple(check_claim(c, next((m for (a, b), m in local if a <= c.span[0] < b), measured))
                   for c in claims)
    if attribution is not None and isinstance(rationale, str):
        checks += tuple(check_region_claims(rationale, attribution))
    out = tuple(name for name, m in measured.items() if m.get("status") in OUT_OF_RANGE)
    cited = {c.cue for c in claims}
    return GroundingReport(checks, out, tuple(name for name in out if name in cited))


def check_none_statements(text: str, evidence) -> tuple[int, int]:
    """How many of the rationale's "no cue lies outside / inside the range" statements (the words of
    :func:`apallm.evidence.no_supporting_cue`) hold and how many the measurements contradict: "no
    <domain>-domain cue ... lies outside the range" is contradicted when a citable cue of that domain was
    measured out of range, "... inside the range" when one was measured within it."""
    from apallm import evidence as evidence_module

    specs = cue_specs()
    measured = measurements(evidence)
    said = text.lower()
    held = contradicted = 0
    for domain in ("frequency", "time"):
        for label in ("spoof", "bonafide"):  # "outside" and "inside", the two statements of a domain
            if evidence_module.no_supporting_cue(domain, label).lower() not in said:
                continue
            found = any(specs.get(name, {}).get("domain") == domain and evidence_module.citable(name)
                        and evidence_module.supports(m.get("status"), label) for name, m in measured.items())
            contradicted += found
            held += not found
    return held, contradicted


def _measured_there(text: str, attribution) -> list[tuple[tuple[int, int], dict]]:
    """For each "where" claim of ``text`` whose region :func:`apallm.attribution.where_rationale` measured, the
    character range of its "there ..." clause (up to the next where claim or sentence end) and those
    measurements: a cue cited there is checked against the region's values, not the whole clip's."""
    from apallm.attribution import Attribution, find_region_claims

    att = Attribution.from_dict(attribution) if isinstance(attribution, Mapping) else attribution
    claims = find_region_claims(text)
    out = []
    for i, c in enumerate(claims):
        cues = att.measured_in(c["lo_hz"], c["hi_hz"], c["start_s"], c["end_s"])
        if cues is None:
            continue
        start = c["span"][1]
        end = claims[i + 1]["span"][0] if i + 1 < len(claims) else len(text)
        stop = text.find(". ", start, end)
        out.append(((start, end if stop < 0 else stop + 1), measurements(cues)))
    return out


def check_region_claims(text: str, attribution, k: int = 3) -> list[ClaimCheck]:
    """The "the detector's spoof evidence lies at <band> between <start> and <end> s" claims of ``text``
    (:func:`apallm.attribution.find_region_claims`), each **grounded** when the cited band and/or span lies
    inside one of the attribution's ``k`` regions that raise P(spoof) most (a band with a span needs a masked
    cell there), else **contradicted**. The claims carry the cue name ``attribution``."""
    from apallm.attribution import Attribution, find_region_claims

    att = Attribution.from_dict(attribution) if isinstance(attribution, Mapping) else attribution
    checks = []
    for c in find_region_claims(text):
        fields = {key: str(c[key]) for key in ("lo_hz", "hi_hz", "start_s", "end_s") if c[key] is not None}
        claim = CueClaim(cue="attribution", status="where", value=None, span=c["span"], text=c["text"],
                         domain="frequency" if c["lo_hz"] is not None else "time", fields=fields)
        if att.supports(c["lo_hz"], c["hi_hz"], c["start_s"], c["end_s"], k):
            checks.append(ClaimCheck(claim, GROUNDED, "where", None))
        else:
            top = "; ".join(r.describe() for r in att.top(k)) or "none"
            checks.append(ClaimCheck(claim, CONTRADICTED, "where", None,
                                     f"cites {c['text']!r}, not among the regions that raise P(spoof) most ({top})"))
    return checks


def _facts(text: str) -> tuple[list, Counter]:
    claims = []
    for c in find_claims(text):
        bounds = tuple(_number(c.fields[k]) if k in c.fields else None for k in ("lo", "hi"))
        times = tuple(re.findall(r"\d+(?:\.\d+)?", c.fields.get("times", "")))
        claims.append((c.cue, c.status, c.value, bounds, times, c.fields.get("freq")))
    numbers = Counter(_number(n) for n in re.findall(_NUM, text))
    return sorted(claims, key=repr), numbers


def same_facts(original: str, other: str) -> bool:
    """True when ``other`` cites the same cues with the same statuses and numbers as ``original``, and has
    the same numbers overall (none added, dropped or changed): how a rephrasing is accepted."""
    return _facts(original) == _facts(other)

"""Cue phrases read back from rationale text, and label-rationale consistency, on the real cue templates."""

import pytest

from apallm.evidence import cue_specs, make_cue
from apallm.evidence.cues import OCTAVE_BANDS
from apallm.rationale import (
    CONSISTENT,
    INCONSISTENT,
    UNVERIFIABLE,
    cue_patterns,
    find_claims,
    judge_consistency,
    template_regex,
)
from apallm.verdict import format_answer


def extra_fields(name):
    """The cue-specific template fields measure_cues fills in."""
    for lo, hi in OCTAVE_BANDS:
        if name == f"band_energy_{lo}_{hi}":
            return {"band": f"{lo:g}-{hi:g} Hz" if hi < 1000 else f"{lo / 1000:g}-{hi / 1000:g} kHz"}
    if name == "ltas_peak_db":
        return {"freq": "5513", "detail": {"freq_hz": 5512.5}}
    return {"times": "1.52 s, 3.04 s"} if name == "splice_candidates" else {}


def cues_of(name):
    """One cue per reachable status: a value below, inside and above the range, and none."""
    lo, hi = (float(x) for x in cue_specs()[name]["range"])
    span = hi - lo
    cues = [make_cue(name, v, **extra_fields(name)) for v in (lo - span, (lo + hi) / 2, hi + span, None)]
    return {c.status: c for c in cues}


@pytest.mark.parametrize("name", sorted(cue_specs()))
def test_every_phrase_make_cue_writes_is_found_with_its_cue_status_and_value(name):
    for status, cue in cues_of(name).items():
        text = f"Frequency: {cue.phrase}. Time: nothing else."
        claims = find_claims(text)
        assert [(c.cue, c.status) for c in claims] == [(name, status)], cue.phrase
        claim = claims[0]
        assert text[claim.span[0]:claim.span[1]] == claim.text == cue.phrase
        assert claim.domain == cue_specs()[name]["domain"]
        assert claim.out_of_range == (status in ("low", "high"))
        if "{v}" in cue_specs()[name]["phrase"][status]:
            fmt = cue_specs()[name].get("fmt", "{:g}")
            assert claim.value == pytest.approx(float(fmt.format(cue.value)))
            assert claim.fields["v"] == fmt.format(cue.value)
        else:
            assert claim.value is None


def test_shared_templates_are_resolved_by_band_and_by_value():
    text = ("the 1-2 kHz octave carries -20.0 dB of the energy, less than natural speech (-17.5 to -6.5 dB); "
            "the 125-250 Hz octave carries -8.0 dB of the energy, within natural speech")
    claims = find_claims(text)
    assert [(c.cue, c.status, c.value) for c in claims] == [
        ("band_energy_1000_2000", "low", -20.0), ("band_energy_125_250", "normal", -8.0)]
    assert claims[0].fields == {"band": "1-2 kHz", "v": "-20.0", "lo": "-17.5", "hi": "-6.5"}
    # dc_offset writes one template for low and high: the value decides
    low = find_claims("the waveform has a DC offset of -0.0300 of full scale")
    high = find_claims("the waveform has a DC offset of +0.0300 of full scale")
    assert [(c.cue, c.status) for c in low + high] == [("dc_offset", "low"), ("dc_offset", "high")]
    # an octave that is not a cue matches nothing
    assert find_claims("the 3-5 kHz octave carries -20.0 dB of the energy, within natural speech") == []


def test_longest_phrase_wins_and_numbers_are_not_cut():
    normal = find_claims("energy extends to 7900 Hz, as in natural wide-band speech")
    assert [(c.cue, c.status) for c in normal] == [("bandwidth_hz", "normal")]
    high = "energy reaches 14000 Hz, beyond the 8000 Hz analysis limit"
    assert [(c.status, c.value) for c in find_claims(high + ".")] == [("high", 14000.0)]
    assert find_claims(high.replace("14000", "x14000")) == []
    assert find_claims("energy extends to 8000 Hz.") == [], "a fragment of a template is not a claim"


def test_model_drift_in_case_whitespace_dashes_and_thousands_is_tolerated():
    text = "Energy stops  near 4,000 Hz, a band\nlimit below natural wide\u2013band speech (7000\u20138000 Hz)"
    [claim] = find_claims(text)
    assert (claim.cue, claim.status, claim.value) == ("bandwidth_hz", "low", 4000.0)
    assert claim.fields["lo"] == "7000" and claim.fields["hi"] == "8000"


def test_claims_in_a_canonical_answer_come_in_order():
    answer = format_answer("spoof", make_cue("bandwidth_hz", 4000.0).phrase,
                           f"{make_cue('pause_floor_dbfs', -110.0).phrase}; {make_cue('f0_mean_hz', 150.0).phrase}")
    claims = find_claims(answer)
    assert [(c.cue, c.status, c.domain) for c in claims] == [
        ("bandwidth_hz", "low", "frequency"), ("pause_floor_dbfs", "low", "time"), ("f0_mean_hz", "normal", "time")]
    assert claims[0].span[1] <= claims[1].span[0] < claims[1].span[1] <= claims[2].span[0]
    assert find_claims("") == [] and find_claims("the voice sounds robotic") == []


def test_template_regex_handles_any_field():
    regex = template_regex("{name} rises to {v} dB at {where}, and {name} falls")
    m = regex.search("loudness rises to +3.5 dB at the end, and loudness falls")
    assert m and m.group("name") == "loudness" and m.group("v") == "+3.5" and m.group("where") == "the end"
    assert regex.search("loudness rises to +3.5 dB at the end, and pitch falls") is None
    with pytest.raises(ValueError, match="not a plain name"):
        template_regex("value {0}")


def test_patterns_cover_every_template_once():
    templates = {t for spec in cue_specs().values() for t in spec["phrase"].values()}
    patterns = cue_patterns()
    assert {p.template for p in patterns} == templates and len(patterns) == len(templates)
    shared = next(p for p in patterns if "octave carries" in p.template and "less" in p.template)
    assert {cue for cue, _ in shared.uses} == {f"band_energy_{lo}_{hi}" for lo, hi in OCTAVE_BANDS}


def claims_for(*specs):
    """Claims from real phrases: ``(cue name, value)`` pairs joined into one rationale."""
    return find_claims("; ".join(make_cue(name, value, **extra_fields(name)).phrase for name, value in specs))


@pytest.mark.parametrize("label, specs, expected", [
    ("spoof", [("bandwidth_hz", 4000.0)], CONSISTENT),
    ("spoof", [("bandwidth_hz", 7900.0), ("pause_floor_dbfs", -110.0)], CONSISTENT),
    ("spoof", [("bandwidth_hz", 7900.0), ("f0_mean_hz", 150.0)], INCONSISTENT),
    ("spoof", [("bandwidth_hz", None)], INCONSISTENT),  # a recognised "not measurable" phrase is no anomaly
    ("bonafide", [("bandwidth_hz", 7900.0)], CONSISTENT),
    ("bonafide", [("bandwidth_hz", 7900.0), ("pause_floor_dbfs", -110.0)], CONSISTENT),  # 1 out <= 1 in
    ("bonafide", [("bandwidth_hz", 4000.0), ("pause_floor_dbfs", -110.0), ("f0_mean_hz", 150.0)], INCONSISTENT),
    ("bonafide", [("bandwidth_hz", 4000.0)], INCONSISTENT),
    ("spoof", [], UNVERIFIABLE),
    ("bonafide", [], UNVERIFIABLE),
])
def test_consistency_on_rationales_made_from_the_cue_templates(label, specs, expected):
    assert judge_consistency(label, claims_for(*specs)) == expected


def test_consistency_counts_a_cue_cited_twice_once_and_checks_the_label():
    twice = claims_for(("bandwidth_hz", 4000.0), ("bandwidth_hz", 4000.0), ("f0_mean_hz", 150.0))
    assert len(twice) == 3 and judge_consistency("bonafide", twice) == CONSISTENT
    with pytest.raises(ValueError, match="'bonafide' or 'spoof'"):
        judge_consistency("fake", twice)

"""The grounding checker: every rationale.yaml phrasing is read back; true claims pass, false ones are caught."""

import pytest

from apallm.evidence import Evidence, cue_specs, make_cue
from apallm.evidence.cues import OCTAVE_BANDS
from apallm.grounding import (
    CONTRADICTED,
    GROUNDED,
    UNMEASURED,
    check_grounding,
    measurements,
    same_facts,
    value_tolerance,
)
from apallm.rationale import claim_patterns, cue_patterns, find_claims, rationale_phrasings
from apallm.verdict import format_answer


def band_of(name):
    for lo, hi in OCTAVE_BANDS:
        if name == f"band_energy_{lo}_{hi}":
            return f"{lo:g}-{hi:g} Hz" if hi < 1000 else f"{lo / 1000:g}-{hi / 1000:g} kHz"
    return None


def value_for(name, status):
    """A made-up value with the given status."""
    lo, hi = (float(x) for x in cue_specs()[name]["range"])
    span = hi - lo
    return {"low": lo - span, "normal": (lo + hi) / 2, "high": hi + span}[status]


def render(name, template, value, times="1.52 s, 3.04 s", freq="5513"):
    spec = cue_specs()[name]
    fmt = spec["fmt"]
    lo, hi = (float(x) for x in spec["range"])
    fields = {"v": fmt.format(value), "lo": fmt.format(lo), "hi": fmt.format(hi), "unit": spec["unit"],
              "band": band_of(name) or "", "times": times, "freq": freq}
    return template.format(**fields)


def all_phrasings():
    for name, by_status in sorted(rationale_phrasings().items()):
        for status, templates in by_status.items():
            for template in templates:
                yield name, status, template


PHRASINGS = list(all_phrasings())


def test_every_cue_has_several_phrasings_per_status_a_rationale_can_cite():
    phrasings = rationale_phrasings()
    assert set(phrasings) == set(cue_specs())
    for name, spec in cue_specs().items():
        lo = float(spec["range"][0])
        statuses = ("normal", "high") if lo <= 0 and name in ("splice_candidates", "clipping_ratio") else (
            "low", "normal", "high")
        for status in statuses:
            templates = phrasings[name].get(status, ())
            assert len(templates) >= 2, (name, status)
            assert len(set(templates)) == len(templates), (name, status)


@pytest.mark.parametrize("name, status, template", PHRASINGS, ids=[f"{n}-{s}-{i}" for i, (n, s, _) in
                                                                    enumerate(PHRASINGS)])
def test_every_phrasing_is_recognised_with_its_cue_status_and_value(name, status, template):
    value = value_for(name, status)
    text = render(name, template, value)
    claims = find_claims(f"Frequency: {text}. Time: nothing else.")
    assert [(c.cue, c.status) for c in claims] == [(name, status)], text
    assert claims[0].text == text
    if "{v}" in template:
        assert claims[0].value == pytest.approx(float(cue_specs()[name]["fmt"].format(value)))
    # measured with that value, the claim is grounded
    cue = make_cue(name, value, **({"band": band_of(name)} if band_of(name) else {}),
                   **({"times": "1.52 s, 3.04 s", "detail": {"times_s": [1.52, 3.04]}}
                      if name == "splice_candidates" else {}),
                   **({"freq": "5513", "detail": {"freq_hz": 5512.5}} if name == "ltas_peak_db" else {}))
    report = check_grounding(text, [cue])
    assert (report.n_claims, report.n_grounded, report.n_contradicted) == (1, 1, 0), report.to_dict()


def test_all_phrasings_joined_are_read_back_in_order_without_cross_talk():
    parts, expected = [], []
    for name, status, template in PHRASINGS:
        parts.append(render(name, template, value_for(name, status)))
        expected.append((name, status))
    claims = find_claims("; ".join(parts))
    assert [(c.cue, c.status) for c in claims] == expected


def test_claim_patterns_add_the_rationale_phrasings_to_the_cue_phrases():
    templates = {p.template for p in claim_patterns()}
    assert {p.template for p in cue_patterns()} <= templates
    assert {t for _, _, t in PHRASINGS} <= templates
    assert len(templates) == len(claim_patterns())


def evidence(*specs):
    cues = []
    for name, value in specs:
        extra = {"band": band_of(name)} if band_of(name) else {}
        if name == "splice_candidates":
            extra = {"times": "1.52 s", "detail": {"times_s": [1.52]}}
        if name == "ltas_peak_db":
            extra = {"freq": "5513", "detail": {"freq_hz": 5512.5}}
        cues.append(make_cue(name, value, **extra))
    return Evidence(clip={}, cues=cues)


EV = evidence(("bandwidth_hz", 4000.0), ("band_energy_1000_2000", -12.34), ("pause_floor_dbfs", -110.0),
              ("f0_mean_hz", 150.0), ("splice_candidates", 1.0), ("dc_offset", 0.03))
#: the synthesis cues: a tonal line, a smooth 4-8 kHz band, a clean voice, an empty sub-bass
EV_SYNTH = evidence(("ltas_peak_db", 25.0), ("hf_flux_db", 0.5), ("hnr_db", 20.0), ("sub_bass_db", -60.0),
                    ("f0_jitter_pct", 0.8))


def test_true_claims_are_grounded_and_coverage_counts_cited_anomalies():
    text = format_answer("spoof", "a band limit near 4000 Hz removes the upper band that natural wide-band speech "
                         "keeps", "the pauses drop to -110.0 dBFS, a digital-silence floor no microphone gives")
    report = check_grounding(text, EV)
    assert [c.verdict for c in report.checks] == [GROUNDED, GROUNDED]
    assert report.precision == 1.0 and report.n_contradicted == 0
    assert set(report.out_of_range) == {"bandwidth_hz", "pause_floor_dbfs", "dc_offset"}
    assert report.coverage == pytest.approx(2 / 3)
    # the measured phrases themselves are grounded too
    assert check_grounding("; ".join(c.phrase for c in EV.cues), EV).precision == 1.0


@pytest.mark.parametrize("text, why", [
    ("energy extends to 4000 Hz, as in natural wide-band speech", "claims normal"),       # status flipped
    ("energy stops near 4100 Hz, a band limit below natural wide-band speech (7000-8000 Hz)", "cites 4100"),
    ("energy stops near 4000 Hz, a band limit below natural wide-band speech (6000-8000 Hz)", "cites lo"),
    ("a mean F0 of 150 Hz, above the human range (80-300 Hz)", "claims high"),
    ("a mean F0 of 160 Hz, within the human range (80-300 Hz)", "cites 160"),
    ("the 1-2 kHz octave carries -12.4 dB of the energy, within natural speech", "cites -12.4"),
    ("a negative DC offset of -0.0300 of full scale, beyond the -0.0100 tolerance", "claims low"),
    ("1 abrupt spectral changes within continuous sound (2.00 s), as natural speech may show", "cites times"),
])
def test_contradicted_claims_are_caught(text, why):
    report = check_grounding(text, EV)
    assert report.n_claims == 1 and report.n_contradicted == 1 and report.precision == 0.0
    assert why in report.checks[0].reason


def test_claims_of_the_synthesis_cues_are_grounded():
    text = ("a steady tonal line near 5513 Hz stands 25.0 dB above its neighbourhood in the long-term spectrum "
            "(natural {lo}-{hi} dB), as upsampling layers leave; the 4-8 kHz band hardly flickers, 0.50 dB per 10 ms, "
            "smoother than natural speech ({flo}-{fhi} dB); a harmonics-to-noise ratio of 20.0 dB, cleaner than "
            "natural voices ({hlo}-{hhi} dB)")
    fmt = {k: cue_specs()[c]["fmt"].format(float(cue_specs()[c]["range"][i])) for k, c, i in (
        ("lo", "ltas_peak_db", 0), ("hi", "ltas_peak_db", 1), ("flo", "hf_flux_db", 0), ("fhi", "hf_flux_db", 1),
        ("hlo", "hnr_db", 0), ("hhi", "hnr_db", 1))}
    report = check_grounding(text.format(**fmt), EV_SYNTH)
    assert [c.claim.cue for c in report.checks] == ["ltas_peak_db", "hf_flux_db", "hnr_db"]
    assert report.precision == 1.0 and report.n_contradicted == 0
    assert check_grounding("; ".join(c.phrase for c in EV_SYNTH.cues), EV_SYNTH).precision == 1.0


@pytest.mark.parametrize("text, why", [
    # the right cue and value, the wrong frequency: the line is at 5513 Hz
    ("the long-term spectrum carries a steady tone near 4000 Hz, 25.0 dB above its neighbourhood, more than natural "
     f"speech ({cue_specs()['ltas_peak_db']['fmt'].format(float(cue_specs()['ltas_peak_db']['range'][0]))}-"
     f"{cue_specs()['ltas_peak_db']['fmt'].format(float(cue_specs()['ltas_peak_db']['range'][1]))} dB)",
     "cites 4000 Hz"),
    ("the 4-8 kHz band flickers by 0.50 dB per 10 ms, as in natural speech", "claims normal"),  # measured low
    ("a harmonics-to-noise ratio of 12.0 dB, as in natural voices", "claims normal"),
    ("almost nothing below 80 Hz: the sub-bass sits -50.0 dB under the 100-300 Hz band, below natural recordings",
     "cites -50.0"),
    ("frame-to-frame pitch jitter of 0.90 %, as in natural voices", "cites 0.90"),
])
def test_contradicted_synthesis_claims_are_caught(text, why):
    report = check_grounding(text, EV_SYNTH)
    assert report.n_claims == 1 and report.n_contradicted == 1, report.to_dict()
    assert why in report.checks[0].reason


def test_values_within_the_rounding_of_the_format_are_grounded():
    assert value_tolerance("band_energy_1000_2000") == pytest.approx(0.05)
    assert value_tolerance("bandwidth_hz") == pytest.approx(0.5)
    assert value_tolerance("dc_offset") == pytest.approx(0.00005)
    ok = check_grounding("the 1-2 kHz octave carries -12.3 dB of the energy, within natural speech", EV)
    assert ok.checks[0].verdict == GROUNDED


def test_unmeasured_cues_are_neither_grounded_nor_contradicted():
    report = check_grounding("speech level -12.0 dBFS; energy stops near 4000 Hz, a band limit below natural "
                             "wide-band speech (7000-8000 Hz)", EV)
    assert [c.verdict for c in report.checks] == [UNMEASURED, GROUNDED]
    assert report.precision == 0.5 and report.n_contradicted == 0
    empty = check_grounding("sounds robotic", EV)
    assert empty.n_claims == 0 and empty.precision is None


def test_measurements_accept_evidence_dicts_and_cue_lists():
    as_dict = EV.to_dict()
    for form in (EV, as_dict, as_dict["cues"], EV.cues, {c.name: c for c in EV.cues}):
        m = measurements(form)
        assert m["bandwidth_hz"]["status"] == "low" and m["bandwidth_hz"]["value"] == 4000.0
    text = "the spectrum is cut off at about 4000 Hz, narrower than natural wide-band speech (7000-8000 Hz)"
    assert check_grounding(text, as_dict).precision == 1.0
    assert check_grounding(text, None).checks[0].verdict == UNMEASURED
    for junk in ({"cues": "x"}, {"cues": [1, "a", {"value": 3}]}, [None], 5):  # malformed records: nothing measured
        assert measurements(junk) == {}
    assert CONTRADICTED != GROUNDED


def test_same_facts_accepts_a_reordering_and_rejects_changed_numbers_or_cues():
    a = "energy stops near 4000 Hz, a band limit below natural wide-band speech (7000-8000 Hz); speech level -12.0 dBFS"
    b = "speech sits at a normal -12.0 dBFS; the spectrum is cut off at about 4000 Hz, narrower than natural " \
        "wide-band speech (7000-8000 Hz)"
    assert same_facts(a, b)
    assert not same_facts(a, b.replace("4000", "4001"))
    assert not same_facts(a, b.replace("-12.0", "-13.0"))
    assert not same_facts(a, "speech sits at a normal -12.0 dBFS, and the band stops at 4000 Hz (7000-8000 Hz)")
    assert not same_facts(a, b + ", over 3 s")  # a number added


# ------------------------------------------------------------------ apallm eval --predictions: grounding metrics

def _cues(*specs):
    return {"cues": [c.to_dict() for c in evidence(*specs).cues]}


def test_eval_reports_grounded_precision_and_contradiction_rate(tmp_path, capsys):
    import json

    from apallm.commands import main

    wide, floor = make_cue("bandwidth_hz", 7900.0).phrase, make_cue("pause_floor_dbfs", -50.0).phrase
    limit, silent = make_cue("bandwidth_hz", 4000.0).phrase, make_cue("pause_floor_dbfs", -110.0).phrase
    records = [
        # both claims true: precision 1, no contradiction
        {"id": "b1", "label": "bonafide", "score": 0.1, "rationale": {"frequency": wide, "time": floor},
         "evidence": _cues(("bandwidth_hz", 7900.0), ("pause_floor_dbfs", -50.0))},
        # the pause claim is false (measured normal): precision 1/2, contradiction rate 1/2
        {"id": "s1", "label": "spoof", "score": 0.9, "rationale": {"frequency": limit, "time": silent},
         "evidence": _cues(("bandwidth_hz", 4000.0), ("pause_floor_dbfs", -50.0))},
        # evidence but no recognised claim: left out of the means
        {"id": "s2", "label": "spoof", "score": 0.8, "rationale": {"frequency": "robotic", "time": "odd"},
         "evidence": _cues(("bandwidth_hz", 4000.0))},
        # no evidence in the record: from --evidence-dir; the cited 7500 Hz is off (7900 measured)
        {"id": "b2", "label": "bonafide", "score": 0.2,
         "answer": "bonafide\nFrequency: energy extends to 7500 Hz, as in natural wide-band speech\nTime: fine"},
    ]
    p = tmp_path / "p.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in records))
    k = tmp_path / "k.tsv"
    k.write_text("filename\tcm-label\nb1\tbonafide\nb2\tbonafide\ns1\tspoof\ns2\tspoof\n")
    ev_dir = tmp_path / "ev"
    evidence(("bandwidth_hz", 7900.0)).save(ev_dir, "b2")

    assert main(["eval", "--predictions", str(p), "--keys", str(k), "--out", str(tmp_path / "a"),
                 "--n-boot", "0"]) == 0
    ground = json.loads((tmp_path / "a" / "metrics.json").read_text())["predictions"]["grounding"]
    assert (ground["n_with_evidence"], ground["n_without_evidence"], ground["n_with_claims"]) == (3, 1, 2)
    assert ground["grounded_precision"] == pytest.approx(0.75)
    assert ground["contradiction_rate"] == pytest.approx(0.25)
    assert (ground["n_claims"], ground["n_grounded"], ground["n_contradicted"]) == (4, 3, 1)
    assert ground["coverage"] == pytest.approx(0.5)  # of the clips with an anomaly, s1 cites its one, s2 none
    assert "grounded precision 0.7500, contradiction rate 0.2500" in capsys.readouterr().out

    assert main(["eval", "--predictions", str(p), "--keys", str(k), "--out", str(tmp_path / "b"), "--n-boot", "0",
                 "--evidence-dir", str(ev_dir)]) == 0
    result = json.loads((tmp_path / "b" / "metrics.json").read_text())
    ground = result["predictions"]["grounding"]
    assert (ground["n_with_evidence"], ground["n_with_claims"]) == (4, 3)
    assert ground["grounded_precision"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert ground["contradiction_rate"] == pytest.approx((0 + 0.5 + 1) / 3)
    assert result["inputs"]["evidence_dir"] == str(ev_dir)
    assert "### Grounding" in (tmp_path / "b" / "summary.md").read_text()


def test_no_cue_statements_are_checked_against_the_citable_cues_of_their_domain(tmp_path, capsys):
    import json

    from apallm.commands import main
    from apallm.evidence import citable, no_supporting_cue
    from apallm.grounding import check_none_statements

    lo, hi = cue_specs()["hf_phase_spread"]["range"]
    assert citable("hf_phase_spread") and cue_specs()["hf_phase_spread"]["domain"] == "frequency"
    assert not any(citable(n) for n, spec in cue_specs().items() if spec["domain"] == "time")
    above, within = _cues(("hf_phase_spread", hi + 0.01)), _cues(("hf_phase_spread", (lo + hi) / 2))
    says = {side: {d: no_supporting_cue(d, label) for d in ("frequency", "time")}
            for side, label in (("outside", "spoof"), ("inside", "bonafide"))}
    # the shipped lite adapter's miss: "no frequency-domain cue lies outside" while the cited cue is measured HIGH
    assert check_none_statements("\n".join(says["outside"].values()), above) == (1, 1)
    assert check_none_statements("\n".join(says["outside"].values()), within) == (2, 0)
    assert check_none_statements("\n".join(says["inside"].values()), within) == (1, 1)
    assert check_none_statements("spoof\nFrequency: odd\nTime: odd", above) == (0, 0)

    records = [{"id": "s1", "label": "spoof", "score": 0.9, "rationale": says["outside"], "evidence": above},
               {"id": "s2", "label": "spoof", "score": 0.8, "rationale": says["outside"], "evidence": within},
               {"id": "b1", "label": "bonafide", "score": 0.1, "rationale": {"frequency": "fine", "time": "fine"},
                "evidence": within}]
    p, k = tmp_path / "p.jsonl", tmp_path / "k.tsv"
    p.write_text("".join(json.dumps(r) + "\n" for r in records))
    k.write_text("filename\tcm-label\ns1\tspoof\ns2\tspoof\nb1\tbonafide\n")
    assert main(["eval", "--predictions", str(p), "--keys", str(k), "--out", str(tmp_path / "a"),
                 "--n-boot", "0"]) == 0
    ground = json.loads((tmp_path / "a" / "metrics.json").read_text())["predictions"]["grounding"]
    assert (ground["n_with_none_statements"], ground["n_none_statements"], ground["n_none_contradicted"]) == (2, 4, 1)
    assert ground["none_contradiction_rate"] == pytest.approx((0.5 + 0) / 2)
    assert "1 of 4 contradicted" in capsys.readouterr().out
    assert "'no cue' contradiction rate (mean) | 0.2500" in (tmp_path / "a" / "summary.md").read_text()


def test_eval_evidence_dir_errors(tmp_path, capsys):
    from apallm.commands import main

    p = tmp_path / "p.jsonl"
    p.write_text('{"id": "b1", "score": 0.1}\n{"id": "s1", "score": 0.9}\n')
    k = tmp_path / "k.tsv"
    k.write_text("filename\tcm-label\nb1\tbonafide\ns1\tspoof\n")
    assert main(["eval", "--predictions", str(p), "--keys", str(k), "--out", str(tmp_path / "o"),
                 "--evidence-dir", str(tmp_path / "nowhere")]) == 2
    assert "UnreadableInputError" in capsys.readouterr().err
    assert main(["eval", "--scores", str(k), "--keys", str(k), "--out", str(tmp_path / "o"),
                 "--evidence-dir", str(tmp_path)]) == 2
    assert "--evidence-dir goes with --predictions" in capsys.readouterr().err
    (tmp_path / "b1.json").write_text("{broken")
    assert main(["eval", "--predictions", str(p), "--keys", str(k), "--out", str(tmp_path / "o"),
                 "--evidence-dir", str(tmp_path)]) == 2
    assert "MalformedInputError" in capsys.readouterr().err

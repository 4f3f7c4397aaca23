import json

import pytest

from apallm import Rationale, Verdict, format_answer, parse_answer
from apallm.verdict import LABEL_WORDS, canonical_label, parse_band


def make(**kw):
    base = dict(label="spoof", score=0.91, rationale=Rationale("energy stops near 4000 Hz", "pauses are -120 dBFS"),
                regions=[(1.2, 1.85)], system="vits", detector="aasist-l", id="clip-1",
                evidence={"cues": [{"name": "bandwidth_hz", "value": 4000.0}]})
    base.update(kw)
    return Verdict(**base)


def test_json_round_trip_is_lossless():
    v = make()
    back = Verdict.from_json(v.to_json())
    assert back == v
    data = json.loads(v.to_json())
    assert data["label"] == "spoof" and data["score"] == 0.91
    assert data["rationale"] == {"frequency": "energy stops near 4000 Hz", "time": "pauses are -120 dBFS"}
    assert data["regions"] == [[1.2, 1.85]]
    minimal = Verdict("bonafide", 0.1)
    assert Verdict.from_dict(minimal.to_dict()) == minimal
    assert set(minimal.to_dict()) == {"label", "score", "uncertain", "flags", "rationale"}


@pytest.mark.parametrize("kw,msg", [({"label": "maybe"}, "label"), ({"score": 1.5}, r"\[0, 1\]"),
                                    ({"score": float("nan")}, r"\[0, 1\]"), ({"regions": [(2.0, 1.0)]}, "region"),
                                    ({"regions": [(-1.0, 1.0)]}, "region")])
def test_invalid_verdicts_are_refused(kw, msg):
    with pytest.raises(ValueError, match=msg):
        make(**kw)


def test_from_dict_rejects_unknown_and_missing_fields():
    with pytest.raises(ValueError, match="unknown verdict fields: confidence"):
        Verdict.from_dict({"label": "spoof", "score": 0.5, "confidence": 1})
    with pytest.raises(ValueError, match="'score'"):
        Verdict.from_dict({"label": "spoof"})


def test_label_synonyms_normalise():
    assert make(label="bona fide").label == "bonafide"
    assert canonical_label("FAKE") == "spoof" and canonical_label("Bona-Fide") == "bonafide"
    assert canonical_label("unsure") is None


def test_canonical_format_puts_the_label_word_first_and_parses_back_fully():
    v = make()
    text = v.to_answer()
    lines = text.splitlines()
    assert lines[0] == LABEL_WORDS["spoof"]
    assert lines[1].startswith("Frequency: ") and lines[2].startswith("Time: ")
    assert lines[3] == "Regions: 1.20-1.85 s" and lines[4] == "System: vits"
    parsed = parse_answer(text)
    assert parsed.status == "full" and parsed.ok and not parsed.problems
    assert (parsed.label, parsed.frequency, parsed.time) == ("spoof", v.rationale.frequency, v.rationale.time)
    assert parsed.regions == [(1.2, 1.85)] and parsed.system == "vits"
    again = parsed.to_verdict(score=0.91, detector="aasist-l", id="clip-1",
                              evidence={"cues": [{"name": "bandwidth_hz", "value": 4000.0}]})
    assert again == v


def test_format_keeps_each_field_on_one_line():
    text = format_answer("bonafide", "line one\nline two", "t")
    assert text.splitlines()[1] == "Frequency: line one line two"
    with pytest.raises(ValueError):
        format_answer("unknown", "f", "t")


@pytest.mark.parametrize("text,label", [
    ("**Answer:** Bona fide\n- **Frequency domain:** full band to 8 kHz\n- **Time domain:** natural pauses",
     "bonafide"),
    ("Label: FAKE\nFrequency-domain evidence: cut at 4 kHz\nTime: silent pauses", "spoof"),
    ("Spoof.\nFrequency: band limit\nTime: flat pitch", "spoof"),
    ("## Verdict: real\nFrequency: wide band\nTime: varied intonation\nScore: 0.12", "bonafide"),
])
def test_parser_tolerates_common_drift(text, label):
    p = parse_answer(text)
    assert p.status == "full" and p.label == label and p.frequency and p.time


def test_parser_reads_wrapped_rationale_and_score_line():
    p = parse_answer("spoof\nFrequency: energy stops\nnear 4 kHz\nTime: flat\nScore: 0.93\n"
                     "Regions: 0.5 - 1.0 s, 2 to 3")
    assert p.frequency == "energy stops near 4 kHz"
    assert p.score == 0.93
    assert p.regions == [(0.5, 1.0), (2.0, 3.0)]


@pytest.mark.parametrize("text,status,label", [
    ("spoof\nFrequency: energy stops near 4 k", "partial", "spoof"),   # truncated mid-answer
    ("spoof", "partial", "spoof"),
    ("Frequency: wide band\nTime: natural", "partial", None),
    ("I cannot tell.", "none", None),
    ("", "none", None),
    ("   \n\n  ", "none", None),
    (None, "none", None),
    (12345, "none", None),
    ("The clip is not a spoof, maybe.", "none", None),   # a label word not at the start is not a label
])
def test_parser_reports_partial_and_failed_parses(text, status, label):
    p = parse_answer(text)
    assert p.status == status and p.label == label
    assert (status == "full") == p.ok
    if status != "full":
        assert p.problems


def test_parser_never_raises_on_garbage():
    for text in ("\x00\xff" * 50, "Regions: -5--3 s\nspoof", "Answer:\nFrequency:\nTime:", "Score: 7\n" * 3,
                 "spoof\nRegions: 3-1 s"):
        p = parse_answer(text)
        assert p.status in ("full", "partial", "none")
    assert parse_answer("spoof\nRegions: 3-1 s").regions == []
    with pytest.raises(ValueError, match="no label"):
        parse_answer("Frequency: x\nTime: y").to_verdict()


def test_no_speech_abstains_without_a_score_and_carries_its_flag():
    v = Verdict("no_speech", None, flags=["silent"])
    assert v.score is None and v.flags == ["silent", "no_speech"] and v.uncertain is False
    assert v.display_label == "no speech"
    assert Verdict.from_json(v.to_json()) == v
    with pytest.raises(ValueError, match="no answer text"):
        v.to_answer()
    with pytest.raises(ValueError, match="needs a score"):
        Verdict("spoof", None)


@pytest.mark.parametrize(("score", "uncertain", "shown"), [
    (0.5, True, "spoof (uncertain)"), (0.4, True, "spoof (uncertain)"), (0.6, True, "spoof (uncertain)"),
    (0.61, False, "spoof"), (0.39, False, "spoof")])
def test_uncertain_band_around_the_threshold(score, uncertain, shown):
    v = Verdict("spoof", score)
    assert v.uncertain is uncertain and v.display_label == shown


def test_uncertain_band_parsing():
    assert parse_band("0.3,0.7") == (0.3, 0.7) and parse_band((0.5, 0.5)) == (0.5, 0.5)
    for bad in ("0.6,0.4", "0.3", "a,b", "0.55,0.9"):
        with pytest.raises(ValueError, match="uncertain band"):
            parse_band(bad)

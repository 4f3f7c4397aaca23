"""Occlusion attribution finds a planted artifact in the right span and band."""

import numpy as np
import pytest
from conftest import END_S, SR, START_S, TONE_HZ, ToneDetector, planted

from apallm.attribution import OCTAVES, Attribution, attribute, mask_region


def test_attribution_finds_a_planted_tone_in_its_span_and_band():
    att = attribute(ToneDetector(), planted(), bands=OCTAVES)
    assert att.score > 0.5
    best_span = max(att.spans, key=lambda r: r.delta)
    best_band = max(att.bands, key=lambda r: r.delta)
    assert (best_span.start_s, best_span.end_s) == (START_S, END_S)
    assert (best_band.lo_hz, best_band.hi_hz) == (2000.0, 4000.0)
    cell = att.cells[0]  # the strongest crossing of a top span and a top band is the planted one
    assert (cell.start_s, cell.end_s, cell.lo_hz, cell.hi_hz) == (START_S, END_S, 2000.0, 4000.0)
    assert cell.describe() == "2-4 kHz between 1.50 and 2.00 s"
    assert cell.delta > 0.9 * best_band.delta and att.top(1)[0] in (cell, best_band)
    others = [r.delta for r in att.spans if r is not best_span] + [r.delta for r in att.bands if r is not best_band]
    assert best_span.delta > 0.3 and max(others) < 0.1 * best_span.delta
    assert att.n_variants == len(att.spans) + len(OCTAVES) + 4 and att.cost_passes == att.n_variants + 1


def test_masking_leaves_the_rest_of_the_clip_and_round_trips():
    x = planted()
    masked = mask_region(x, SR, START_S, END_S, 2000.0, 4000.0)
    t = np.arange(len(x)) / SR
    outside = (t < START_S - 0.05) | (t > END_S + 0.05)
    assert np.max(np.abs(masked[outside] - x[outside])) < 1e-4
    assert np.sum(masked[~outside] ** 2) < np.sum(x[~outside] ** 2)
    unchanged = mask_region(x, SR, 10.0, 11.0, 2000.0, 4000.0)  # a region outside the clip: nothing changes
    assert np.array_equal(unchanged, x)


def test_attribution_round_trips_through_dicts():
    att = attribute(ToneDetector(), planted(2.5), top_k=1)
    back = Attribution.from_dict(att.to_dict())
    assert back.to_dict() == att.to_dict()
    assert len(back.spans) == 5 and len(back.cells) == 1


@pytest.mark.parametrize("score", [None, 0.9])
def test_a_known_score_saves_a_pass(score):
    att = attribute(ToneDetector(), planted(2.0), score=score)
    assert att.cost_passes == att.n_variants + (score is None)
    if score is not None:
        assert att.score == 0.9


def test_verdict_carries_the_attribution():
    from apallm.verdict import Verdict

    att = attribute(ToneDetector(), planted(2.0), top_k=1)
    v = Verdict(label="spoof", score=att.score, attribution=att)
    assert v.attribution == att.to_dict()
    back = Verdict.from_dict(v.to_dict())
    assert back.attribution == att.to_dict()
    assert "attribution" not in Verdict(label="bonafide", score=0.1).to_dict()


def test_grounding_accepts_the_attributed_region_and_rejects_a_wrong_span_or_band():
    from apallm.grounding import CONTRADICTED, GROUNDED, check_grounding

    att = attribute(ToneDetector(), planted(), bands=OCTAVES)
    right = att.cells[0].phrase()
    assert right.startswith("the detector's spoof evidence lies at 2-4 kHz between 1.50 and 2.00 s")
    report = check_grounding(right, {"cues": []}, attribution=att.to_dict())
    assert [c.verdict for c in report.checks] == [GROUNDED] and report.precision == 1.0
    for wrong in ("the detector's spoof evidence lies at 2-4 kHz between 0.50 and 1.00 s",   # wrong span
                  "the detector's spoof evidence lies at 4-8 kHz between 1.50 and 2.00 s",   # wrong band
                  "the detector's spoof evidence lies at 0.5-1 kHz",                         # wrong band alone
                  "the detector's spoof evidence lies at 3.00-3.50 s"):                       # wrong span alone
        report = check_grounding(wrong, {"cues": []}, attribution=att)
        assert [c.verdict for c in report.checks] == [CONTRADICTED], wrong
        assert "not among the regions" in report.checks[0].reason
    # a band or span alone inside the attributed region is grounded; without an attribution nothing is checked
    for alone in ("the detector's spoof evidence lies at 2-4 kHz", "the detector's spoof evidence lies at 1.50-2.00 s"):
        assert check_grounding(alone, {"cues": []}, attribution=att).precision == 1.0
    assert check_grounding(right, {"cues": []}).n_claims == 0


def test_where_rationale_names_the_region_and_what_is_measured_there():
    from apallm.attribution import cues_in, where_rationale
    from apallm.grounding import check_grounding

    x = planted()
    att = attribute(ToneDetector(), x, bands=OCTAVES)
    text = where_rationale(att, x)
    assert text.startswith(att.cells[0].phrase() + "; there ")  # the cell: as strong, and more specific
    assert "2-4 kHz between 1.50 and 2.00 s" in text
    assert check_grounding(text, {"cues": []}, attribution=att).n_contradicted == 0
    inside = {c.name: c for c in cues_in(x, att.cells[0])}
    assert inside["ltas_peak_db"].detail["freq_hz"] == pytest.approx(TONE_HZ, abs=8)  # the tone, measured there
    nothing = Attribution(score=0.2, spans=[], bands=[])
    assert where_rationale(nothing, x) == "no masked span or band lowers the detector's P(spoof)"


@pytest.mark.parametrize("region_cite", [True, False])
def test_where_rationale_cites_only_cues_that_separate_when_measured_in_a_region(region_cite, monkeypatch):
    import apallm.evidence
    import apallm.evidence.cues as cues_module
    from apallm.attribution import where_rationale
    from apallm.grounding import check_grounding

    specs = {name: {**spec, "cite": True, "region_cite": False} for name, spec in cues_module.cue_specs().items()}
    # the planted tone is a narrow line: out of a range that ends at 1 dB, and cited there only when the cue's
    # in-region test lets it (the whole-clip flag says yes either way)
    specs["ltas_peak_db"].update(region_range=[0.0, 1.0], region_cite=region_cite)
    monkeypatch.setattr(cues_module, "cue_specs", lambda: specs)
    monkeypatch.setattr(apallm.evidence, "cue_specs", lambda: specs)
    x = planted()
    att = attribute(ToneDetector(), x, bands=OCTAVES)
    text = where_rationale(att, x)
    (measured,) = att.measured
    peak = next(c for c in measured["cues"] if c["name"] == "ltas_peak_db")
    assert peak["status"] == "high" and peak["range"] == [0.0, 1.0]
    assert ("there a steady tonal line near" in text and "(natural 0.0-1.0 dB)" in text) == region_cite
    assert ("there no measured cue" in text) != region_cite
    report = check_grounding(text, {"cues": []}, attribution=att)
    assert report.n_contradicted == 0 and report.n_grounded >= 1 + region_cite


def test_a_band_region_is_the_whole_clip_and_keeps_the_whole_clip_ranges(monkeypatch):
    import apallm.evidence
    import apallm.evidence.cues as cues_module
    from apallm.attribution import Region, cues_in, in_time, where_rationale

    specs = {name: {**spec, "cite": False, "region_cite": False} for name, spec in cues_module.cue_specs().items()}
    # the tone's line: out of its whole-clip range and citable there; within its in-region range, not citable there
    specs["ltas_peak_db"].update(range=[0.0, 1.0], cite=True, region_range=[0.0, 100.0], region_cite=False)
    monkeypatch.setattr(cues_module, "cue_specs", lambda: specs)
    monkeypatch.setattr(apallm.evidence, "cue_specs", lambda: specs)
    x = planted()
    band = Region("band", 0.0, len(x) / SR, 2000.0, 4000.0, 0.4)
    span = Region("span", START_S, END_S, 0.0, 8000.0, 0.4)
    assert not in_time(band) and in_time(span)
    assert {c.name: c for c in cues_in(x, band)}["ltas_peak_db"].range == (0.0, 1.0)
    assert {c.name: c for c in cues_in(x, span)}["ltas_peak_db"].range == (0.0, 100.0)
    assert "there a steady tonal line near" in where_rationale(Attribution(0.9, [], [band]), x)
    assert "there no measured cue" in where_rationale(Attribution(0.9, [span], []), x)


def test_a_rationale_whose_region_is_a_band_says_its_whole_clip_cues_once(monkeypatch):
    import apallm.evidence
    import apallm.evidence.cues as cues_module
    from apallm.attribution import Region
    from apallm.audio import load_audio
    from apallm.detectors import _with_where

    specs = {name: {**spec, "cite": False, "region_cite": False} for name, spec in cues_module.cue_specs().items()}
    specs["ltas_peak_db"].update(range=[0.0, 1.0], cite=True)  # the planted tone's line: out of range, citable
    monkeypatch.setattr(cues_module, "cue_specs", lambda: specs)
    monkeypatch.setattr(apallm.evidence, "cue_specs", lambda: specs)
    clip = load_audio(planted(), sample_rate=SR)
    (phrase,) = [c.phrase for c in cues_module.measure_cues(clip) if c.name == "ltas_peak_db"]
    band = Attribution(0.9, [], [Region("band", 0.0, len(clip.waveform) / SR, 2000.0, 4000.0, 0.4)])
    frequency, _ = _with_where(band, clip, phrase, "time")
    assert frequency.lower().count(phrase.lower()) == 1  # said "there", not again for the whole clip
    assert frequency.startswith("the detector's spoof evidence lies at 2-4 kHz")
    cell = Attribution(0.9, [], [], [Region("cell", START_S, END_S, 2000.0, 4000.0, 0.4)])
    frequency, _ = _with_where(cell, clip, phrase, "time")
    assert "there no measured cue" in frequency  # the cell's second is judged by its own rules ...
    assert frequency.endswith(phrase[:1].upper() + phrase[1:])  # ... then the whole clip's cue follows


def test_rationale_regions_put_a_cell_first_only_when_it_keeps_most_of_the_best_delta():
    from apallm.attribution import Region, rationale_regions

    span = Region("span", 1.0, 1.5, 0.0, 8000.0, 0.30)
    band = Region("band", 0.0, 3.0, 4000.0, 8000.0, 0.20)
    strong_cell = Region("cell", 1.0, 1.5, 4000.0, 8000.0, 0.28)  # 0.93 of the span's delta
    weak_cell = Region("cell", 1.0, 1.5, 4000.0, 8000.0, 0.25)  # 0.83
    assert rationale_regions(Attribution(0.9, [span], [band], [strong_cell])) == [strong_cell]
    assert rationale_regions(Attribution(0.9, [span], [band], [weak_cell])) == [span]
    assert rationale_regions(Attribution(0.9, [span], [band], [weak_cell]), k=2) == [span, weak_cell]
    lowering = Region("span", 0.0, 0.5, 0.0, 8000.0, -0.1)
    assert rationale_regions(Attribution(0.2, [lowering], [])) == []

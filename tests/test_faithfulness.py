"""Faithfulness metrics: comprehensiveness against random masks, sufficiency, informativeness."""

import numpy as np
import pytest
from conftest import ToneDetector, planted

from apallm.attribution import OCTAVES, attribute
from apallm.evaluation.faithfulness import (
    cited_regions,
    clip_faithfulness,
    informativeness,
    random_like,
    summarize_faithfulness,
)


def test_masking_the_cited_region_drops_the_score_far_more_than_random_regions_of_its_size():
    x = planted()
    detector = ToneDetector()
    att = attribute(detector, x, bands=OCTAVES)
    text = att.cells[0].phrase()
    row = clip_faithfulness(detector, x, text, att, n_random=4)
    assert [r.describe() for r in row.cited] == ["2-4 kHz between 1.50 and 2.00 s"]
    assert row.drop_cited > 0.8 * row.score and row.drop_random < 0.3 * row.drop_cited
    assert row.sufficiency > 0.8 * row.score  # the tone alone keeps the verdict
    wrong = clip_faithfulness(detector, x, "the detector's spoof evidence lies at 0.00-0.50 s", att, n_random=4)
    assert wrong.drop_cited < 0.1 * row.drop_cited
    summary = summarize_faithfulness([row, wrong, None])
    assert summary["n"] == 2 and summary["drop_cited"] == pytest.approx((row.drop_cited + wrong.drop_cited) / 2)


def test_a_rationale_without_where_claims_stands_on_the_top_region_and_random_regions_keep_their_size():
    att = attribute(ToneDetector(), planted(), bands=OCTAVES)
    (region,) = cited_regions("the spectrum is flat", att, 4.0)
    assert region == att.top(1)[0]
    rng = np.random.default_rng(0)
    for _ in range(20):
        r = random_like(region, 4.0, 8000.0, rng)
        assert r.kind == region.kind and r.end_s - r.start_s == pytest.approx(region.end_s - region.start_s)
        assert r.hi_hz - r.lo_hz == pytest.approx(region.hi_hz - region.lo_hz) and 0 <= r.lo_hz and r.hi_hz <= 8000
        assert 0 <= r.start_s and r.end_s <= 4.0


def test_informativeness_counts_grounded_out_of_range_cue_citations_only():
    from apallm.audio import as_clips
    from apallm.evidence import EvidenceConfig, extract_evidence
    from apallm.synth import brickwall_lowpass, speech_like

    (clip,) = as_clips([brickwall_lowpass(speech_like(3.0, seed=1), 3000.0)])
    ev = extract_evidence(clip, EvidenceConfig(render_image=False))
    out = next(c for c in ev.cues if c.status in ("low", "high") and c.phrase)
    normal = next(c for c in ev.cues if c.status == "normal" and c.phrase)

    def record(label, text, true_label):
        return {"label": label, "rationale": {"frequency": text, "time": ""}, "evidence": ev.to_dict(),
                "true_label": true_label}

    records = [record("spoof", out.phrase, "spoof"), record("spoof", normal.phrase, "spoof"),
               record("bonafide", normal.phrase, "bonafide"), record("spoof", out.phrase, "bonafide"),
               {"label": "no_speech", "rationale": {}, "evidence": None}]
    got = informativeness(records)
    assert got["n_spoof_verdicts"] == 3 and got["spoof_verdicts_citing_a_spoof_cue"] == pytest.approx(2 / 3)
    assert got["bonafide_verdicts_citing_a_spoof_cue"] == 0.0
    assert got["n_bonafide_clips"] == 2 and got["bonafide_clips_citing_a_spoof_cue"] == 0.5

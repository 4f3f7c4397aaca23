"""Attribution on a detector that pools Whisper frames (the shipped design): spans left out of the pooling, bands
masked in one batched pass, wired into explain and drawn for people."""

import re

import numpy as np
import pytest
import torch

from apallm.attribution import BANDS, Attribution, attribute, draw_attribution
from apallm.calibration import LogisticCalibrator
from apallm.cm.default import WEIGHTS_DIR, DefaultDetector, write_whisper_detector
from apallm.synth import SR, speech_like, tone

TONE_HZ, START_S, END_S = 3000.0, 1.5, 2.0


def _with_tone(x: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    t = np.arange(len(x)) / SR
    inside = (t >= start_s) & (t < end_s)
    x = x.copy()
    x[inside] += tone(TONE_HZ, len(x) / SR, amp=0.08)[inside]
    return x


@pytest.fixture(scope="module")
def tone_detector(tmp_path_factory):
    """The shipped Whisper encoder with a head that learnt "a 3 kHz tone is spoof": a logistic model of single
    frames (a frame inside a planted tone is spoof) is the head's weight on the pooled means, since the mean of
    frame log-odds is the log-odds of the frame mean; its bias sits halfway between clean and toned clips."""
    shipped = DefaultDetector()
    rng = np.random.default_rng(0)
    starts = rng.uniform(0, 2.5, 8)
    clips = [speech_like(3.0, seed=s) for s in range(8)]
    clips += [_with_tone(speech_like(3.0, seed=100 + s), a, a + 0.5) for s, a in enumerate(starts)]
    frames, labels = [], []
    for k, clip in enumerate(clips):
        (states,) = shipped.frame_states(clip[None])
        frames.append(torch.cat(states, dim=1).numpy())
        centres = (np.arange(len(frames[-1])) + 0.5) / shipped.frame_rate
        inside = (centres >= starts[k - 8]) & (centres < starts[k - 8] + 0.5) if k >= 8 else np.zeros(len(centres))
        labels += inside.astype(int).tolist()
    frame_head = LogisticCalibrator.fit(np.concatenate(frames), labels, c=1.0, standardise=False)
    dim = states[0].shape[1]
    coef = np.zeros(2 * dim * len(states))
    for layer in range(len(states)):  # pooled layout: (mean, std) of each state in turn; std weighs nothing
        coef[2 * dim * layer:2 * dim * layer + dim] = frame_head.coef[dim * layer:dim * (layer + 1)]
    pooled = np.stack([np.concatenate(f.reshape(len(f), len(states), dim).mean(0)) for f in frames]) @ frame_head.coef
    bias = -(pooled[:8].mean() + pooled[8:].mean()) / 2
    head = LogisticCalibrator(coef, bias)
    encoder = shipped.recipe.frontends[0]
    folder = write_whisper_detector(tmp_path_factory.mktemp("tone") / "det", head, "tone test",
                                    whisper_folder=WEIGHTS_DIR / encoder, name=encoder)
    return DefaultDetector(folder)


def test_pooled_attribution_finds_a_planted_tone_in_its_span_in_four_passes(tone_detector):
    x = _with_tone(speech_like(3.0, seed=7), START_S, END_S)
    att = attribute(tone_detector, x, precision="float32")
    assert tone_detector.pools_frames and att.cost_passes == 1 + len(BANDS) and att.n_variants == len(BANDS)
    assert att.score == pytest.approx(float(tone_detector.score([x])[0]), abs=1e-4)
    assert att.score > 0.5
    best_span = max(att.spans, key=lambda r: r.delta)
    assert (best_span.start_s, best_span.end_s) == (START_S, END_S)
    assert best_span.delta > 2 * max(r.delta for r in att.spans if r is not best_span)
    assert len(att.cells) == 4 and {(c.start_s, c.end_s) for c in att.cells[:2]} == {(START_S, END_S)}
    # the same clip without the tone scores lower and has no span that stands out as much
    clean = attribute(tone_detector, speech_like(3.0, seed=7))
    assert clean.score < att.score and max(r.delta for r in clean.spans) < best_span.delta


def test_leaving_no_frame_out_pools_exactly_as_scoring_does():
    from apallm.audio import as_clips

    detector = DefaultDetector()
    (clip,) = as_clips([speech_like(2.0, seed=3)])  # conditioned at intake, as score() does
    x = clip.waveform
    (states,) = detector.frame_states(x[None])
    ones = detector.score_states([states], [np.ones(states[0].shape[0], dtype=np.float32)])
    assert detector.score_states([states])[0] == pytest.approx(float(detector.score([clip])[0]), abs=1e-5)
    assert ones[0] == pytest.approx(float(detector.score([clip])[0]), abs=1e-5)


def test_a_zero_fill_leaves_a_hole_where_the_floor_fill_keeps_the_channel():
    from apallm.attribution import mask_region

    x = speech_like(2.0, seed=4) + np.random.default_rng(0).normal(0, 0.003, 2 * SR).astype(np.float32)
    floor = mask_region(x, SR, 0.0, 9.0, 4000.0, 8000.0, fill="floor")
    hole = mask_region(x, SR, 0.0, 9.0, 4000.0, 8000.0, fill="zero")
    f = np.fft.rfftfreq(len(x), 1 / SR)
    high = f > 4200

    def level(w):
        return np.mean(np.abs(np.fft.rfft(w))[high] ** 2)

    assert level(hole) < 0.02 * level(floor) and level(floor) < level(x)
    with pytest.raises(ValueError, match="fill must be one of"):
        mask_region(x, SR, 0.0, 1.0, 0.0, 1000.0, fill="band")


def test_default_detector_explains_where_and_its_rationale_is_grounded(tone_detector):
    from apallm.grounding import check_grounding

    x = _with_tone(speech_like(3.0, seed=7), START_S, END_S)
    (verdict,) = tone_detector.explain([x], include_evidence=True)
    assert verdict.label == "spoof" and verdict.attribution is not None
    text = f"{verdict.rationale.frequency} {verdict.rationale.time}"
    assert "the detector's spoof evidence lies at " in text and "there " in text
    # each sentence after the where sentence starts a new one (capitalised), and whole-clip claims say so
    assert not re.search(r"\. [a-z]", text), text
    report = check_grounding(text, verdict.evidence, attribution=verdict.attribution)
    assert report.n_contradicted == 0 and any(c.claim.cue == "attribution" for c in report.checks)
    assert Attribution.from_dict(verdict.attribution).measured  # what the rationale measured there is kept
    (quiet,) = tone_detector.explain([speech_like(3.0, seed=7)])
    assert quiet.label == "bonafide" and "spoof evidence lies" not in quiet.rationale.frequency + quiet.rationale.time


def test_the_drawing_adds_a_time_strip_red_where_the_span_raised_the_score(tone_detector):
    import io

    from PIL import Image

    from apallm.evidence.spectrogram import render_spectrogram

    x = _with_tone(speech_like(3.0, seed=7), START_S, END_S)
    att = attribute(tone_detector, x)
    spec = render_spectrogram(x, SR)
    png = draw_attribution(spec, att)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size[1] > spec.image.size[1]
    y = spec.image.size[1] + 2 + 8
    hot = image.getpixel((int(spec.x_of((START_S + END_S) / 2)), y))
    cold = image.getpixel((int(spec.x_of(0.25)), y))
    assert hot[0] == 255 and hot[1] < cold[1]


def test_evidence_command_writes_the_attribution_image_and_json(tmp_path):
    import json

    from apallm.commands import main
    from apallm.data import example_path

    assert main(["evidence", str(example_path()), "--out", str(tmp_path), "--attribution", "--json"]) == 0
    data = json.loads((tmp_path / "example_espeak.json").read_text())
    lowp = "bfloat16" in data["attribution"]["mask"]  # bands in bfloat16 add a bfloat16 pass of the clip
    assert data["attribution"]["detector"] == "apallm-default" and data["attribution"]["cost_passes"] == 4 + lowp
    assert len(data["attribution"]["spans"]) == 12 and len(data["attribution"]["bands"]) == len(BANDS)
    assert (tmp_path / "example_espeak_attribution.png").stat().st_size > 0
    assert main(["evidence", str(example_path()), "--out", str(tmp_path), "--attribution", "no-such-detector"]) == 2


def test_demo_draws_the_attribution_and_answers_where_from_it(tone_detector):
    from apallm.audio import as_clips
    from apallm.demo import analyse_clip, display_spectrogram, evidence_answer

    (clip,) = as_clips([_with_tone(speech_like(3.0, seed=7), START_S, END_S)])
    analysis = analyse_clip(clip, tone_detector)
    assert analysis.verdict.attribution is not None
    image = display_spectrogram(analysis, tone_detector)
    assert image.size[1] > 448  # the strip under the plot
    answer = "".join(evidence_answer("where is the evidence?", analysis))
    assert "P(spoof) drops most at" in answer and "1.50-2.00 s" in answer


def test_band_masks_in_the_encoder_spectrogram_replace_the_band_by_the_floor_and_leave_the_rest():
    from apallm.frontends.whisper import mask_bands, power_spectrogram

    x = _with_tone(speech_like(3.0, seed=5), START_S, END_S)
    power = power_spectrogram(torch.from_numpy(x)[None])
    freqs = np.arange(power.shape[1]) * 40.0
    band = (freqs >= 1000) & (freqs < 4000)
    (floor,), (zero,) = mask_bands(power, [(1000.0, 4000.0)]), mask_bands(power, [(1000.0, 4000.0)], fill="zero")
    assert torch.equal(floor[0, ~band], power[0, ~band]) and torch.equal(zero[0, ~band], power[0, ~band])
    assert float(zero[0, band].abs().max()) == 0.0
    tone_bin, during = int(TONE_HZ / 40), slice(int(START_S * 100) + 2, int(END_S * 100) - 2)
    # the bin reads as noise at its floor (the exponential draws average to it), the tone is gone
    assert float(floor[0, tone_bin].mean()) == pytest.approx(float(power[0, tone_bin].quantile(0.1)), rel=0.25)
    assert float(floor[0, tone_bin, during].mean()) < 0.01 * float(power[0, tone_bin, during].mean())
    (top,) = mask_bands(power, [(4000.0, 8000.0)])
    assert not torch.equal(top[0, -1], power[0, -1])  # a band that reaches 8 kHz includes its last bin
    with pytest.raises(ValueError, match="fill must be"):
        mask_bands(power, [(0.0, 1000.0)], fill="band")


def test_pooled_attribution_finds_the_planted_tone_in_its_band(tone_detector):
    att = attribute(tone_detector, _with_tone(speech_like(3.0, seed=7), START_S, END_S))
    best = max(att.bands, key=lambda r: r.delta)
    assert (best.lo_hz, best.hi_hz) == (1000.0, 4000.0) and best.delta > 0.1
    assert all(r.delta < 0.02 for r in att.bands if r is not best)


def test_bfloat16_band_passes_give_the_float32_deltas_within_a_few_hundredths(tone_detector):
    x = _with_tone(speech_like(3.0, seed=7), START_S, END_S)
    exact, lowp = attribute(tone_detector, x, precision="float32"), attribute(tone_detector, x, precision="bfloat16")
    assert lowp.score == exact.score and lowp.cost_passes == 2 + len(BANDS) and "bfloat16" in lowp.mask
    assert [r.delta for r in lowp.spans] == [r.delta for r in exact.spans]  # spans keep the float32 pass
    for a, b in zip(exact.bands + exact.cells, lowp.bands + lowp.cells, strict=True):
        assert (a.lo_hz, a.start_s) == (b.lo_hz, b.start_s) and b.delta == pytest.approx(a.delta, abs=0.03)
    with pytest.raises(ValueError, match="precision must be one of"):
        attribute(tone_detector, x, precision="half")

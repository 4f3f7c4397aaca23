"""The Qwen2.5-Omni ALLM detector on the tiny offline fixture: inputs, scores, explanations, streaming."""

import numpy as np
import pytest
import torch
from conftest import SR, brickwall_lowpass, speech_like

from apallm import load_audio
from apallm.allm import PromptOptions, label_token_ids, load_allm
from apallm.allm.tiny import tiny_omni_processor
from apallm.verdict import LABEL_WORDS, Verdict

SHORT_PROMPTS = {"system": "You detect deepfake speech.", "instruction": "bonafide or spoof?",
                 "spectrogram": "Spectrogram:"}


@pytest.fixture(scope="module")
def detector():
    from apallm.evidence import EvidenceConfig, SpectrogramConfig

    return load_allm("tiny-qwen2_5-omni", device="cpu", prompts=SHORT_PROMPTS, batch_size=3, max_new_tokens=12,
                     evidence_config=EvidenceConfig(spectrogram=SpectrogramConfig(width=224, height=224)))


def clips(seconds=(1.0, 2.0, 3.0)):
    return [load_audio(speech_like(s, seed=i), sample_rate=SR, clip_id=f"c{i}") for i, s in enumerate(seconds)]


def test_label_words_have_distinct_first_tokens_in_every_tokenizer():
    from apallm.allm.tiny import tiny_qwen2_audio_processor

    for processor in (tiny_omni_processor(), tiny_qwen2_audio_processor()):
        ids = label_token_ids(processor.tokenizer, LABEL_WORDS)
        assert ids["bonafide"] != ids["spoof"]
    with pytest.raises(ValueError, match="share their first token"):
        label_token_ids(tiny_omni_processor().tokenizer, {"bonafide": " real", "spoof": " fake"})


def test_placeholder_counts_match_audio_length_and_image_size(detector):
    tok = detector.tokenizer
    for seconds in (1.0, 2.0, 4.0):
        (samples,) = detector.prepare([load_audio(speech_like(seconds), sample_rate=SR)])
        batch = detector.encode(samples)
        n_audio = int((batch["input_ids"] == tok.audio_token_id).sum())
        # Whisper features at 100 frames/s, then the encoder's stride-2 conv and 2x pooling: 25 tokens/s
        frames = int(batch["feature_attention_mask"].sum())
        assert frames == int(seconds * 100)
        assert n_audio == ((frames - 1) // 2 + 1 - 2) // 2 + 1
        # a 224 x 224 image: 16 x 16 patches of 14 px, merged 2 x 2 -> 64 image tokens
        assert int((batch["input_ids"] == tok.image_token_id).sum()) == 64
        assert batch["image_grid_thw"].tolist() == [[1, 16, 16]]


def test_audio_only_option_sends_no_image(detector):
    audio_only = load_allm("tiny-qwen2_5-omni", device="cpu", prompts=SHORT_PROMPTS,
                           options=PromptOptions.parse("audio"))
    (samples,) = audio_only.prepare(clips((1.0,)))
    batch = audio_only.encode(samples)
    assert "pixel_values" not in batch
    assert int((batch["input_ids"] == audio_only.tokenizer.image_token_id).sum()) == 0
    assert 0.0 <= audio_only.score(clips((1.0,)))[0] <= 1.0


def test_score_is_the_softmax_over_the_two_label_logits(detector):
    (samples,) = detector.prepare(clips((2.0,)))
    with torch.inference_mode():
        logits = detector.model(**detector.encode(samples)).logits[0, -1]
    ids = detector.label_token_ids
    expected = torch.softmax(torch.stack([logits[ids["bonafide"]], logits[ids["spoof"]]]), 0)[1].item()
    assert detector.score(clips((2.0,)))[0] == pytest.approx(expected, abs=1e-6)


def test_batched_scores_equal_one_by_one(detector):
    cs = clips((1.0, 2.5, 3.0, 1.5))
    batched = detector.score(cs)  # batch_size 3: one padded batch of 3 and one of 1
    single = np.array([detector.score([c])[0] for c in cs])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert len(set(np.round(batched, 6))) > 1, "different clips should not score identically"


def test_long_clip_is_scored_by_its_most_suspicious_window(detector):
    long_clip = load_audio(np.concatenate([speech_like(20.0, seed=1), brickwall_lowpass(speech_like(20.0, seed=2),
                                                                                          2000.0)]), sample_rate=SR)
    (windows,) = detector.prepare([long_clip])
    assert [w.clip.offset_s for w in windows] == [0.0, 10.0]
    per_window = detector.score_samples(windows)
    assert detector.score([long_clip])[0] == pytest.approx(per_window.max())


def test_explain_gives_a_valid_verdict_with_the_score_from_the_first_step(detector):
    cs = clips((1.0, 2.0))
    verdicts = detector.explain(cs)
    scores = detector.score(cs)
    for v, s, c in zip(verdicts, scores, cs, strict=True):
        assert isinstance(v, Verdict) and v.id == c.id and v.label in ("bonafide", "spoof")
        assert v.score == pytest.approx(s, abs=1e-5)
        assert v.detector.startswith("qwen2_5_omni")
        assert v.evidence["answer"]["parse"] in ("full", "partial", "none")
        assert Verdict.from_json(v.to_json()) == v


def test_stream_yields_the_same_text_as_generation(detector):
    (clip,) = clips((1.0,))
    chunks = list(detector.stream(clip, max_new_tokens=8))
    assert len(chunks) >= 2
    (samples,) = detector.prepare([clip])
    batch = detector.encode(samples)
    with torch.inference_mode():
        out = detector.model.generate(**batch, max_new_tokens=8, do_sample=False,
                                      pad_token_id=detector.tokenizer.pad_token_id)
    expected = detector.tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "".join(chunks) == expected


def test_follow_up_question_enters_the_conversation(detector):
    (clip,) = clips((1.0,))
    (sample,) = detector.prepare([clip])[0]
    conv = detector.conversation(sample, history=[(None, "spoof\nFrequency: a\nTime: b"), ("why?", None)])
    assert [m["role"] for m in conv] == ["system", "user", "assistant", "user"]
    assert conv[-1]["content"][0]["text"] == "why?"
    assert list(detector.stream(clip, question="where is the edit?", history=[(None, "spoof")],
                                max_new_tokens=3))
    with pytest.raises(ValueError):
        detector.conversation(sample, history=[("a", None), ("b", None)])


def test_cue_and_cm_options_enter_the_prompt(detector):
    with_cues = load_allm("tiny-qwen2_5-omni", device="cpu", prompts=SHORT_PROMPTS,
                          options=PromptOptions.parse("audio+spectrogram+cues+cm"))
    (sample,) = with_cues.prepare(clips((1.0,)), cm_scores=[{"aasist-l": 0.87}])[0]
    assert "bandwidth_hz = " in sample.text and "aasist-l gives P(spoof) = 0.87" in sample.text
    with pytest.raises(ValueError, match="cm"):
        with_cues.prepare(clips((1.0,)))
    with pytest.raises(ValueError, match="unknown input parts"):
        PromptOptions.parse("audio+video")


def test_compact_cues_list_the_furthest_out_of_range_cues_without_phrases():
    from apallm.allm import default_target
    from apallm.allm.prompting import COMPACT_CUES
    from apallm.evidence import _outside, citable
    from apallm.grounding import find_claims

    muffled = load_audio(brickwall_lowpass(speech_like(2.0, seed=3), 3000.0), sample_rate=SR, clip_id="lp")
    compact = load_allm("tiny-qwen2_5-omni", device="cpu", prompts=SHORT_PROMPTS,
                        options=PromptOptions(cues=True, compact_cues=True))
    (sample,) = compact.prepare([muffled])[0]
    block, _, vocabulary = sample.text.split("Measured cues outside the range of natural speech")[1].partition(
        "Cues a rationale may cite:")
    lines = [line for line in block.splitlines() if " = " in line]
    cues = {c.name: c for c in sample.evidence.cues}
    out = [n for n, c in cues.items() if c.status in ("low", "high")]
    listed = [line.split(" = ")[0] for line in lines]
    must = [n for n in out if citable(n)]  # the out-of-range cues a rationale may cite come first, always
    assert must and listed[:len(must)] == sorted(must, key=lambda n: _outside(cues[n]), reverse=True)
    assert "bandwidth_hz" in listed and len(listed) == min(max(COMPACT_CUES, len(must)), len(out))
    assert set(listed) <= set(out) and all(line.split(": ")[0].endswith((" LOW", " HIGH")) for line in lines)
    distance = [_outside(cues[n]) for n in listed[len(must):]]
    assert distance == sorted(distance, reverse=True)
    assert all(_outside(cues[n]) <= distance[-1] for n in set(out) - set(listed))
    if len(out) > len(listed):
        assert f"({len(out) - len(listed)} more)" in block
    # every cue a rationale may cite is given with its value, out of range or not, once
    cited = [line.split(" = ")[0] for line in vocabulary.splitlines() if " = " in line]
    valued = {n for n, c in cues.items() if citable(n) and c.value is not None}
    assert set(cited) | (set(listed) & valued) == valued and not set(cited) & set(listed)
    for label in ("spoof", "bonafide"):  # a trained answer can copy every value its target cites
        for claim in find_claims(default_target(label, sample.evidence)):
            assert claim.fields["v"] in sample.text, (label, claim.text)
    assert cues["bandwidth_hz"].phrase not in sample.text  # no phrases: a few tokens a cue
    assert all(cues[n].phrase in sample.text for n in valued)  # but the claims an answer may copy, whole
    full = load_allm("tiny-qwen2_5-omni", device="cpu", prompts=SHORT_PROMPTS, options=PromptOptions(cues=True))
    assert len(sample.text) < len(full.prepare([muffled])[0][0].text) / 2


def test_compact_cues_always_give_the_values_a_rationale_may_cite():
    import dataclasses

    from apallm.allm import default_target
    from apallm.evidence import citable, extract_evidence
    from apallm.evidence.cues import make_cue
    from apallm.grounding import check_grounding, find_claims

    evidence = extract_evidence(load_audio(speech_like(2.0, seed=3), sample_rate=SR, clip_id="s"))
    phase = evidence.cue("hf_phase_spread")
    assert citable("hf_phase_spread") and phase.status == "high"
    natural = make_cue("hf_phase_spread", sum(phase.range) / 2)
    assert natural.status == "normal"
    calm = dataclasses.replace(evidence, cues=[natural if c is phase else c for c in evidence.cues])
    for ev, status in ((evidence, " HIGH"), (calm, "")):
        for limit in (0, 2):  # the cited cue comes once, whatever the limit, under the heading of its side
            text = ev.to_text(compact=True, limit=limit)
            line = ev.cue("hf_phase_spread").to_text().split(": ", 1)[0]
            assert text.count("hf_phase_spread = ") == 1 and line in text and line.endswith(f"]{status}")
            outside, _, may_cite = text.partition("Cues a rationale may cite:")
            assert f"{line}: {ev.cue('hf_phase_spread').phrase}" in (outside if status else may_cite)
            for label in ("spoof", "bonafide"):
                target = default_target(label, ev)
                claims = find_claims(target)
                assert all(c.fields["v"] in text for c in claims), (label, target)
                assert check_grounding(target, ev).precision in (None, 1.0) or not claims


def test_a_model_trained_on_a_detectors_score_runs_that_detector_when_given_none():
    reads = load_allm("tiny-qwen2_5-omni", device="cpu", prompts=SHORT_PROMPTS, cm_detectors=["default"],
                      options=PromptOptions(spectrogram=False, cm_scores=True))
    cs = clips((2.0,))
    (sample,) = reads.prepare(cs)[0]
    from apallm.cm.default import default

    p = float(default().score(cs)[0])
    assert f"apallm-default gives P(spoof) = {p:.2f}" in sample.text
    given = reads.prepare(cs, cm_scores=[{"other": 0.25}])[0][0]
    assert "other gives P(spoof) = 0.25" in given.text and "apallm-default" not in given.text
    assert reads.config_dict()["cm_detectors"] == ["default"]


def test_qlora_on_cpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        load_allm("Qwen/Qwen2.5-Omni-3B", family="qwen2_5_omni", quantization="4bit", device="cpu")


def test_loads_the_thinker_from_a_full_omni_checkpoint_layout(tmp_path):
    """A published Qwen2.5-Omni checkpoint nests the thinker under ``thinker.*`` beside talker and token2wav,
    with the thinker's config inside the full config: the tiny thinker written in that layout loads back."""
    from safetensors.torch import save_file
    from transformers import Qwen2_5OmniConfig

    from apallm.allm.tiny import build_tiny_omni

    model, processor = build_tiny_omni()
    legacy = {}
    for key, value in model.state_dict().items():
        key = (key.replace("model.language_model.", "model.", 1) if key.startswith("model.language_model.")
               else key.replace("model.", "", 1) if key.startswith(("model.audio_tower.", "model.visual.")) else key)
        legacy["thinker." + key] = value.contiguous()
    save_file(legacy, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    Qwen2_5OmniConfig(thinker_config=model.config.to_dict()).save_pretrained(str(tmp_path))
    processor.save_pretrained(str(tmp_path))
    loaded = load_allm(str(tmp_path), device="cpu", prompts=SHORT_PROMPTS)
    reference = load_allm("tiny-qwen2_5-omni", device="cpu", prompts=SHORT_PROMPTS)
    assert loaded.family == "qwen2_5_omni"
    for (name, a), (_, b) in zip(reference.model.state_dict().items(), loaded.model.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    np.testing.assert_allclose(loaded.score(clips((1.0,))), reference.score(clips((1.0,))), atol=1e-6)


def test_short_feature_padding_gives_the_same_features_as_30_s(detector):
    samples = [s for group in detector.prepare(clips((1.0, 2.5))) for s in group]
    texts = [detector.render(s) for s in samples]
    short = detector.model_inputs(texts, samples)
    full = detector.processor(text=texts, audio=[s.clip.waveform for s in samples],
                              images=[s.image for s in samples], return_tensors="pt", padding=True)
    assert short["input_features"].shape[-1] < full["input_features"].shape[-1] == 3000
    assert torch.equal(short["input_ids"], full["input_ids"])
    for row in range(2):
        valid = int(full["feature_attention_mask"][row].sum())
        assert int(short["feature_attention_mask"][row].sum()) == valid
        assert torch.equal(short["input_features"][row, :, :valid], full["input_features"][row, :, :valid])

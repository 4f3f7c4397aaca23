"""Qwen2-Audio with spectrogram tokens from a trainable projector, on the tiny offline fixture."""

import numpy as np
import pytest
import torch
from conftest import SR, speech_like

from apallm import load_audio
from apallm.allm import load_allm
from apallm.allm.qwen2_audio import SPEC_TOKEN, SpectrogramProjector
from apallm.datasets.manifest import read_labelled
from apallm.evidence import EvidenceConfig, SpectrogramConfig
from apallm.synth import make_toy_set
from apallm.training.sft import SFTConfig, build_trainer, save_output

PROMPTS = {"system": "You detect deepfake speech.", "instruction": "bonafide or spoof?"}
EVIDENCE = EvidenceConfig(spectrogram=SpectrogramConfig(width=224, height=252))


@pytest.fixture(scope="module")
def detector():
    return load_allm("tiny-qwen2-audio", device="cpu", prompts=PROMPTS, evidence_config=EVIDENCE, batch_size=2)


def clips(seconds=(1.0, 2.0, 3.0)):
    return [load_audio(speech_like(s, seed=i), sample_rate=SR, clip_id=f"c{i}") for i, s in enumerate(seconds)]


def test_projector_turns_patches_into_row_major_tokens():
    proj = SpectrogramProjector(hidden_size=16)
    pixels = torch.zeros(2, 3, 56, 84)
    pixels[1, :, 28:, 56:] = 1.0  # only the last patch (row 1, column 2) of the second image differs
    out = proj(pixels)
    assert out.shape == (2, 6, 16)
    diff = (out[0] - out[1]).abs().sum(-1)
    assert diff[5] > 0 and torch.all(diff[:5] == 0)


def test_placeholders_match_audio_length_and_image_patches(detector):
    tok = detector.tokenizer
    for seconds in (1.0, 3.0):
        (samples,) = detector.prepare([load_audio(speech_like(seconds), sample_rate=SR)])
        batch = detector.encode(samples)
        assert int((batch["input_ids"] == tok.convert_tokens_to_ids(SPEC_TOKEN)).sum()) == (252 // 28) * (224 // 28)
        frames = int(batch["feature_attention_mask"].sum())
        assert int((batch["input_ids"] == tok.audio_token_id).sum()) == ((frames - 1) // 2 + 1 - 2) // 2 + 1


def test_scores_are_label_softmax_batched_equals_single_and_see_the_image(detector):
    cs = clips((1.0, 2.0, 1.5))
    batched = detector.score(cs)
    single = np.array([detector.score([c])[0] for c in cs])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    (samples,) = detector.prepare(cs[:1])
    batch = detector.encode(samples)
    with torch.inference_mode():
        logits = detector.model(**batch).logits[0, -1]
    ids = detector.label_token_ids
    expected = torch.softmax(torch.stack([logits[ids["bonafide"]], logits[ids["spoof"]]]), 0)[1].item()
    assert batched[0] == pytest.approx(expected, abs=1e-6)
    # the spectrogram reaches the model: a different image gives a different score
    samples[0].image = samples[0].image.transpose(0)  # mirrored spectrogram
    assert detector.score_samples(samples)[0] != pytest.approx(batched[0], abs=1e-7)


def test_explain_and_stream(detector):
    (verdict,) = detector.explain(clips((1.0,)))
    assert verdict.label in ("bonafide", "spoof") and verdict.detector.startswith("qwen2_audio")
    assert verdict.score == pytest.approx(detector.score(clips((1.0,)))[0], abs=1e-5)
    assert len(list(detector.stream(clips((1.0,))[0], max_new_tokens=4))) >= 1


@pytest.mark.slow
def test_sft_trains_lora_and_projector_only_and_reloads_exactly(tmp_path):
    toy = make_toy_set(tmp_path / "toy", n=4)
    cfg = SFTConfig.from_dict(dict(
        model="tiny-qwen2-audio", train_manifest=str(toy), output_dir=str(tmp_path / "run"), prompts=PROMPTS,
        spectrogram={"width": 224, "height": 252}, peft={"r": 4, "alpha": 8, "dropout": 0.0},
        training={"max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1e-2, "save_strategy": "no"}))
    det, trainer = build_trainer(cfg)
    before = {n: p.detach().clone() for n, p in det.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in det.model.named_parameters() if not torch.equal(p.detach(), before[n])}
    trainable = {n for n, p in det.model.named_parameters() if p.requires_grad}
    assert changed <= trainable
    assert any("projector.proj" in n for n in changed) and any("lora_B" in n for n in changed)
    assert not any("audio_tower" in n for n in trainable)
    cs = [load_audio(r["path"]) for r in read_labelled(toy)]
    scores = det.score(cs)
    out = save_output(det, trainer, cfg)
    assert (out / "projector.safetensors").is_file() and not (out / "adapter" / "training_args.bin").exists()
    reloaded = load_allm(adapter=out, device="cpu")
    np.testing.assert_allclose(reloaded.score(cs), scores, atol=1e-6)
    from apallm.commands import main

    assert main(["adapter", "merge", str(out), "-o", str(tmp_path / "merged")]) == 0
    assert (tmp_path / "merged" / "projector.safetensors").is_file()
    np.testing.assert_allclose(load_allm(str(tmp_path / "merged"), device="cpu").score(cs), scores, atol=1e-5)


def test_loads_a_published_qwen2_audio_checkpoint_layout(tmp_path):
    """Qwen2-Audio-7B-Instruct's files name weights ``audio_tower.*``, ``multi_modal_projector.*`` and
    ``language_model.{model.*,lm_head}``: the tiny model written that way loads back with the projector added."""
    from safetensors.torch import save_file

    from apallm.allm.tiny import build_tiny_qwen2_audio

    model, processor = build_tiny_qwen2_audio()
    published = {}
    for key, value in model.state_dict().items():
        if key.startswith("model.language_model."):
            key = "language_model.model." + key[len("model.language_model."):]
        elif key.startswith("lm_head."):
            key = "language_model." + key
        elif key.startswith("model."):
            key = key[len("model."):]
        published[key] = value.contiguous()
    save_file(published, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(str(tmp_path))
    processor.save_pretrained(str(tmp_path))
    loaded = load_allm(str(tmp_path), device="cpu", prompts=PROMPTS, evidence_config=EVIDENCE)
    reference = load_allm("tiny-qwen2-audio", device="cpu", prompts=PROMPTS, evidence_config=EVIDENCE)
    got = loaded.model.state_dict()
    for name, value in reference.model.state_dict().items():
        assert torch.equal(value, got[name]), name  # the untrained projector is seeded: equal too
    np.testing.assert_allclose(loaded.score(clips((1.0,))), reference.score(clips((1.0,))), atol=1e-6)

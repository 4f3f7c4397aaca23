"""SFT of the tiny Qwen2.5-Omni thinker: collator masking, safe truncation, DeepSpeed ZeRO-2/3, save/load,
merge, resume, and a learning test on a generated two-class set."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from apallm import load_audio
from apallm.allm import load_allm
from apallm.allm.base import IGNORE_INDEX
from apallm.commands import main
from apallm.datasets.manifest import read_labelled
from apallm.metrics import compute_eer
from apallm.training.sft import SFTCollator, SFTConfig, SFTDataset, build_trainer, save_output, train_sft

REPO = Path(__file__).resolve().parents[1]
SHORT_PROMPTS = {"system": "You detect deepfake speech.", "instruction": "bonafide or spoof?",
                 "spectrogram": "Spectrogram:"}


@pytest.fixture(scope="module")
def toy(toy_set):
    return toy_set(n=12, seed=0)


def config(toy, out, **kw):
    data = dict(model="tiny-qwen2_5-omni", train_manifest=str(toy), output_dir=str(out), prompts=SHORT_PROMPTS,
                spectrogram={"width": 224, "height": 224},
                peft={"r": 8, "alpha": 16, "dropout": 0.0, "modules_to_save": ["lm_head"]},
                training={"max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1e-2,
                          "save_strategy": "no", "logging_steps": 1})
    for key, value in kw.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key in data else value
    return SFTConfig.from_dict(data)


def test_collator_masks_everything_but_the_answer(toy):
    det = load_allm("tiny-qwen2_5-omni", device="cpu", prompts=SHORT_PROMPTS)
    ds = SFTDataset(read_labelled(toy), det)
    batch = SFTCollator(det)([ds[0], ds[1], ds[2]])
    tok = det.tokenizer
    for row in range(3):
        ids, labels = batch["input_ids"][row], batch["labels"][row]
        kept = labels != IGNORE_INDEX
        answer = ds[row][1]
        assert tok.decode(ids[kept]) == answer + "<|im_end|>\n"
        assert torch.equal(labels[kept], ids[kept])
        for special in (tok.audio_token_id, tok.image_token_id):
            assert not kept[ids == special].any(), "placeholder tokens must never carry loss"
        assert not kept[batch["attention_mask"][row] == 0].any()


def test_truncation_shortens_answers_and_never_cuts_audio_or_image(toy):
    det = load_allm("tiny-qwen2_5-omni", device="cpu", prompts=SHORT_PROMPTS)
    ds = SFTDataset(read_labelled(toy), det)
    items = [ds[0], ds[1]]
    full = SFTCollator(det)(items)
    limit = full["input_ids"].shape[1] - 10
    cut = SFTCollator(det, max_length=limit)(items)
    assert cut["input_ids"].shape[1] == limit
    tok = det.tokenizer
    for key in (tok.audio_token_id, tok.image_token_id):
        assert int((cut["input_ids"] == key).sum()) == int((full["input_ids"] == key).sum())
    assert ((cut["labels"] != IGNORE_INDEX).sum(1) < (full["labels"] != IGNORE_INDEX).sum(1)).all()
    # the answer still starts with the label token right after the prompt
    first = [(row != IGNORE_INDEX).nonzero()[0].item() for row in cut["labels"]]
    assert {cut["input_ids"][r, i].item() for r, i in enumerate(first)} <= set(det.label_token_ids.values())
    with pytest.raises(ValueError, match="does not fit max_length"):
        SFTCollator(det, max_length=50)(items)


def test_unreadable_training_files_are_dropped(toy, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    rows = read_labelled(toy) + [{"path": str(bad), "label": "spoof"}]
    det = load_allm("tiny-qwen2_5-omni", device="cpu", prompts=SHORT_PROMPTS)
    ds = SFTDataset(rows, det)
    assert len(ds) == 12 and ds.dropped[0][0] == str(bad)


ZERO_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from apallm import load_audio
    from apallm.training.sft import SFTConfig, build_trainer, save_output
    cfg = SFTConfig.from_dict(json.loads(sys.argv[1]))
    det, trainer = build_trainer(cfg)
    before = {n: p.detach().clone() for n, p in det.model.named_parameters()}
    trainable = {n for n, p in det.model.named_parameters() if p.requires_grad}
    trainer.train()
    import deepspeed
    params = dict(det.model.named_parameters())
    with deepspeed.zero.GatheredParameters(list(params.values())):
        changed = sorted(n for n, p in params.items() if not torch.equal(p.detach().cpu(), before[n]))
    clips = [load_audio(r["path"]) for r in map(json.loads, open(cfg.train_manifest))][:4]
    scores = det.score(clips).tolist()
    save_output(det, trainer, cfg)
    print("RESULT" + json.dumps({"changed": changed, "trainable": sorted(trainable), "scores": scores}))
""")


@pytest.mark.parametrize("stage,model", [(2, "tiny-qwen2_5-omni"), (3, "tiny-qwen2_5-omni"), (3, "tiny-qwen2-audio")])
@pytest.mark.slow
def test_deepspeed_zero_steps_change_only_trainable_weights_and_save_load_is_exact(toy, tmp_path, stage, model):
    pytest.importorskip("deepspeed", reason="DeepSpeed comes with apallm[train]")
    cfg = config(toy, tmp_path / f"zero{stage}", deepspeed=str(REPO / f"configs/deepspeed/zero{stage}.json"),
                 model=model)
    proc = subprocess.run([sys.executable, "-c", ZERO_SCRIPT, json.dumps(cfg.to_dict())], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    changed, trainable = set(result["changed"]), set(result["trainable"])
    assert changed, "two steps changed nothing"
    assert changed <= trainable, f"frozen weights changed: {sorted(changed - trainable)[:5]}"
    assert any("lora_B" in n for n in changed) and any("lm_head" in n for n in changed)
    assert not any("audio_tower" in n or "visual" in n for n in trainable)
    if model == "tiny-qwen2-audio":  # the spectrogram projector trains and is saved beside the adapter
        assert any("projector.proj" in n for n in changed)
        assert (tmp_path / f"zero{stage}" / "projector.safetensors").is_file()
    # the saved folder reloads to the very same scores
    det = load_allm(adapter=tmp_path / f"zero{stage}", device="cpu")
    clips = [load_audio(r["path"]) for r in read_labelled(toy)][:4]
    np.testing.assert_allclose(det.score(clips), result["scores"], atol=1e-6)
    assert (tmp_path / f"zero{stage}" / "adapter" / "adapter_model.safetensors").is_file()


def test_dora_with_gradient_checkpointing_trains_and_resume_continues(toy, tmp_path):
    cfg = config(toy, tmp_path / "dora", peft={"method": "dora"},
                 training={"max_steps": 2, "save_strategy": "steps", "save_steps": 1, "gradient_checkpointing": True})
    det, trainer = build_trainer(cfg)
    assert any("lora_magnitude_vector" in n for n, _ in det.model.named_parameters())
    trainer.train()
    assert det.model.base_model.model.is_gradient_checkpointing
    save_output(det, trainer, cfg)
    assert (tmp_path / "dora" / "checkpoints" / "checkpoint-2").is_dir()
    resumed = config(toy, tmp_path / "dora", peft={"method": "dora"}, resume_from_checkpoint=True,
                     training={"max_steps": 3, "save_strategy": "no"})
    det2, trainer2 = build_trainer(resumed)
    trainer2.train(resume_from_checkpoint=True)
    assert trainer2.state.global_step == 3


@pytest.mark.slow
def test_learns_the_label_from_audio_and_spectrogram(toy, tmp_path):
    """The whole path learns: EER on the (band-limited vs full-band) training set falls to about 0."""
    cfg = config(toy, tmp_path / "learn", training={"max_steps": None, "num_train_epochs": 10,
                                                    "per_device_train_batch_size": 4,
                                                    "lr_scheduler_type": "constant", "logging_steps": 100})
    cfg.training.pop("max_steps")
    before = load_allm("tiny-qwen2_5-omni", device="cpu", prompts=SHORT_PROMPTS,
                       evidence_config=_evidence_224())
    rows = read_labelled(toy)
    clips = [load_audio(r["path"]) for r in rows]
    spoof = np.array([r["label"] == "spoof" for r in rows])
    eer_before = compute_eer(1 - before.score(clips)[~spoof], 1 - before.score(clips)[spoof])[0]
    out = train_sft(cfg)
    after = load_allm(adapter=out, device="cpu").score(clips)
    eer_after = compute_eer(1 - after[~spoof], 1 - after[spoof])[0]
    assert eer_after <= 0.1 < eer_before
    assert after[spoof].mean() > after[~spoof].mean() + 0.05


def _evidence_224():
    from apallm.evidence import EvidenceConfig, SpectrogramConfig

    return EvidenceConfig(spectrogram=SpectrogramConfig(width=224, height=224))


def test_merge_and_explain_from_the_adapter_folder(toy, tmp_path, capsys):
    cfg = config(toy, tmp_path / "run")
    out = train_sft(cfg)
    clips = [load_audio(r["path"]) for r in read_labelled(toy)][:3]
    adapter_scores = load_allm(adapter=out, device="cpu").score(clips)
    assert main(["adapter", "merge", str(out), "-o", str(tmp_path / "merged")]) == 0
    merged = load_allm(str(tmp_path / "merged"), device="cpu")
    np.testing.assert_allclose(merged.score(clips), adapter_scores, atol=1e-5)
    capsys.readouterr()
    code = main(["explain", "--adapter", str(out), read_labelled(toy)[0]["path"], str(tmp_path / "missing.wav"),
                 "--json", "--max-new-tokens", "8"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert lines[0]["label"] in ("bonafide", "spoof") and 0 <= lines[0]["score"] <= 1
    assert lines[0]["score"] == pytest.approx(adapter_scores[0], abs=1e-5)
    assert lines[1]["error"] == "UnreadableAudioError"


def test_shipped_tiny_configs_parse():
    for stage in (2, 3):
        cfg = SFTConfig.from_yaml(REPO / f"configs/sft/tiny-omni-zero{stage}.yaml")
        assert cfg.model == "tiny-qwen2_5-omni" and cfg.deepspeed.name == f"zero{stage}.json"
        assert json.loads(Path(cfg.deepspeed).read_text())["zero_optimization"]["stage"] == stage
    with pytest.raises(ValueError, match="lr: unknown SFT config key"):
        SFTConfig.from_dict({"model": "x", "train_manifest": "y", "output_dir": "z", "lr": 1})


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("sft/*.yaml")) + sorted((REPO / "configs").glob(
    "grpo/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_gives_valid_training_arguments(path, tmp_path):
    """The ``training`` keys of a shipped recipe are accepted by this transformers' TrainingArguments (the 3B
    configs once asked for ``warmup_ratio``, which transformers 5 no longer has)."""
    from apallm.allm.registry import build_tiny
    from apallm.training.grpo import GRPOConfig
    from apallm.training.sft import training_arguments

    kind = GRPOConfig if path.parent.name == "grpo" else SFTConfig
    cfg = kind.from_yaml(path, {"output_dir": str(tmp_path), "deepspeed": None})
    model, _ = build_tiny("tiny-qwen2_5-omni")
    args = training_arguments(cfg, model)
    for key, value in cfg.training.items():
        if key.endswith("_kwargs"):
            continue
        assert getattr(args, key) == value or str(getattr(args, key)).endswith(str(value)), key


def test_lm_only_lora_targets_match_the_decoder_in_both_transformers_5_layouts():
    """transformers 5.17 names the thinker's decoder ``model.layers``, 5.24 ``model.language_model.layers``; the
    towers (``audio_tower.layers``, ``visual.blocks``) and the head never match."""
    import re

    from apallm.allm import family_class

    pattern = family_class("qwen2_5_omni").lora_targets
    assert family_class("qwen2_audio").lora_targets == pattern
    for lm in ("model.layers.3", "model.language_model.layers.3", "thinker.model.layers.0"):
        for proj in ("self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.down_proj"):
            assert re.fullmatch(pattern, f"{lm}.{proj}"), f"{lm}.{proj}"
    for name in ("audio_tower.layers.3.self_attn.q_proj", "audio_tower.layers.0.fc1", "visual.blocks.2.attn.qkv",
                 "visual.blocks.2.mlp.gate_proj", "lm_head", "model.layers.3.self_attn", "model.embed_tokens",
                 "audio_tower.proj", "visual.merger.mlp.0"):
        assert not re.fullmatch(pattern, name), name


def test_families_own_their_settings_and_an_unknown_family_is_a_clear_error():
    from apallm.allm import FAMILIES, family_class
    from apallm.allm.registry import _model_types
    from apallm.training.sft import PeftSettings, apply_peft

    assert _model_types() == {"qwen2_5_omni": "qwen2_5_omni", "qwen2_5_omni_thinker": "qwen2_5_omni",
                              "qwen2_audio": "qwen2_audio", "apallm_composite": "composite"}
    assert family_class("qwen2_5_omni").towers == {"audio": "audio_tower", "vision": "visual"}
    assert family_class("qwen2_audio").towers["vision"] is None and family_class("qwen2_audio").reusable_inputs
    assert family_class("composite").projector_modules == ("audio_projector", "image_projector")
    assert set(FAMILIES) == {"qwen2_5_omni", "qwen2_audio", "composite"}
    with pytest.raises(ValueError, match="unknown ALLM family 'voxtral'"):
        apply_peft(None, "voxtral", PeftSettings())

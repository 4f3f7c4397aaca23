"""apallm train cm: a tiny AASIST learns the toy set, resumes where it stopped, SAM steps, CLI end to end."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from apallm import load_audio
from apallm.cm import load_cm
from apallm.cm.detector import CMDetector
from apallm.cm.train import (
    SAM,
    CMDataset,
    CMTrainConfig,
    build_model,
    class_weights_from_labels,
    learning_rate,
    make_optimizer,
    random_crop,
    train_cm,
    train_step,
)
from apallm.commands import main
from apallm.datasets.manifest import read_labelled
from apallm.metrics import compute_eer
from apallm.synth import make_toy_set

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "cm" / "tiny-aasist-toy.yaml"


def tiny_config(tmp_path: Path, **overrides) -> CMTrainConfig:
    """The shipped tiny config with its data and output moved under ``tmp_path``."""
    data = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    data.update(train_manifest=str(tmp_path / "data" / "train" / "manifest.jsonl"),
                eval_manifest=str(tmp_path / "data" / "dev" / "manifest.jsonl"),
                output_dir=str(tmp_path / "run"))
    data.update(overrides)
    return CMTrainConfig.from_dict(data)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cm-train")
    cfg = tiny_config(tmp)
    messages: list[str] = []
    began = time.perf_counter()
    best = train_cm(cfg, progress=messages.append)
    return cfg, best, messages, time.perf_counter() - began


@pytest.mark.slow
def test_tiny_cm_learns_the_toy_set_and_its_checkpoint_scores(trained):
    cfg, best, messages, seconds = trained
    history = [json.loads(line) for line in (Path(cfg.output_dir) / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == list(range(1, cfg.epochs + 1))
    assert history[-1]["loss"] < history[0]["loss"]
    assert min(h["dev_eer"] for h in history) <= 0.1, messages
    # best/ is a package checkpoint: load_cm rebuilds it, CMDetector scores clips with it
    model = load_cm(best)
    assert model.config.nb_samp == cfg.crop_samples
    assert not model.training
    detector = CMDetector(best)
    rows = read_labelled(cfg.eval_manifest)
    clips = [load_audio(r["path"]) for r in rows]
    bona = detector.bonafide_logits(clips)
    labels = np.array([r["label"] for r in rows])
    eer, _ = compute_eer(bona[labels == "bonafide"], bona[labels == "spoof"])
    assert eer <= 0.1
    recorded = json.loads((best / "config.json").read_text())["provenance"]
    assert recorded["source"] == "apallm train cm" and recorded["dev_eer"] == pytest.approx(eer, abs=1e-6)
    p_spoof = detector.score(clips)
    assert p_spoof[labels == "spoof"].mean() > p_spoof[labels == "bonafide"].mean()
    print(f"tiny CM: best dev EER {eer:.3f} after {cfg.epochs} epochs in {seconds:.1f} s")


@pytest.mark.slow
def test_only_the_last_epochs_are_kept_with_their_optimizer_state(trained):
    cfg, _, _, _ = trained
    kept = sorted(p.name for p in Path(cfg.output_dir).glob("epoch-*"))
    assert kept == [f"epoch-{e:03d}" for e in range(cfg.epochs - cfg.keep_last + 1, cfg.epochs + 1)]
    for name in kept:
        assert (Path(cfg.output_dir) / name / "optimizer.safetensors").is_file()


@pytest.mark.slow
def test_resume_continues_from_the_saved_epoch(tmp_path):
    small = dict(toy_data={"n": 8, "seed": 3, "seconds": 1.5}, eval_manifest=None, bn_recalibration=False)
    straight = tiny_config(tmp_path / "a", epochs=2, **small)
    train_cm(straight, progress=lambda _: None)

    first = tiny_config(tmp_path / "b", epochs=1, **small)
    train_cm(first, progress=lambda _: None)
    after_one = load_cm(Path(first.output_dir) / "epoch-001").state_dict()
    messages: list[str] = []
    resumed = tiny_config(tmp_path / "b", epochs=2, resume=True, **small)
    train_cm(resumed, progress=messages.append)

    assert any("resumed" in m and "epoch 1" in m for m in messages), messages
    history = [json.loads(line) for line in (Path(resumed.output_dir) / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    state = json.loads((Path(resumed.output_dir) / "epoch-002" / "trainer_state.json").read_text())
    assert state["epoch"] == 2
    # epoch 1 is left alone, epoch 2 moved on from it, exactly as the uninterrupted run did
    # (weights and Adam moments restored, the same per-epoch random draws)
    unchanged = load_cm(Path(first.output_dir) / "epoch-001").state_dict()
    assert all(torch.equal(after_one[k], unchanged[k]) for k in after_one)
    two = load_cm(Path(resumed.output_dir) / "epoch-002").state_dict()
    reference = load_cm(Path(straight.output_dir) / "epoch-002").state_dict()
    assert any(not torch.equal(two[k], after_one[k]) for k in two)
    for key in reference:
        torch.testing.assert_close(two[key], reference[key], atol=1e-5, rtol=1e-4)


def _fixed_batch(tmp_path: Path, cfg: CMTrainConfig):
    rows = read_labelled(make_toy_set(tmp_path / "toy", n=8, seed=5, seconds=1.2, targets=False))
    data = CMDataset(rows, cfg.crop_samples, train=False)
    x = torch.stack([data[i][0] for i in range(len(data))])
    return x, torch.tensor(data.labels)


@pytest.mark.parametrize("kind", ["sam", "asam"])
@pytest.mark.slow
def test_a_sam_step_moves_the_weights_and_lowers_the_loss(tmp_path, kind):
    cfg = tiny_config(tmp_path, optimizer=kind, lr=0.003)
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.crop_samples)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    model.train()
    x, y = _fixed_batch(tmp_path, cfg)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = make_optimizer(cfg, model)
    assert isinstance(optimizer, SAM) and optimizer.rho == (0.05 if kind == "sam" else 0.5)

    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = [train_step(model, optimizer, x, y, loss_fn) for _ in range(4)]
    with torch.no_grad():
        final = float(loss_fn(model(x), y))
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items() if v.is_floating_point())
    assert final < losses[0], (losses, final)


def test_sam_perturbs_by_rho_and_puts_the_weights_back(tmp_path):
    cfg = tiny_config(tmp_path, optimizer="sam", sam_rho=0.1)
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.crop_samples).train()
    x, y = _fixed_batch(tmp_path, cfg)
    optimizer = make_optimizer(cfg, model)
    params = [p for p in model.parameters() if p.requires_grad]
    w = [p.detach().clone() for p in params]
    nn.CrossEntropyLoss()(model(x), y).backward()
    optimizer.perturb()
    moved = torch.linalg.vector_norm(torch.cat([(p.detach() - v).flatten() for p, v in zip(params, w, strict=True)]))
    assert float(moved) == pytest.approx(0.1, rel=1e-3)
    assert all(p.grad is None for p in params)
    nn.CrossEntropyLoss()(model(x), y).backward()
    optimizer.base_optimizer.param_groups[0]["lr"] = 0.0  # the base step must leave the original weights
    optimizer.unperturb_and_step()
    assert all(torch.allclose(p.detach(), v, atol=1e-7) for p, v in zip(params, w, strict=True))


@pytest.mark.slow
def test_a_sam_step_is_two_forward_backward_passes(tmp_path):
    """SAM's cost is structural: one extra forward and backward pass per step, never more."""
    cfg = tiny_config(tmp_path)
    x, y = _fixed_batch(tmp_path, cfg)
    x, y = x[:4], y[:4]
    for kind, passes in (("adam", 1), ("sam", 2), ("asam", 2)):
        torch.manual_seed(0)
        model = build_model(cfg.model, cfg.crop_samples).train()
        optimizer = make_optimizer(CMTrainConfig.from_dict({**cfg.__dict__, "optimizer": kind}), model)
        calls = []
        handle = model.register_forward_hook(lambda *_, calls=calls: calls.append(1))
        train_step(model, optimizer, x, y, nn.CrossEntropyLoss())
        handle.remove()
        assert len(calls) == passes, kind


def test_crops_and_class_weights():
    rng = np.random.default_rng(0)
    wave = np.arange(10, dtype=np.float32)
    assert random_crop(wave, 25, rng).tolist() == (list(range(10)) * 3)[:25]
    crop = random_crop(wave, 4, rng)
    assert len(crop) == 4 and np.all(np.diff(crop) == 1)
    weights = class_weights_from_labels([0] * 9 + [1])
    torch.testing.assert_close(weights, torch.tensor([0.1, 0.9]))
    with pytest.raises(ValueError, match="both classes"):
        class_weights_from_labels([0, 0])


def test_config_rejects_unknown_keys_and_optimizers(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        tiny_config(tmp_path, learning_rate=1.0)
    with pytest.raises(ValueError, match="optimizer"):
        tiny_config(tmp_path, optimizer="sgd")


@pytest.mark.slow
def test_cli_trains_the_tiny_config_end_to_end(tmp_path, capsys):
    data = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    data.update(train_manifest=str(tmp_path / "data" / "train" / "manifest.jsonl"),
                eval_manifest=str(tmp_path / "data" / "dev" / "manifest.jsonl"),
                toy_data={"n": 8, "seed": 0, "seconds": 1.5})
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["train", "cm", "--config", str(config), "--epochs", "1", "--output-dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "best checkpoint:" in out
    assert load_cm(tmp_path / "out" / "best").config.nb_samp == 16000
    assert main(["train", "cm", "--config", str(tmp_path / "missing.yaml")]) == 2


def test_cosine_schedule_warms_up_then_anneals_to_min_lr_and_constant_stays():
    cfg = CMTrainConfig.from_dict({"train_manifest": "x", "output_dir": "y", "lr": 1e-4, "lr_schedule": "cosine",
                                   "min_lr": 5e-6, "warmup_steps": 4})
    lrs = [learning_rate(cfg, s, 24) for s in range(24)]
    assert lrs[:4] == pytest.approx([2.5e-5, 5e-5, 7.5e-5, 1e-4])
    assert lrs[4] == pytest.approx(1e-4) and lrs[-1] == pytest.approx(5e-6)
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:], strict=False))  # strictly falling after the warm-up
    assert lrs[14] == pytest.approx(5e-6 + 0.5 * (1e-4 - 5e-6) * (1 + np.cos(np.pi * 10 / 19)))
    flat = CMTrainConfig.from_dict({"train_manifest": "x", "output_dir": "y", "lr": 3e-4})
    assert {learning_rate(flat, s, 10) for s in range(10)} == {3e-4}
    with pytest.raises(ValueError, match="lr_schedule"):
        CMTrainConfig.from_dict({"train_manifest": "x", "output_dir": "y", "lr_schedule": "step"})
    with pytest.raises(ValueError, match="min_lr"):
        CMTrainConfig.from_dict({"train_manifest": "x", "output_dir": "y", "lr": 1e-4, "min_lr": 1e-3})


@pytest.mark.slow
def test_training_follows_the_schedule_and_resume_continues_it(tmp_path):
    cfg = tiny_config(tmp_path, epochs=3, lr_schedule="cosine", min_lr=0.0)
    train_cm(cfg, progress=lambda _: None)
    history = [json.loads(line) for line in (Path(cfg.output_dir) / "history.jsonl").read_text().splitlines()]
    per_epoch = math.ceil(len(read_labelled(cfg.train_manifest)) / cfg.batch_size)
    expected = [learning_rate(cfg, e * per_epoch - 1, 3 * per_epoch) for e in (1, 2, 3)]
    assert [h["lr"] for h in history] == pytest.approx(expected)
    assert history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)
    # a run that died during epoch 3 and is resumed ends on the same curve
    out = Path(cfg.output_dir)
    shutil.rmtree(out / "epoch-003")
    kept = (out / "history.jsonl").read_text().splitlines()[:2]
    (out / "history.jsonl").write_text("".join(line + "\n" for line in kept))
    train_cm(dataclasses.replace(cfg, resume=True), progress=lambda _: None)
    resumed = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in resumed] == [1, 2, 3]
    assert [h["lr"] for h in resumed] == pytest.approx(expected)

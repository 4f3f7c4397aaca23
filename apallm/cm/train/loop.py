"""The countermeasure training loop: ``apallm train cm --config configs/cm/<name>.yaml``.

manifest (JSON Lines with ``path`` and ``label``: bonafide | spoof) -> random ``crop_samples`` crops for
training (a shorter clip is repeated end to end first, as AASIST's ``pad_random``), optional codec and RawBoost
augmentation of the whole clip before cropping, the fixed evaluation crop (the first ``crop_samples`` samples,
:func:`apallm.cm.detector.fixed_crop`) for the evaluation set -> weighted cross-entropy -> Adam, or Adam inside
SAM / ASAM. After every epoch the evaluation EER (bona fide logit as the score) is measured and the output folder
gets:

- ``epoch-NNN/``: a package checkpoint (``model.safetensors`` + ``config.json``, loadable with
  :func:`apallm.cm.load_cm`) plus ``optimizer.safetensors`` (the optimizer's tensors, a flat
  safetensors file) and ``trainer_state.json``; only the last ``keep_last`` are kept;
- ``best/``: the checkpoint with the lowest evaluation EER so far;
- ``history.jsonl``: one line per epoch.

``resume: true`` continues from the newest ``epoch-NNN`` of the output folder. Every random draw of an
epoch (order, crops, augmentation, dropout) is seeded from ``(seed, epoch)``, so a resumed run repeats
the epochs an uninterrupted run would have made.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from apallm.cm.aasist import AASIST, BONAFIDE_INDEX, SPOOF_INDEX
from apallm.cm.checkpoint import load_cm, save_cm
from apallm.cm.train.bn import recalibrate_batch_norm
from apallm.cm.train.config import CMTrainConfig
from apallm.cm.train.data import CMDataset, class_weights_from_labels
from apallm.cm.train.model import build_model
from apallm.cm.train.optim import (
    OPTIMIZER_FILE,
    learning_rate,
    load_optimizer_state,
    make_optimizer,
    save_optimizer_state,
    train_step,
)
from apallm.config import config_to_dict
from apallm.datasets.manifest import read_labelled
from apallm.training.common import ensure_toy_data

log = logging.getLogger(__name__)


def evaluate(model: nn.Module, loader, device: torch.device) -> tuple[float, np.ndarray, np.ndarray]:
    """``(EER, bona fide logits, labels)`` of a fixed-crop loader."""
    from apallm.metrics import compute_eer

    model.eval()
    scores, labels = [], []
    with torch.inference_mode():
        for x, y in loader:
            scores.append(model(x.to(device))[:, BONAFIDE_INDEX].float().cpu().numpy())
            labels.append(np.asarray(y))
    scores, labels = np.concatenate(scores), np.concatenate(labels)
    bona, spoof = scores[labels == BONAFIDE_INDEX], scores[labels == SPOOF_INDEX]
    eer = compute_eer(bona, spoof)[0] if len(bona) and len(spoof) else float("nan")
    return float(eer), scores, labels


def _epoch_dirs(output_dir: Path) -> list[Path]:
    return sorted(p for p in output_dir.glob("epoch-[0-9][0-9][0-9]") if (p / "trainer_state.json").is_file())


def _name(cfg: CMTrainConfig) -> str:
    return cfg.model.name or Path(cfg.output_dir).name


def train_cm(cfg: CMTrainConfig, progress: Callable[[str], None] = print) -> Path:
    """Train a countermeasure as configured; returns the ``best/`` checkpoint folder."""
    ensure_toy_data(cfg.toy_data, [cfg.train_manifest, cfg.eval_manifest], targets=False)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.crop_samples)
    crop = int(model.config.nb_samp)
    if cfg.dropout is not None:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = float(cfg.dropout)
    train_rows = read_labelled(cfg.train_manifest)
    dev_rows = read_labelled(cfg.eval_manifest) if cfg.eval_manifest else train_rows
    if not cfg.eval_manifest:
        log.warning("no eval_manifest: the EER that picks the best epoch is measured on the training set")
    train_set = CMDataset(train_rows, crop, train=True, seed=cfg.seed, rawboost=cfg.rawboost, codec=cfg.codec,
                          cache=cfg.cache_audio)
    dev_set = CMDataset(dev_rows, crop, train=False, cache=cfg.cache_audio)
    if cfg.class_weights == "auto":
        weights = class_weights_from_labels(train_set.labels)
    elif cfg.class_weights is None:
        weights = None
    else:
        weights = torch.tensor([float(w) for w in cfg.class_weights], dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device))

    start_epoch, best_eer, best_epoch = 1, math.inf, None
    model.to(device)
    optimizer = make_optimizer(cfg, model)
    if cfg.resume and _epoch_dirs(output_dir):
        last = _epoch_dirs(output_dir)[-1]
        state = json.loads((last / "trainer_state.json").read_text(encoding="utf-8"))
        model.load_state_dict(load_cm(last).state_dict())
        model.to(device)
        load_optimizer_state(optimizer, last / OPTIMIZER_FILE)
        start_epoch, best_eer, best_epoch = state["epoch"] + 1, state["best_eer"], state["best_epoch"]
        best_eer = math.inf if best_eer is None else best_eer
        progress(f"resumed from {last} (epoch {state['epoch']}, best dev EER {best_eer:.4f})")

    if start_epoch == 1:
        (output_dir / "history.jsonl").unlink(missing_ok=True)
    eval_loader = torch.utils.data.DataLoader(dev_set, batch_size=cfg.eval_batch_size or cfg.batch_size,
                                              num_workers=cfg.num_workers)
    run_config = config_to_dict(cfg)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    for epoch in range(start_epoch, cfg.epochs + 1):
        began = time.perf_counter()
        torch.manual_seed(cfg.seed * 100_003 + epoch)
        train_set.set_epoch(epoch)
        order = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=False,
                                             generator=order, num_workers=cfg.num_workers)
        mask_rng = np.random.default_rng([cfg.seed, epoch, 1]) if cfg.freq_aug and isinstance(model, AASIST) \
            else None
        model.train()
        losses = []
        for i, (x, y) in enumerate(loader):
            lr = learning_rate(cfg, (epoch - 1) * steps_per_epoch + i, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            losses.append(train_step(model, optimizer, x.to(device), torch.as_tensor(y).to(device), loss_fn,
                                     mask_rng, cfg.grad_clip))
        if cfg.bn_recalibration:
            recalibrate_batch_norm(model, (x.to(device) for x, _ in loader))
        eer, _, _ = evaluate(model, eval_loader, device)
        improved = eer < best_eer
        if improved:
            best_eer, best_epoch = eer, epoch
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "lr": lr, "dev_eer": eer, "best_eer": best_eer,
                  "best_epoch": best_epoch, "seconds": round(time.perf_counter() - began, 3)}
        provenance = {"source": "apallm train cm", "epoch": epoch, "dev_eer": eer, "run_config": run_config}
        folder = save_cm(model, output_dir / f"epoch-{epoch:03d}", name=_name(cfg), provenance=provenance)
        save_optimizer_state(optimizer, folder / OPTIMIZER_FILE)
        (folder / "trainer_state.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if improved:
            save_cm(model, output_dir / "best", name=_name(cfg), provenance=provenance)
        with open(output_dir / "history.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        for old in _epoch_dirs(output_dir)[:-max(cfg.keep_last, 1)]:
            shutil.rmtree(old)
        progress(f"epoch {epoch}/{cfg.epochs}: loss {record['loss']:.4f}, dev EER {100 * eer:.2f} %"
                 f"{' (best)' if improved else ''}, {record['seconds']:.1f} s")
    return output_dir / "best"

"""Countermeasure training: ``apallm train cm --config configs/cm/<name>.yaml``.

manifest (JSON Lines with ``path`` and ``label``: bonafide | spoof) -> random ``crop_samples`` crops for
training (a shorter clip is repeated end to end first, as AASIST's ``pad_random``), optional RawBoost
augmentation of the whole clip before cropping, the fixed evaluation crop (the first ``crop_samples``
samples, :func:`apallm.cm.detector.fixed_crop`) for the dev set -> weighted cross-entropy -> Adam, or Adam
inside SAM / ASAM. After every epoch the dev EER (bona fide logit as the score) is measured and the
output folder gets:

- ``epoch-NNN/``: a package checkpoint (``model.safetensors`` + ``config.json``, loadable with
  :func:`apallm.cm.load_cm`) plus ``optimizer.safetensors`` (the optimizer's tensors, a flat
  safetensors file) and ``trainer_state.json``; only the last ``keep_last`` are kept;
- ``best/``: the checkpoint with the lowest dev EER so far;
- ``history.jsonl``: one line per epoch.

``resume: true`` continues from the newest ``epoch-NNN`` of the output folder. Every random draw of an
epoch (order, crops, augmentation, dropout) is seeded from ``(seed, epoch)``, so a resumed run repeats
the epochs an uninterrupted run would have made.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from apallm.cm.aasist import AASIST, BONAFIDE_INDEX, SPOOF_INDEX
from apallm.cm.checkpoint import PRESETS, build_cm, load_cm, save_cm
from apallm.cm.detector import fixed_crop
from apallm.datasets.manifest import read_labelled

log = logging.getLogger(__name__)

LABEL_INDEX = {"bonafide": BONAFIDE_INDEX, "spoof": SPOOF_INDEX}
OPTIMIZERS = ("adam", "sam", "asam")
LR_SCHEDULES = ("constant", "cosine")
OPTIMIZER_FILE = "optimizer.safetensors"


@dataclass
class CMTrainConfig:
    """A run, as read from ``configs/cm/<name>.yaml``.

    ``model``: ``{"architecture": AASIST | SSL-AASIST | WPT-SSL-AASIST, "preset": aasist | aasist-l
    (AASIST only), "model_config": {...} (overrides), "pretrained_ssl": hub id or folder (SSL models: the
    SSL configuration and weights come from it), "name": checkpoint name}``.
    ``class_weights``: ``[spoof, bonafide]`` weights of the cross-entropy, or ``"auto"`` (inverse class
    frequency of the training manifest, normalised to sum 1), or ``null`` (unweighted).
    ``optimizer``: ``adam``, ``sam`` (sharpness-aware minimisation, Foret et al. 2021) or ``asam``
    (adaptive SAM, Kwon et al. 2021) around Adam; ``sam_rho`` is the radius of the weight perturbation
    (``null``: 0.05 for SAM, 0.5 for ASAM, the values those papers recommend).
    ``lr_schedule``: ``constant`` or ``cosine``: per optimisation step, ``lr`` annealed to ``min_lr`` along a
    half cosine over the run (the published AASIST recipe: Adam at 1e-4 to 5e-6); ``warmup_steps`` first rise
    linearly from 0. The rate is a function of the step alone, so ``resume`` continues the same curve.
    ``rawboost``: null, or ``{"algorithm": 1..8, ...RawBoostConfig fields}``.
    ``codec``: null, or ``{"probability": p, "codecs": [...], "compression": [lo, hi]}``: with probability
    ``p`` a training clip (of either label) goes through a codec or telephone-channel round trip
    (:mod:`apallm.cm.codecs`) before RawBoost and cropping.
    ``crop_samples``: the crop length in samples; it becomes the model's ``nb_samp``, so the checkpoint
    is scored (:class:`apallm.cm.CMDetector`) on the same length it was trained on.
    ``dropout``: one probability for every dropout layer while training (``0.0`` switches dropout off:
    a tiny model on a tiny set learns faster and steadier without it); ``null`` keeps the model's own.
    ``bn_recalibration``: before each evaluation, replace the batch-norm running statistics by their
    plain average over the epoch's training crops (one forward pass, no gradient); worth it for short
    runs, where the moving average still remembers the first weights.
    ``toy_data``: ``{n, seed, ...}``: :func:`apallm.synth.make_toy_set` writes the training set (and the
    dev set, with ``seed + 1``) when the manifest is absent.
    """

    train_manifest: str
    output_dir: str
    model: dict = field(default_factory=lambda: {"architecture": "AASIST", "preset": "aasist-l"})
    dev_manifest: str | None = None
    epochs: int = 10
    batch_size: int = 24
    eval_batch_size: int | None = None
    lr: float = 1e-4
    lr_schedule: str = "constant"  # constant | cosine (per step, from lr down to min_lr)
    min_lr: float = 0.0
    warmup_steps: int = 0  # linear warm-up from 0 to lr over this many steps, before the schedule
    weight_decay: float = 1e-4
    betas: tuple = (0.9, 0.999)
    class_weights: str | list | None = "auto"
    optimizer: str = "adam"
    sam_rho: float | None = None
    rawboost: dict | None = None
    codec: dict | None = None
    freq_aug: bool = False  # AASIST only: the published frequency-band masking of the sinc filters
    crop_samples: int | None = None  # sets the model's nb_samp (training and scoring crop); None: 64600
    dropout: float | None = None  # override every dropout probability of the model; None: the model's own
    grad_clip: float | None = None  # largest L2 norm of a step's gradient; None: no clipping
    bn_recalibration: bool = False  # recompute batch-norm statistics on the training crops before each eval
    cache_audio: bool = True  # keep decoded clips in memory
    num_workers: int = 0
    threads: int | None = None
    keep_last: int = 2
    resume: bool = False
    seed: int = 0
    device: str = "cpu"
    toy_data: dict | None = None

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict | None = None) -> CMTrainConfig:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        data.update(overrides or {})
        return cls.from_dict(data, Path(path).resolve().parent)

    @classmethod
    def from_dict(cls, data: dict, base_dir: Path | None = None) -> CMTrainConfig:
        data = dict(data)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown CM training config keys: {', '.join(sorted(unknown))}")
        cfg = cls(**data)
        if cfg.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {cfg.optimizer!r}")
        if cfg.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {cfg.lr_schedule!r}")
        if not 0 <= cfg.min_lr <= cfg.lr or cfg.warmup_steps < 0:
            raise ValueError(f"need 0 <= min_lr <= lr and warmup_steps >= 0, got min_lr={cfg.min_lr}, lr={cfg.lr}, "
                             f"warmup_steps={cfg.warmup_steps}")
        if isinstance(cfg.class_weights, str) and cfg.class_weights != "auto":
            raise ValueError(f"class_weights must be 'auto', null or [spoof, bonafide], got {cfg.class_weights!r}")
        if base_dir is not None:  # a relative path that does not exist here may be relative to the config
            for key in ("train_manifest", "dev_manifest"):
                value = getattr(cfg, key)
                if value and not Path(value).is_absolute() and not Path(value).exists() \
                        and (base_dir / value).exists():
                    setattr(cfg, key, str(base_dir / value))
        return cfg


# ----------------------------------------------------------------------------------------------- data
def random_crop(waveform: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``num_samples`` window; a shorter clip is repeated end to end to that length first."""
    if len(waveform) == 0:
        raise ValueError("cannot crop an empty waveform")
    if len(waveform) <= num_samples:
        return fixed_crop(waveform, num_samples)
    start = int(rng.integers(0, len(waveform) - num_samples + 1))
    return waveform[start:start + num_samples]


class CMDataset(torch.utils.data.Dataset):
    """``(crop, label index)`` per manifest row. ``train=True``: random crops (and RawBoost), seeded from
    ``(seed, epoch, index)`` (see :meth:`set_epoch`); otherwise the fixed first-``num_samples`` crop."""

    def __init__(self, rows: list[dict], num_samples: int, *, train: bool, seed: int = 0,
                 rawboost: dict | None = None, codec: dict | None = None, cache: bool = True):
        self.rows, self.num_samples, self.train, self.seed = rows, num_samples, train, seed
        self.labels = [LABEL_INDEX[r["label"]] for r in rows]
        self.epoch = 0
        self.cache: dict[int, np.ndarray] | None = {} if cache else None
        self.codec_probability, self.codec_config = 0.0, None
        if codec:
            from apallm.cm.codecs import CodecConfig

            options = dict(codec)
            self.codec_probability = float(options.pop("probability", 0.5))
            if "codecs" in options:
                options["codecs"] = tuple(options["codecs"])
            if "compression" in options:
                options["compression"] = tuple(options["compression"])
            self.codec_config = CodecConfig(**options)
        self.rawboost_algorithm, self.rawboost_config = None, None
        if rawboost:
            from apallm.cm.rawboost import RawBoostConfig

            options = dict(rawboost)
            self.rawboost_algorithm = int(options.pop("algorithm"))
            self.rawboost_config = RawBoostConfig(**options)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def waveform(self, index: int) -> np.ndarray:
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        from apallm.audio import load_audio

        wave = load_audio(self.rows[index]["path"]).waveform.astype(np.float32)
        if self.cache is not None:
            self.cache[index] = wave
        return wave

    def __getitem__(self, index: int):
        wave = self.waveform(index)
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if self.codec_config is not None and rng.random() < self.codec_probability:
                from apallm.cm.codecs import random_round_trip

                wave, _ = random_round_trip(wave, rng, self.codec_config)
            if self.rawboost_algorithm:
                from apallm.cm.rawboost import rawboost

                wave = rawboost(wave, self.rawboost_algorithm, rng, self.rawboost_config)
            crop = random_crop(wave, self.num_samples, rng)
        else:
            crop = fixed_crop(wave, self.num_samples)
        return torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32)), self.labels[index]


def class_weights_from_labels(labels: list[int]) -> torch.Tensor:
    """``[spoof, bonafide]`` weights inversely proportional to the class counts, summing to 1 (a 9:1
    spoof-to-bona-fide set gives AASIST's ``[0.1, 0.9]``)."""
    counts = np.bincount(np.asarray(labels), minlength=2).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"the training set needs both classes, got counts spoof={counts[0]:.0f}, "
                         f"bonafide={counts[1]:.0f}")
    weights = 1.0 / counts
    return torch.tensor(weights / weights.sum(), dtype=torch.float32)


# ----------------------------------------------------------------------------------------------- SAM
class SAM:
    """Sharpness-aware minimisation (Foret et al., ICLR 2021) around a base optimizer; ``adaptive=True``
    gives ASAM (Kwon et al., ICML 2021).

    A step takes two gradients of the same batch. With the gradient ``g`` at the current weights ``w``,
    :meth:`perturb` moves the weights to the (first-order) worst point of a ball of radius ``rho``:
    ``w + e`` with ``e = rho * g / ||g||`` (ASAM: ``e = rho * w**2 * g / ||w * g||``, a ball measured
    relative to each weight's size, so ``rho`` is about 10 times larger). The caller then computes the
    gradient at ``w + e``; :meth:`unperturb_and_step` puts ``w`` back and lets the base optimizer step
    with that gradient. ``rho`` is the only new hyper-parameter: 0.05 is SAM's default, 0.5 ASAM's.
    One SAM step costs two forward/backward passes and one base step (the perturbation is a handful of
    vectorised tensor operations).
    """

    def __init__(self, base_optimizer: torch.optim.Optimizer, rho: float = 0.05, adaptive: bool = False):
        if rho <= 0:
            raise ValueError(f"rho must be positive, got {rho}")
        self.base_optimizer, self.rho, self.adaptive = base_optimizer, float(rho), adaptive
        self._perturbation: list[tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def param_groups(self):
        return self.base_optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def perturb(self) -> None:
        """``w += e`` from the current gradient; the gradient is then cleared."""
        if self._perturbation:
            raise RuntimeError("SAM.perturb called twice without unperturb_and_step")
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            return
        grads = [p.grad * p.abs() if self.adaptive else p.grad for p in params]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        scale = self.rho / (norm + 1e-12)
        for p, g in zip(params, grads, strict=True):
            e = g * p.abs() * scale if self.adaptive else g * scale
            p.add_(e)
            self._perturbation.append((p, e))
        self.zero_grad()

    @torch.no_grad()
    def unperturb_and_step(self) -> None:
        """``w -= e``, then the base optimizer's step with the gradient taken at ``w + e``."""
        for p, e in self._perturbation:
            p.sub_(e)
        self._perturbation.clear()
        self.base_optimizer.step()

    def state_dict(self) -> dict:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.base_optimizer.load_state_dict(state_dict)


@contextlib.contextmanager
def frozen_batch_norm_statistics(model: nn.Module):
    """Batch-norm layers keep their running statistics inside the block (they still normalise with the
    batch statistics): SAM's second forward pass at perturbed weights must not update them again."""
    saved = []
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            saved.append((module, module.momentum, module.num_batches_tracked.clone()))
            module.momentum = 0.0
    try:
        yield
    finally:
        for module, momentum, tracked in saved:
            module.momentum = momentum
            module.num_batches_tracked.copy_(tracked)


def learning_rate(cfg: CMTrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimisation step ``step`` (0-based) of ``total_steps`` (see ``lr_schedule``)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    span = max(total_steps - cfg.warmup_steps - 1, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def make_optimizer(cfg: CMTrainConfig, model: nn.Module) -> torch.optim.Optimizer | SAM:
    params = [p for p in model.parameters() if p.requires_grad]
    adam = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas))
    if cfg.optimizer == "adam":
        return adam
    adaptive = cfg.optimizer == "asam"
    rho = cfg.sam_rho if cfg.sam_rho is not None else (0.5 if adaptive else 0.05)
    return SAM(adam, rho=rho, adaptive=adaptive)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer | SAM, x: torch.Tensor, y: torch.Tensor,
               loss_fn: Callable, freq_mask_rng: np.random.Generator | None = None,
               grad_clip: float | None = None) -> float:
    """One optimisation step on a batch (two forward/backward passes with SAM); returns the loss before
    the step. ``grad_clip``: the largest L2 norm of the gradient the step uses (``None``: no clipping).
    With SAM the second pass reuses the first pass's dropout masks and frequency mask, so both gradients
    belong to the same function of the weights."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    mask_state = freq_mask_rng.bit_generator.state if freq_mask_rng is not None else None
    rng_state = torch.get_rng_state()

    def forward_backward() -> torch.Tensor:
        kwargs = {"freq_mask_rng": freq_mask_rng} if freq_mask_rng is not None else {}
        loss = loss_fn(model(x, **kwargs), y)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        return loss

    optimizer.zero_grad()
    loss = forward_backward()
    if isinstance(optimizer, SAM):
        optimizer.perturb()
        after_state = torch.get_rng_state()
        torch.set_rng_state(rng_state)
        if freq_mask_rng is not None:
            freq_mask_rng.bit_generator.state = mask_state
        with frozen_batch_norm_statistics(model):
            forward_backward()
        torch.set_rng_state(after_state)
        optimizer.unperturb_and_step()
    else:
        optimizer.step()
    return float(loss.detach())


def save_optimizer_state(optimizer: torch.optim.Optimizer | SAM, path: Path) -> None:
    """The optimizer's per-parameter tensors (Adam's step, exp_avg, exp_avg_sq) as a flat safetensors
    file ``state.<parameter index>.<name>``; the hyper-parameters come from the config on resume."""
    from safetensors.torch import save_file

    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            value = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
    save_file(tensors, path)


def load_optimizer_state(optimizer: torch.optim.Optimizer | SAM, path: Path) -> None:
    """Read back :func:`save_optimizer_state` into ``optimizer`` (built from the same config)."""
    from safetensors.torch import load_file

    state: dict[int, dict] = {}
    for key, tensor in load_file(path).items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = tensor
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, batches) -> None:
    """Recompute the running mean and variance of every batch-norm layer as the plain average over
    ``batches`` (dropout off), replacing the exponential moving average of training: after few steps
    that average still remembers the first, very different weights, and an eval-mode model scores
    with statistics that no longer fit it."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return
    was_training = model.training
    saved = [(m, m.momentum) for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
        m.train()
    try:
        for x in batches:
            model(x)
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.train(was_training)


# ----------------------------------------------------------------------------------------------- model
def build_model(spec: dict, crop_samples: int | None = None) -> nn.Module:
    """The model of the config's ``model`` section (fresh, or with pretrained SSL weights);
    ``crop_samples`` overrides its ``nb_samp``."""
    spec = dict(spec)
    architecture = spec.pop("architecture", "AASIST")
    preset = spec.pop("preset", None)
    overrides = dict(spec.pop("model_config", None) or {})
    pretrained = spec.pop("pretrained_ssl", None)
    spec.pop("name", None)
    if crop_samples:
        overrides["nb_samp"] = int(crop_samples)
    if spec:
        raise ValueError(f"unknown keys in the model section: {', '.join(sorted(spec))}")
    if architecture == "AASIST":
        base = PRESETS[preset][1].to_dict() if preset else {}
        return build_cm("AASIST", {**base, **overrides})
    if preset:
        raise ValueError(f"'preset' is for AASIST; {architecture} takes model_config")
    if architecture in ("SSL-AASIST", "WPT-SSL-AASIST"):
        from apallm.cm.ssl import SSLAASIST, build_ssl_aasist

        model_class = SSLAASIST
        if architecture == "WPT-SSL-AASIST":
            from apallm.cm.wpt import WPTSSLAASIST as model_class
        return build_ssl_aasist(pretrained, model_class=model_class, **overrides)
    return build_cm(architecture, overrides)


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


def ensure_toy_data(cfg: CMTrainConfig) -> None:
    """Write apallm.synth's two-class toy set for a missing train (and dev) manifest when ``toy_data``."""
    if cfg.toy_data is None:
        return
    from apallm.synth import make_toy_set

    options = {"targets": False, **cfg.toy_data}
    for manifest, offset in ((cfg.train_manifest, 0), (cfg.dev_manifest, 1)):
        if manifest and not Path(manifest).exists():
            made = make_toy_set(Path(manifest).parent, **{**options, "seed": options.get("seed", 0) + offset})
            if made != Path(manifest):
                made.rename(manifest)
            log.info("generated toy data: %s", manifest)


def _epoch_dirs(output_dir: Path) -> list[Path]:
    return sorted(p for p in output_dir.glob("epoch-[0-9][0-9][0-9]") if (p / "trainer_state.json").is_file())


def _name(cfg: CMTrainConfig) -> str:
    return cfg.model.get("name") or Path(cfg.output_dir).name


def train_cm(cfg: CMTrainConfig, progress: Callable[[str], None] = print) -> Path:
    """Train a countermeasure as configured; returns the ``best/`` checkpoint folder."""
    ensure_toy_data(cfg)
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
    dev_rows = read_labelled(cfg.dev_manifest) if cfg.dev_manifest else train_rows
    if not cfg.dev_manifest:
        log.warning("no dev_manifest: the EER that picks the best epoch is measured on the training set")
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
    run_config = _jsonable(cfg)
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


def _jsonable(cfg: CMTrainConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg), default=str))

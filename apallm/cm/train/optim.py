"""Optimisation of the countermeasure recipe: Adam, or Adam inside SAM / ASAM; the learning-rate schedule; one
training step; the optimizer's state as safetensors (for resume)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from apallm.cm.train.bn import frozen_batch_norm_statistics
from apallm.cm.train.config import CMTrainConfig

OPTIMIZER_FILE = "optimizer.safetensors"


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

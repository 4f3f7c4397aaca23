"""Batch-norm statistics in countermeasure training: kept still during SAM's second pass, recomputed before an
evaluation."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


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

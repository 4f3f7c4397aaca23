"""The training loss over the answer alone, with the output layer run only where that loss is.

An ALLM's prompt holds hundreds of audio and image placeholders and the answer a few tokens, yet a causal LM's
forward projects every position onto its vocabulary (49 k to 152 k wide): for a label-only answer that matmul,
and the cross-entropy over it, are most of the cost beyond the decoder itself. Prompts are left-padded
(:class:`apallm.allm.base.ALLMDetector`), so every row's answer ends the batch: a pre-hook on the output
embeddings hands the output layer only the last positions, those that predict a labelled token. The loss equals
the model's own (next-token cross-entropy over the labelled tokens, the mean, or the sum over
``num_items_in_batch`` as transformers computes it under gradient accumulation).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from transformers import Trainer

from apallm.allm.base import IGNORE_INDEX


def answer_width(labels: torch.Tensor) -> int:
    """How many final columns of ``labels`` (batch, length) hold every labelled token of the batch (a label in the
    first column predicts nothing and is left out, as the model's own loss leaves it)."""
    columns = (labels != IGNORE_INDEX).any(0).nonzero()
    if len(columns) == 0:
        raise ValueError("no token of the batch carries loss: every label is ignored")
    return min(labels.shape[1] - int(columns[0]), labels.shape[1] - 1)


@contextlib.contextmanager
def last_logits_only(model, width: int):
    """Within it, ``model``'s output layer sees only the hidden states that predict the last ``width`` input tokens
    (``model`` unwrapped from DeepSpeed / accelerate; a PEFT model is fine)."""
    head = model.get_output_embeddings()

    def keep(module, args):
        return (args[0][:, -(width + 1):-1], *args[1:])

    handle = head.register_forward_pre_hook(keep)
    try:
        yield
    finally:
        handle.remove()


def answer_loss(model, inputs: dict, labels: torch.Tensor, num_items_in_batch=None, unwrapped=None):
    """``(loss, outputs)``: the next-token cross-entropy of the labelled tokens of ``labels`` for ``inputs``
    (without labels), the logits computed only for the positions that predict them (``outputs.logits`` holds
    those). ``unwrapped``: the model whose output embeddings are hooked, when ``model`` is a DeepSpeed engine."""
    width = answer_width(labels)
    with last_logits_only(unwrapped if unwrapped is not None else model, width):
        outputs = model(**inputs, use_cache=False)
    logits = outputs.logits
    if logits.shape[1] == labels.shape[1]:  # a forward that does not go through its output embeddings
        logits = logits[:, -(width + 1):-1]
    elif logits.shape[1] != width:
        raise RuntimeError(f"expected logits for the last {width} positions, got {logits.shape[1]}")
    target = labels[:, -width:].to(logits.device)
    loss = F.cross_entropy(logits.float().flatten(0, 1), target.flatten(), ignore_index=IGNORE_INDEX,
                           reduction="sum")
    if num_items_in_batch is None:
        loss = loss / (target != IGNORE_INDEX).sum()
    else:
        loss = loss / torch.as_tensor(num_items_in_batch, device=loss.device)
    return loss, outputs


class AnswerLossTrainer(Trainer):
    """A transformers ``Trainer`` whose loss is :func:`answer_loss`: the value ``Trainer.compute_loss`` would return
    (the mean over the batch's labelled tokens, or their sum over ``num_items_in_batch`` for a model that accepts
    loss kwargs), without the output layer over the prompt."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "labels" not in inputs or self.label_smoother is not None or self.compute_loss_func is not None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        items = num_items_in_batch if self.model_accepts_loss_kwargs else None
        loss, outputs = answer_loss(model, inputs, labels, items, unwrapped=self.accelerator.unwrap_model(model))
        if self.args.average_tokens_across_devices and items is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())  # the count spans every process
        return (loss, outputs) if return_outputs else loss

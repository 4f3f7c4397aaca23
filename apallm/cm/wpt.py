"""Wavelet prompt tuning (WPT) of a frozen SSL encoder, with the AASIST back-end.

Xie, Fu, Wang, Wang, Cao, Ma, Cheng and Ye, "Detect All-Type Deepfake Audio: Wavelet Prompt Tuning for
Enhanced Auditory Perception" (arXiv 2504.06753, 2025). An independent implementation of the idea as the
paper describes it (prompt-tuned SSL, "PT-SSL", and its wavelet variant, "WPT-SSL"):

- the SSL encoder (:class:`apallm.cm.ssl.SSLAASIST`'s ``ssl_model``) is frozen: no gradient, kept in eval
  mode (no dropout) even while the rest of the model trains;
- deep prompt tuning: before every transformer layer ``i``, ``prompt_tokens`` learnable tokens of the
  encoder's hidden size are put in front of the frame sequence (before the first layer they are
  prepended; before the others they replace the previous layer's outputs at the prompt positions, as in
  deep visual prompt tuning), so every layer attends to prompts of its own;
- wavelet prompts: a further ``wavelet_tokens`` learnable tokens per layer pass through a one-level
  orthonormal Haar discrete wavelet transform along the token axis, ``low = (p[2k] + p[2k+1]) / sqrt(2)``,
  ``high = (p[2k] - p[2k+1]) / sqrt(2)``, and the low band then the high band are prepended with the plain
  prompts. The transform has no parameters of its own, so WPT trains as many parameters as plain
  prompt tuning with the same number of tokens;
- the prompt positions are dropped from the encoder output, and the back-end (projection, optional
  layer weights, AASIST graph back-end) trains with the prompts.

:func:`trainable_parameter_ratio` compares the trainable parameters with full fine-tuning of the same
SSL + AASIST model (every parameter but the prompts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from apallm.cm.ssl import SSLAASIST, SSLAASISTConfig


@dataclass(frozen=True)
class WPTConfig(SSLAASISTConfig):
    """:class:`~apallm.cm.ssl.SSLAASISTConfig` plus the prompts.

    Attributes:
        prompt_tokens: plain learnable prompt tokens per transformer layer (0 for WPT only).
        wavelet_tokens: wavelet prompt tokens per transformer layer (even; 0 gives plain prompt tuning).
    """

    prompt_tokens: int = 6
    wavelet_tokens: int = 4

    architecture = "WPT-SSL-AASIST"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prompt_tokens < 0 or self.wavelet_tokens < 0 or self.prompt_tokens + self.wavelet_tokens == 0:
            raise ValueError("prompt_tokens and wavelet_tokens must be >= 0, and not both 0")
        if self.wavelet_tokens % 2:
            raise ValueError(f"wavelet_tokens must be even (Haar pairs), got {self.wavelet_tokens}")

    @classmethod
    def from_dict(cls, model_config: dict) -> WPTConfig:
        return cls(**cls._check_keys(model_config))


def haar_dwt(prompts: Tensor) -> tuple[Tensor, Tensor]:
    """One-level orthonormal Haar DWT along axis -2 (tokens) of ``(..., 2n, D)``: ``(low, high)``, each
    ``(..., n, D)``."""
    even, odd = prompts[..., 0::2, :], prompts[..., 1::2, :]
    return (even + odd) / math.sqrt(2.0), (even - odd) / math.sqrt(2.0)


class WPTSSLAASIST(SSLAASIST):
    """SSL + AASIST with a frozen SSL encoder, deep prompts and wavelet prompts (see the module docstring)."""

    architecture = "WPT-SSL-AASIST"

    def __init__(self, config: WPTConfig | None = None):
        config = config or WPTConfig()
        super().__init__(config)
        layers = self.ssl_model.encoder.layers
        hidden = self.ssl_model.config.hidden_size
        self.ssl_model.config.layerdrop = 0.0  # a skipped first layer would lose the prompts
        self.prompts = nn.Parameter(torch.empty(len(layers), config.prompt_tokens, hidden))
        self.wavelet_prompts = nn.Parameter(torch.empty(len(layers), config.wavelet_tokens, hidden))
        for p in (self.prompts, self.wavelet_prompts):
            if p.numel():
                bound = math.sqrt(6.0 / (p.shape[1] + hidden))  # Xavier uniform, as deep prompt tuning does
                nn.init.uniform_(p, -bound, bound)
        self.n_prompt = config.prompt_tokens + config.wavelet_tokens
        for param in self.ssl_model.parameters():
            param.requires_grad_(False)
        self.ssl_model.eval()
        for index, layer in enumerate(layers):
            layer.register_forward_pre_hook(self._prompt_hook(index), with_kwargs=True)

    def layer_prompts(self, index: int) -> Tensor:
        """The ``(n_prompt, hidden)`` tokens put before transformer layer ``index``."""
        low, high = haar_dwt(self.wavelet_prompts[index])
        return torch.cat([self.prompts[index], low, high], dim=0)

    def _prompt_hook(self, index: int):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            prompts = self.layer_prompts(index).to(hidden.dtype).unsqueeze(0).expand(hidden.shape[0], -1, -1)
            hidden = torch.cat([prompts, hidden if index == 0 else hidden[:, self.n_prompt:]], dim=1)
            if args:
                return (hidden, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": hidden}

        return hook

    def train(self, mode: bool = True) -> WPTSSLAASIST:
        super().train(mode)
        self.ssl_model.eval()  # frozen: no dropout in the encoder
        return self

    def ssl_features(self, waveform: Tensor) -> Tensor:
        frames = int(self.ssl_model._get_feat_extract_output_lengths(waveform.shape[1]))
        layer = self.config.layer
        if layer == "last":
            return self._strip(self.ssl_model(waveform).last_hidden_state, frames)
        states = [self._strip(s, frames) for s in self.ssl_model(waveform, output_hidden_states=True).hidden_states]
        if layer == "weighted":
            return torch.einsum("l,lbtd->btd", torch.softmax(self.layer_weights, dim=0), torch.stack(states))
        return states[layer]

    def _strip(self, state: Tensor, frames: int) -> Tensor:
        if state.shape[1] == frames + self.n_prompt:
            return state[:, self.n_prompt:]
        if state.shape[1] != frames:
            raise RuntimeError(f"unexpected SSL state length {state.shape[1]} (frames {frames}, prompts "
                               f"{self.n_prompt})")
        return state


WPTSSLAASIST.config_class = WPTConfig


def trainable_parameter_ratio(model: nn.Module) -> dict:
    """Trainable parameters against full fine-tuning of the same model.

    Returns ``{"trainable", "full_finetune", "ratio", "fewer_x"}``: ``full_finetune`` counts every
    parameter except the prompts (what fine-tuning the SSL encoder and back-end without prompts trains),
    ``ratio = trainable / full_finetune`` and ``fewer_x = full_finetune / trainable``.
    """
    prompt_ids = {id(getattr(model, name)) for name in ("prompts", "wavelet_prompts") if hasattr(model, name)}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    full = sum(p.numel() for p in model.parameters() if id(p) not in prompt_ids)
    return {"trainable": trainable, "full_finetune": full, "ratio": trainable / full,
            "fewer_x": full / trainable if trainable else float("inf")}


def _register() -> None:
    from apallm.cm.checkpoint import ARCHITECTURES

    ARCHITECTURES.setdefault(WPTSSLAASIST.architecture, (WPTConfig, WPTSSLAASIST))


_register()

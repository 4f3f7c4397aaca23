"""Qwen2-Audio: hears the audio natively; sees the spectrogram as *spectrogram tokens*.

Qwen2-Audio has no vision tower, so the structured spectrogram image is cut into 28 x 28 px patches and a
small trainable projector (patch -> MLP -> the LLM's hidden size, plus learned row and column embeddings)
turns each patch into one token embedding. The prompt carries one ``<|SPEC|>`` placeholder per patch; an
embedding wrapper writes the projected patches into those positions, so the rest of the model is untouched
and its own audio path (``<|AUDIO|>`` expanded by the processor) works as published.

The projector trains with the LoRA adapter and is saved beside it as ``projector.safetensors``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .base import ALLMDetector, Sample

SPEC_TOKEN = "<|SPEC|>"
PATCH = 28
PROJECTOR_FILE = "projector.safetensors"


class SpectrogramProjector(nn.Module):
    """RGB patches of the spectrogram image -> token embeddings of the LLM's hidden size."""

    def __init__(self, hidden_size: int, patch: int = PATCH, max_grid: int = 64):
        super().__init__()
        self.patch = patch
        self.proj = nn.Sequential(nn.Linear(3 * patch * patch, hidden_size), nn.GELU(),
                                  nn.Linear(hidden_size, hidden_size))
        self.row = nn.Embedding(max_grid, hidden_size)
        self.col = nn.Embedding(max_grid, hidden_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: (batch, 3, H, W) in [-1, 1] -> (batch, H/patch * W/patch, hidden), row-major patches."""
        b, c, h, w = pixels.shape
        p = self.patch
        gh, gw = h // p, w // p
        patches = pixels.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c * p * p)
        rows = torch.arange(gh, device=pixels.device).repeat_interleave(gw)
        cols = torch.arange(gw, device=pixels.device).repeat(gh)
        return self.proj(patches) + self.row(rows) + self.col(cols)


class SpectrogramTokenEmbedding(nn.Module):
    """The LLM's token embedding, with ``<|SPEC|>`` positions overwritten by projected spectrogram patches.

    The patches of the current batch are handed over in :attr:`pending` (by a forward pre-hook on the model,
    or directly before generation); they are used on the first call that meets the placeholders."""

    def __init__(self, embed_tokens: nn.Embedding, projector: SpectrogramProjector, spec_token_id: int):
        super().__init__()
        self.embed_tokens = embed_tokens
        self.projector = projector
        self.spec_token_id = spec_token_id
        self.pending: torch.Tensor | None = None

    @property
    def weight(self):  # generation utilities and resize_token_embeddings look for it
        return self.embed_tokens.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        embeds = self.embed_tokens(input_ids)
        mask = input_ids == self.spec_token_id
        if not mask.any():
            return embeds
        if self.pending is None:
            raise ValueError("the prompt has spectrogram placeholders but no spectrogram pixels were given")
        pixels, self.pending = self.pending, None
        tokens = self.projector(pixels.to(embeds.device, self.projector.proj[0].weight.dtype))
        if tokens.shape[0] * tokens.shape[1] != int(mask.sum()):
            raise ValueError(f"spectrogram tokens ({tokens.shape[0]} x {tokens.shape[1]}) and placeholders "
                             f"({int(mask.sum())}) do not match")
        return embeds.masked_scatter(mask.unsqueeze(-1), tokens.to(embeds.dtype).reshape(-1, embeds.shape[-1]))


def install_projector(model, spec_token_id: int, grid: int = 64) -> SpectrogramTokenEmbedding:
    """Wrap the model's token embedding with a spectrogram projector (idempotent) and route the
    ``spectrogram_pixels`` keyword of forward calls into it."""
    current = model.get_input_embeddings()
    if isinstance(current, SpectrogramTokenEmbedding):
        return current
    if spec_token_id >= current.weight.shape[0]:
        model.resize_token_embeddings(spec_token_id + 1)
        current = model.get_input_embeddings()
    hidden = current.weight.shape[1]
    with torch.random.fork_rng(devices=[]):  # the same untrained projector on every load, until trained
        torch.manual_seed(0)
        projector = SpectrogramProjector(hidden, max_grid=grid)
    projector = projector.to(current.weight.device, current.weight.dtype)
    wrapper = SpectrogramTokenEmbedding(current, projector, spec_token_id)
    model.set_input_embeddings(wrapper)

    def take_pixels(module, args, kwargs):
        pixels = kwargs.pop("spectrogram_pixels", None)
        if pixels is not None:
            wrapper.pending = pixels
        return args, kwargs

    model.register_forward_pre_hook(take_pixels, with_kwargs=True)
    return wrapper


def image_to_pixels(image) -> torch.Tensor:
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


class Qwen2AudioDetector(ALLMDetector):
    family = "qwen2_audio"
    model_types = ("qwen2_audio",)
    reusable_inputs = False  # the spectrogram pixels go to the embedding aside, once per encode

    def __init__(self, model, processor, **kwargs):
        self.projector_module = _find_injector(model)
        if self.projector_module is None:
            raise ValueError("load Qwen2-Audio through load_allm: the spectrogram projector is not installed")
        super().__init__(model, processor, **kwargs)

    @classmethod
    def prepare_model(cls, model, processor):
        tok = processor.tokenizer
        if SPEC_TOKEN not in tok.get_vocab():
            tok.add_tokens([SPEC_TOKEN], special_tokens=True)
        install_projector(model, tok.convert_tokens_to_ids(SPEC_TOKEN))
        return model

    model_class = "Qwen2AudioForConditionalGeneration"
    processor_class = "Qwen2AudioProcessor"

    def conversation(self, sample: Sample, answer: str | None = None,
                     history: Sequence[tuple[str | None, str | None]] = ()) -> list[dict]:
        text = sample.text
        if sample.image is not None:
            w, h = sample.image.size
            text = SPEC_TOKEN * ((h // PATCH) * (w // PATCH)) + "\n" + text
        content = [{"type": "audio", "audio_url": "clip"}, {"type": "text", "text": text}]
        conv = [{"role": "system", "content": self.prompts["system"]}, {"role": "user", "content": content}]
        return self.with_turns(conv, history, answer)

    def model_inputs(self, texts: list[str], samples: list[Sample]):
        images = self.batch_images(samples)
        batch = self.processor(text=texts, audio=[s.clip.waveform for s in samples], sampling_rate=16000,
                               return_tensors="pt", padding=True)
        batch.pop("num_audio_tokens", None)
        if images:
            batch["spectrogram_pixels"] = torch.stack([image_to_pixels(im) for im in images])
        return batch

    def encode(self, samples, texts=None):
        batch = super().encode(samples, texts)
        # generation calls forward without our keyword: hand the pixels to the embedding directly
        pixels = batch.pop("spectrogram_pixels", None)
        if pixels is not None:
            self.projector_module.pending = pixels
        return batch

    def save_extra(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.projector_state().items()}
        save_file(state, str(Path(directory) / PROJECTOR_FILE))

    def projector_state(self) -> dict:
        return _unwrapped_projector(self.projector_module).state_dict()

    @classmethod
    def load_extra(cls, model, directory: str | Path) -> None:
        from safetensors.torch import load_file

        path = Path(directory) / PROJECTOR_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{directory} has no {PROJECTOR_FILE}: the spectrogram projector is missing")
        injector = _find_injector(model)
        _unwrapped_projector(injector).load_state_dict(load_file(str(path)))

    @staticmethod
    @contextlib.contextmanager
    def published_layout(model):
        """For saving: the published token embedding back in place for a moment (the projector is saved
        apart), so the checkpoint loads into the plain Qwen2-Audio class."""
        injector = _find_injector(model)
        if injector is None:
            yield model
            return
        target = model.get_base_model() if hasattr(model, "get_base_model") else model
        target.set_input_embeddings(injector.embed_tokens)
        try:
            yield model
        finally:
            target.set_input_embeddings(injector)

    @staticmethod
    def trainable_extra(model) -> list[nn.Parameter]:
        return list(_unwrapped_projector(_find_injector(model)).parameters())


def _find_injector(model) -> SpectrogramTokenEmbedding | None:
    for module in model.modules():
        if isinstance(module, SpectrogramTokenEmbedding):
            return module
    return None


def _unwrapped_projector(injector: SpectrogramTokenEmbedding) -> SpectrogramProjector:
    return injector.projector

"""Qwen2-Audio: hears the audio natively; sees the spectrogram as *spectrogram tokens*.

Qwen2-Audio has no vision tower, so the structured spectrogram image is cut into 28 x 28 px patches and a
small trainable projector (patch -> MLP -> the LLM's hidden size, plus learned row and column embeddings)
turns each patch into one token embedding. The prompt carries one ``<|SPEC|>`` placeholder per patch.

The pixels are an argument of the model's forward (``spectrogram_pixels=``, given by :meth:`model_inputs`, so
``model(**batch)`` and ``model.generate(**batch)`` both take them): for the duration of that one call the
projected patches are written over the token embeddings at the ``<|SPEC|>`` positions, and nothing of them is
kept after it. The rest of the model is untouched and its own audio path (``<|AUDIO|>`` expanded by the
processor) works as published. (Qwen2-Audio merges its audio features only when it embeds the tokens itself, so
the spectrogram tokens join at the token embedding rather than as ``inputs_embeds``.)

The projector trains with the LoRA adapter and is saved beside it as ``projector.safetensors``.
"""

from __future__ import annotations

import contextlib
import inspect
import types
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .base import ALLMDetector, Sample
from .spectrogram_tokens import PATCH, SpectrogramProjector, image_to_pixels

__all__ = ["PATCH", "PROJECTOR_FILE", "SPEC_TOKEN", "Qwen2AudioDetector", "SpectrogramProjector",
           "image_to_pixels", "install_projector"]

SPEC_TOKEN = "<|SPEC|>"
PROJECTOR_FILE = "projector.safetensors"
PROJECTOR_NAME = "spectrogram_projector"


def install_projector(model, spec_token_id: int, grid: int = 64) -> SpectrogramProjector:
    """Add a spectrogram projector to the model (idempotent; seeded, so the same untrained projector on every
    load) and give the model's forward the ``spectrogram_pixels`` argument."""
    if isinstance(getattr(model, PROJECTOR_NAME, None), SpectrogramProjector):
        return getattr(model, PROJECTOR_NAME)
    embedding = model.get_input_embeddings()
    if spec_token_id >= embedding.weight.shape[0]:
        model.resize_token_embeddings(spec_token_id + 1)
        embedding = model.get_input_embeddings()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        projector = SpectrogramProjector(embedding.weight.shape[1], max_grid=grid)
    projector.spec_token_id = spec_token_id
    model.add_module(PROJECTOR_NAME, projector.to(embedding.weight.device, embedding.weight.dtype))

    def forward(self, *args, spectrogram_pixels=None, **kwargs):
        return _forward_with_spectrogram(self, *args, spectrogram_pixels=spectrogram_pixels, **kwargs)

    # generate() checks its keyword arguments against the forward signature: the published one plus ours
    published = inspect.signature(type(model).forward)
    params = [p for p in published.parameters.values() if p.kind is not p.VAR_KEYWORD]
    params.append(inspect.Parameter("spectrogram_pixels", inspect.Parameter.KEYWORD_ONLY, default=None))
    params += [p for p in published.parameters.values() if p.kind is p.VAR_KEYWORD]
    forward.__signature__ = published.replace(parameters=params)
    model.forward = types.MethodType(forward, model)
    return projector


def _forward_with_spectrogram(self, *args, spectrogram_pixels: torch.Tensor | None = None, **kwargs):
    """The model's own forward; with ``spectrogram_pixels`` (batch, 3, H, W), the projected patches replace
    the token embeddings at the ``<|SPEC|>`` positions of this call's input ids (row-major, image by image)."""
    projector: SpectrogramProjector = getattr(self, PROJECTOR_NAME)
    if spectrogram_pixels is None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and bool((ids == projector.spec_token_id).any()):
            raise ValueError("the prompt has spectrogram placeholders but no spectrogram pixels were given")
        return type(self).forward(self, *args, **kwargs)

    def write_tokens(module, inputs, embeds):
        mask = inputs[0] == projector.spec_token_id
        if not mask.any():  # a generation step after the prompt
            return embeds
        tokens = projector(spectrogram_pixels.to(embeds.device, projector.proj[0].weight.dtype))
        if tokens.shape[0] * tokens.shape[1] != int(mask.sum()):
            raise ValueError(f"spectrogram tokens ({tokens.shape[0]} x {tokens.shape[1]}) and placeholders "
                             f"({int(mask.sum())}) do not match")
        return embeds.masked_scatter(mask.unsqueeze(-1), tokens.to(embeds.dtype).reshape(-1, embeds.shape[-1]))

    handle = self.get_input_embeddings().register_forward_hook(write_tokens)
    try:
        return type(self).forward(self, *args, **kwargs)
    finally:
        handle.remove()


class Qwen2AudioDetector(ALLMDetector):
    family = "qwen2_audio"
    model_types = ("qwen2_audio",)

    def __init__(self, model, processor, **kwargs):
        if _find_projector(model) is None:
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

    def save_extra(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.projector_state().items()}
        save_file(state, str(Path(directory) / PROJECTOR_FILE))

    def projector_state(self) -> dict:
        return _find_projector(self.model).state_dict()

    @classmethod
    def load_extra(cls, model, directory: str | Path) -> None:
        from safetensors.torch import load_file

        path = Path(directory) / PROJECTOR_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{directory} has no {PROJECTOR_FILE}: the spectrogram projector is missing")
        _find_projector(model).load_state_dict(load_file(str(path)))

    @staticmethod
    @contextlib.contextmanager
    def published_layout(model):
        """For saving: the projector set aside for a moment (it is saved apart), so the checkpoint holds the
        published Qwen2-Audio weights only and loads into the plain class."""
        target = model.get_base_model() if hasattr(model, "get_base_model") else model
        projector = target._modules.pop(PROJECTOR_NAME, None)
        try:
            yield model
        finally:
            if projector is not None:
                target.add_module(PROJECTOR_NAME, projector)

    @staticmethod
    def trainable_extra(model) -> list[nn.Parameter]:
        return list(_find_projector(model).parameters())


def _find_projector(model) -> SpectrogramProjector | None:
    for module in model.modules():
        if isinstance(module, SpectrogramProjector):
            return module
    return None

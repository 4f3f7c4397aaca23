"""Supervised fine-tuning of an ALLM detector: manifest -> dataset -> the family's collator (assistant-only
loss) -> transformers Trainer with PEFT (LoRA / DoRA, QLoRA on GPU) and optional DeepSpeed ZeRO-2/3.

The output folder holds everything ``load_allm(adapter=DIR)`` needs: ``adapter/`` (PEFT, safetensors),
``processor/``, ``apallm.json`` (family, base model, prompt options, spectrogram settings) and, for built-in
tiny models that no hub can give back, ``base/``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import soundfile as sf
import torch
import yaml

from apallm.allm import PromptOptions, default_target, load_allm
from apallm.allm.registry import TINY_MODELS
from apallm.audio import load_audio, split_windows
from apallm.datasets.manifest import read_labelled
from apallm.evidence import EvidenceConfig, SpectrogramConfig

log = logging.getLogger(__name__)

@dataclass
class PeftSettings:
    method: str = "lora"  # lora | dora
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] | None = None  # None: the family's LM-only regex
    train_audio_tower: bool = False
    train_vision_tower: bool = False
    train_projector: bool = True  # the spectrogram projector of audio-only families (Qwen2-Audio)
    modules_to_save: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class RunConfig:
    """What the transformers-Trainer recipes (SFT, GRPO) share: the fields below and YAML loading. An unknown key
    is an error naming the recipe; a relative path under one of ``PATH_KEYS`` that does not exist from the working
    directory is taken relative to the config file's folder when it exists there."""

    KIND = "run"
    PATH_KEYS = ()

    deepspeed: str | None = None  # path to a DeepSpeed JSON (configs/deepspeed/zero2.json, zero3.json)
    window_policy: str = "first"  # which 30 s window of a long clip trains: first | center | random
    training: dict = field(default_factory=dict)  # transformers TrainingArguments
    resume_from_checkpoint: bool | str = False
    seed: int = 0
    toy_data: dict | None = None  # {n, seed}: generate apallm.synth's two-class set when the manifest is absent

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict | None = None):
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a {cls.KIND} config is a YAML mapping of keys to values")
        data.update(overrides or {})
        base = Path(path).resolve().parent
        return cls.from_dict(data, base)

    @classmethod
    def from_dict(cls, data: dict, base_dir: Path | None = None):
        data = dict(data)
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown {cls.KIND} config keys: {', '.join(sorted(unknown))}")
        missing = [f.name for f in fields(cls) if f.name not in data
                   and f.default is MISSING and f.default_factory is MISSING]
        if missing:
            raise ValueError(f"the {cls.KIND} config needs {', '.join(missing)}")
        cfg = cls(**cls.convert(data))
        if base_dir is not None:  # relative paths are relative to the repository root or the config file
            for key in cls.PATH_KEYS:
                value = getattr(cfg, key)
                if value and not Path(value).is_absolute() and not Path(value).exists():
                    candidate = base_dir / value
                    if candidate.exists():
                        setattr(cfg, key, str(candidate))
        return cfg

    @classmethod
    def convert(cls, data: dict) -> dict:
        """Turn nested mappings into their dataclasses (``data`` holds known keys only)."""
        return data


@dataclass
class SFTConfig(RunConfig):
    """A run, as read from ``configs/sft/<name>.yaml``. ``training`` goes to transformers' TrainingArguments."""

    KIND = "SFT"
    PATH_KEYS = ("train_manifest", "eval_manifest", "deepspeed")

    model: str
    train_manifest: str
    output_dir: str
    family: str | None = None
    eval_manifest: str | None = None
    options: dict = field(default_factory=lambda: {"spectrogram": True, "cues": False, "cm_scores": False})
    prompts: dict = field(default_factory=dict)  # overrides of prompts/allm.yaml (system, instruction, ...)
    spectrogram: dict = field(default_factory=dict)
    peft: PeftSettings = field(default_factory=PeftSettings)
    quantization: str | None = None  # "4bit" for QLoRA (GPU)
    max_length: int | None = None

    @classmethod
    def convert(cls, data: dict) -> dict:
        data["peft"] = PeftSettings(**(data.get("peft") or {}))
        return data


class SFTDataset(torch.utils.data.Dataset):
    """Manifest rows -> (Sample, answer). Unreadable files are dropped up front with a warning (a header
    probe, no decoding), so one bad file never stops a run."""

    def __init__(self, rows: list[dict], detector, window_policy: str = "first", seed: int = 0):
        self.detector = detector
        self.window_policy = window_policy
        self.rng = random.Random(seed)
        self.rows, self.dropped = [], []
        self._cache: dict[int, tuple] = {}
        for row in rows:
            try:
                sf.info(row["path"])
                self.rows.append(row)
            except Exception as exc:  # soundfile raises several types for unreadable files
                self.dropped.append((row["path"], str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        for path, why in self.dropped:
            log.warning("skipping unreadable training file %s: %s", path, why)
        if not self.rows:
            raise ValueError("no readable training files in the manifest")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        if index in self._cache:  # evidence is deterministic unless windows are drawn at random
            return self._cache[index]
        row = self.rows[index]
        clip = load_audio(row["path"], clip_id=row.get("id"))
        windows = split_windows(clip, window_s=self.detector.window_s, policy="sliding")
        if self.window_policy == "random":
            clip = self.rng.choice(windows)
        elif self.window_policy == "center":
            clip = windows[len(windows) // 2]
        else:
            clip = windows[0]
        cm = row.get("cm_scores") if self.detector.options.cm_scores else None
        sample = self.detector.make_sample(clip, cm, source_id=row.get("id") or clip.id)
        answer = row.get("target") or default_target(row["label"], sample.evidence)
        if self.window_policy != "random":
            self._cache[index] = (sample, answer)
        return sample, answer


class SFTCollator:
    def __init__(self, detector, max_length: int | None = None):
        self.detector = detector
        self.max_length = max_length

    def __call__(self, items):
        samples, answers = zip(*items, strict=True)
        return dict(self.detector.training_batch(list(samples), list(answers), self.max_length))


def _single_process_distributed_env() -> None:
    """DeepSpeed wants a process group even for one process (CPU: gloo)."""
    for key, value in (("MASTER_ADDR", "127.0.0.1"), ("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):
        os.environ.setdefault(key, value)
    if "MASTER_PORT" not in os.environ:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def apply_peft(model, family: str, settings: PeftSettings, quantized: bool = False):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if settings.method not in ("lora", "dora"):
        raise ValueError(f"unknown PEFT method {settings.method!r}: use lora or dora")
    if quantized:
        model = prepare_model_for_kbit_training(model)
    from apallm.allm import family_class

    cls = family_class(family)
    save = list(settings.modules_to_save)
    towers = cls.towers
    if settings.train_audio_tower:
        save.append(towers["audio"])
    if settings.train_vision_tower:
        if not towers.get("vision"):
            raise ValueError(f"{family} has no vision tower to train")
        save.append(towers["vision"])
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=settings.target_modules or cls.lora_targets,
                        use_dora=settings.method == "dora", modules_to_save=save or None, bias="none")
    peft_model = get_peft_model(model, config)
    if settings.train_projector:
        for param in cls.trainable_extra(peft_model):
            param.requires_grad_(True)
    return peft_model


def build_trainer(cfg: SFTConfig):
    """The detector (base + PEFT) and a ready transformers Trainer."""
    from transformers import Trainer

    if cfg.deepspeed:
        _single_process_distributed_env()
    torch.manual_seed(cfg.seed)
    options = PromptOptions.from_dict(cfg.options)
    kwargs = {}
    if cfg.prompts:
        kwargs["prompts"] = cfg.prompts
    if cfg.spectrogram:
        kwargs["evidence_config"] = EvidenceConfig(spectrogram=SpectrogramConfig(**cfg.spectrogram))
    device = "cpu" if not torch.cuda.is_available() else "auto"
    detector = load_allm(cfg.model, family=cfg.family, options=options, quantization=cfg.quantization,
                         device=device, **kwargs)
    if cfg.model in TINY_MODELS and is_main_process():
        # no hub can give a built-in tiny base back: keep it beside the adapter (before PEFT/DeepSpeed wrap it)
        base = Path(cfg.output_dir) / "base"
        with detector.published_layout(detector.model) as plain:
            plain.save_pretrained(str(base), safe_serialization=True)
        detector.processor.save_pretrained(str(base))
    detector.model = apply_peft(detector.model, detector.family, cfg.peft, quantized=cfg.quantization is not None)

    args = training_arguments(cfg, detector.model)
    train = SFTDataset(read_labelled(cfg.train_manifest), detector, cfg.window_policy, cfg.seed)
    evaluation = None
    if cfg.eval_manifest:
        evaluation = SFTDataset(read_labelled(cfg.eval_manifest), detector, "first", cfg.seed)
    trainer = Trainer(model=detector.model, args=args, train_dataset=train,
                      eval_dataset=evaluation, data_collator=SFTCollator(detector, cfg.max_length))
    return detector, trainer


def training_arguments(cfg, model):
    """transformers ``TrainingArguments`` for a run config (``output_dir``, ``seed``, ``deepspeed``,
    ``training``): the recipe defaults (bf16 on GPU, fp32 CPU otherwise, checkpoints under
    ``output_dir/checkpoints``), the config's ``training`` keys on top. Gradient checkpointing makes the
    PEFT ``model``'s inputs require grad, so the frozen embeddings pass gradients on to the adapter."""
    from transformers import TrainingArguments

    on_gpu = torch.cuda.is_available()
    args = dict(output_dir=str(Path(cfg.output_dir) / "checkpoints"), report_to=[], remove_unused_columns=False,
                per_device_train_batch_size=2, num_train_epochs=1, learning_rate=2e-4, logging_steps=10,
                save_strategy="steps", save_steps=500, bf16=on_gpu, seed=cfg.seed,
                dataloader_num_workers=0, use_cpu=not on_gpu)
    args.update(cfg.training)
    if cfg.deepspeed:
        args["deepspeed"] = cfg.deepspeed
    if args.get("gradient_checkpointing"):
        args.setdefault("gradient_checkpointing_kwargs", {"use_reentrant": False})
        model.enable_input_require_grads()
    return TrainingArguments(**args)


def save_output(detector, trainer, cfg, config_key: str = "sft_config") -> Path:
    """Write the adapter folder (see the module notes); the run config is recorded in ``apallm.json`` under
    ``config_key``."""
    out = Path(cfg.output_dir)
    trainer.save_model(str(out / "adapter"))
    # the Trainer also pickles its arguments there; the folder holds safetensors and JSON only
    (out / "adapter" / "training_args.bin").unlink(missing_ok=True)
    extra = detector.trainable_extra(detector.model)
    gather = contextlib.nullcontext()
    if extra and getattr(trainer, "is_deepspeed_enabled", False):
        import deepspeed

        gather = deepspeed.zero.GatheredParameters(extra)  # ZeRO-3 keeps only shards on each rank
    with gather:
        if trainer.is_world_process_zero():
            detector.save_extra(out)
    if trainer.is_world_process_zero():
        detector.processor.save_pretrained(str(out / "processor"))
        detector.save_config(out, **{config_key: _jsonable(cfg)})
    return out


def _jsonable(cfg) -> dict:
    data = asdict(cfg)
    return json.loads(json.dumps(data, default=str))


def ensure_toy_data(cfg) -> None:
    """Generate the toy set a tiny config (``toy_data``, ``train_manifest``) trains on, where its manifest does
    not exist yet."""
    if cfg.toy_data is None or Path(cfg.train_manifest).exists():
        return
    from apallm.synth import make_toy_set

    made = make_toy_set(Path(cfg.train_manifest).parent, **cfg.toy_data)
    if made.resolve() != Path(cfg.train_manifest).resolve():
        made.rename(cfg.train_manifest)


def train_sft(cfg: SFTConfig) -> Path:
    ensure_toy_data(cfg)
    detector, trainer = build_trainer(cfg)
    trainer.train(resume_from_checkpoint=cfg.resume_from_checkpoint or None)
    return save_output(detector, trainer, cfg)

"""Supervised fine-tuning of an ALLM detector: manifest -> dataset -> the family's collator (assistant-only
loss) -> transformers Trainer with PEFT (LoRA / DoRA, QLoRA on GPU) and optional DeepSpeed ZeRO-2/3.

The output folder holds everything ``load_allm(adapter=DIR)`` needs: ``adapter/`` (PEFT, safetensors),
``processor/``, ``apallm.json`` (family, base model, prompt options, spectrogram settings) and, for built-in
tiny models that no hub can give back, ``base/``.
"""

from __future__ import annotations

import contextlib
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import soundfile as sf
import torch

from apallm.allm import PromptOptions, default_target, load_allm
from apallm.allm.registry import TINY_MODELS
from apallm.audio import load_audio, split_windows
from apallm.config import ConfigBase, config_to_dict
from apallm.datasets.manifest import read_labelled
from apallm.evidence import EvidenceConfig, SpectrogramConfig
from apallm.training.common import ToyData, ensure_toy_data, is_main_process, single_process_distributed_env

log = logging.getLogger(__name__)

WindowPolicy = Literal["first", "center", "random"]


@dataclass
class PeftSettings:
    method: Literal["lora", "dora"] = "lora"
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] | None = None  # None: the family's LM-only regex
    train_audio_tower: bool = False
    lora_audio_tower: bool = False  # LoRA on the audio tower too (families that name tower_lora_targets)
    train_vision_tower: bool = False
    train_projector: bool = True  # the projectors of families that have them (Qwen2-Audio, composite)
    modules_to_save: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class RunConfig(ConfigBase):
    """What the transformers-Trainer recipes (SFT, GRPO) share. Loaded through :mod:`apallm.config`: unknown
    keys and bad values are refused with the key named, ``Path`` fields may be relative to the config file."""

    KIND = "run"

    deepspeed: Path | None = None  # a DeepSpeed JSON (configs/deepspeed/zero2.json, zero3.json)
    window_policy: WindowPolicy = "first"  # which 30 s window of a long clip trains
    training: dict = field(default_factory=dict)  # transformers TrainingArguments
    resume_from_checkpoint: bool | str = False
    seed: int = 0
    toy_data: ToyData | None = None  # generate apallm.synth's two-class set when the manifest is absent


@dataclass
class SFTConfig(RunConfig):
    """A run, as read from ``configs/sft/<name>.yaml``. ``training`` goes to transformers' TrainingArguments."""

    KIND = "SFT"

    model: str
    train_manifest: Path
    output_dir: Path
    family: str | None = None
    eval_manifest: Path | None = None
    options: PromptOptions = field(default_factory=PromptOptions)  # which evidence enters the prompt
    prompts: dict[str, str] = field(default_factory=dict)  # overrides of prompts/allm.yaml (system, ...)
    spectrogram: SpectrogramConfig | None = None  # None: the family's default
    peft: PeftSettings = field(default_factory=PeftSettings)
    quantization: Literal["4bit"] | None = None  # QLoRA (GPU)
    max_length: int | None = None


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
    if settings.train_projector:
        save += [name for name in cls.projector_modules if name not in save]
    targets = settings.target_modules or cls.lora_targets
    if settings.lora_audio_tower:
        if "audio" not in cls.tower_lora_targets:
            raise ValueError(f"lora_audio_tower: {family} names no LoRA targets in its audio tower")
        if not isinstance(targets, str):
            raise ValueError("lora_audio_tower needs target_modules unset or one regex, not a list")
        targets = f"(?:{targets})|(?:{cls.tower_lora_targets['audio']})"
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=targets,
                        use_dora=settings.method == "dora", modules_to_save=save or None, bias="none")
    peft_model = get_peft_model(model, config)
    if settings.train_projector:
        for param in cls.trainable_extra(peft_model):
            param.requires_grad_(True)
    return peft_model


def build_trainer(cfg: SFTConfig):
    """The detector (base + PEFT) and a ready transformers Trainer."""
    from apallm.training.answer_loss import AnswerLossTrainer

    if cfg.deepspeed:
        single_process_distributed_env()
    torch.manual_seed(cfg.seed)
    kwargs = {}
    if cfg.prompts:
        kwargs["prompts"] = cfg.prompts
    if cfg.spectrogram:
        kwargs["evidence_config"] = EvidenceConfig(spectrogram=cfg.spectrogram)
    device = "cpu" if not torch.cuda.is_available() else "auto"
    detector = load_allm(cfg.model, family=cfg.family, options=cfg.options, quantization=cfg.quantization,
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
    trainer = AnswerLossTrainer(model=detector.model, args=args, train_dataset=train,
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
        args["deepspeed"] = str(cfg.deepspeed)
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
        detector.save_config(out, **{config_key: config_to_dict(cfg)})
    return out


def train_sft(cfg: SFTConfig) -> Path:
    ensure_toy_data(cfg.toy_data, [cfg.train_manifest], targets=True)
    detector, trainer = build_trainer(cfg)
    trainer.train(resume_from_checkpoint=cfg.resume_from_checkpoint or None)
    return save_output(detector, trainer, cfg)

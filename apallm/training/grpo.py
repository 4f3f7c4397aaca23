"""GRPO after SFT: the detector samples several answers per clip and learns from how they score against each other.

TRL's ``GRPOTrainer`` builds its prompts, generation inputs and log-prob passes for text and images only: an
Omni or Qwen2-Audio prompt also carries audio features (and Qwen2-Audio its spectrogram patches) that must
follow every repeated prompt through generation and the scoring pass. Rather than patch that, the objective is
written here as a small :class:`GRPOTrainer` on transformers' ``Trainer`` (so DeepSpeed ZeRO-2, gradient
accumulation, checkpoints, resume and logging are the Trainer's own), driven by the detector, which already
knows how to turn a clip into model inputs.

One step, for each clip of the batch (``per_device_train_batch_size`` clips per device):

1. **Sample** ``num_generations`` (K) answers with ``model.generate`` (``do_sample``, ``temperature``,
   ``top_p``, ``top_k``, ``max_new_tokens``) from the current policy, in eval mode, without gradients. An
   answer ends at the first end-of-turn token, which belongs to it (stopping is learnt too). Special tokens
   other than end-of-turn are never sampled: an audio or image placeholder inside an answer would not match
   the prompt's features (TRL suppresses the image token for the same reason).
2. **Reward** each answer (:mod:`apallm.training.rewards`): ``sum(weight * reward)`` over the configured
   rewards, by default the correct label (1.0), a valid format (0.5) and grounding, precision minus
   contradictions of its cue claims against the clip's measured evidence (0.5).
3. **Advantages**, group-normalised per clip: ``A = (r - mean_group) / (std_group + eps)``
   (:func:`~apallm.training.rewards.group_advantages`; ``scale_rewards: false`` drops the division).
4. **Loss** over the sampled tokens ``o_t`` of all answers (token-level mean, so long answers do not weigh less
   per token)::

       loss = - mean_t [ exp(logp_t - stopgrad(logp_t)) * A ]  +  beta * mean_t KL_t

   with ``logp_t = log pi(o_t | prompt, o_<t)`` of the logits divided by the sampling temperature. The ratio is
   1 in value (one update per batch of samples: the policy that sampled is the one updated), so the loss reads
   ``-mean(A)`` plus the KL term, and its gradient is the policy gradient ``-A * grad logp_t``. ``KL_t`` is the
   k3 estimator ``exp(ref_t - logp_t) - (ref_t - logp_t) - 1`` against the **reference policy, the SFT adapter
   as GRPO started from it**: its weights are kept aside at the start and swapped in for a no-grad pass.
   ``beta`` is 0 by default (no reference pass).

Only the adapter trains (LoRA/DoRA, its ``modules_to_save`` and a family's spectrogram projector); the base
weights and the towers stay frozen. Groups never cross devices: each device samples all K answers of its clips,
so advantages need no gather. ZeRO-3 is refused (this trainer swaps whole parameter tensors for the
reference and samples with ``generate`` on each rank): use ``configs/deepspeed/zero2.json``.

The output folder is an adapter folder like SFT's (``adapter/`` in safetensors, ``processor/``, ``apallm.json``
with the run config under ``grpo_config``, ``base/`` copied from the SFT folder for built-in tiny models), so
``apallm explain --adapter OUT`` and ``apallm batch --adapter OUT`` take it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer

from apallm.config import ConfigError
from apallm.datasets.manifest import read_labelled
from apallm.training.answer_loss import last_logits_only
from apallm.training.common import ensure_toy_data, is_main_process, single_process_distributed_env
from apallm.training.rewards import DEFAULT_WEIGHTS, RewardFunction, group_advantages, resolve_reward, weighted_rewards
from apallm.training.sft import RunConfig, SFTDataset, save_output, training_arguments

log = logging.getLogger(__name__)

__all__ = ["GRPOConfig", "GRPODataset", "GRPOTrainer", "GenerationSettings", "Rollout", "build_grpo_trainer",
           "train_grpo"]


@dataclass
class GenerationSettings:
    """How answers are sampled (``model.generate`` arguments). ``top_k: 0`` turns top-k filtering off."""

    max_new_tokens: int = 160
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ConfigError("max_new_tokens", f"must be a positive integer, got {self.max_new_tokens!r}")
        if not _positive(self.temperature):
            raise ConfigError("temperature", f"must be a number > 0, got {self.temperature!r}")
        if not _positive(self.top_p) or self.top_p > 1:
            raise ConfigError("top_p", f"must lie in (0, 1], got {self.top_p!r}")
        if self.top_k < 0:
            raise ConfigError("top_k", f"must be an integer >= 0 (0: off), got {self.top_k!r}")
        if not _positive(self.repetition_penalty):
            raise ConfigError("repetition_penalty", f"must be a number > 0, got {self.repetition_penalty!r}")


def _positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


@dataclass
class GRPOConfig(RunConfig):
    """A GRPO run, as read from ``configs/grpo/<name>.yaml``. ``training`` goes to transformers'
    TrainingArguments (``per_device_train_batch_size`` counts clips; each brings ``num_generations`` answers)."""

    KIND = "GRPO"

    adapter: Path  # the SFT adapter folder GRPO starts from (apallm train sft's output_dir)
    train_manifest: Path
    output_dir: Path
    model: str | None = None  # the base model, when not the one recorded in the adapter folder
    num_generations: int = 4
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    # {reward name or module:function: weight}
    rewards: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    scale_rewards: bool = True
    beta: float = 0.0
    train_projector: bool = True  # a family's spectrogram projector (Qwen2-Audio) trains with the adapter
    # and RunConfig's: deepspeed, window_policy, training, resume_from_checkpoint, seed, toy_data

    def __post_init__(self):
        if self.num_generations < 2:
            raise ConfigError("num_generations", f"must be an integer >= 2 (a group of one answer has nothing to "
                                                 f"compare with), got {self.num_generations!r}")
        if not self.rewards:
            raise ConfigError("rewards", "must map at least one reward name to its weight, e.g. {label: 1.0}")
        for name, weight in self.rewards.items():
            try:
                resolve_reward(name)
            except ValueError as exc:
                raise ConfigError(f"rewards.{name}", str(exc)) from exc
            if not math.isfinite(weight):
                raise ConfigError(f"rewards.{name}", f"the weight must be a finite number, got {weight!r}")
        if not self.beta >= 0 or not math.isfinite(self.beta):
            raise ConfigError("beta", f"the KL weight must be a number >= 0, got {self.beta!r}")


class GRPODataset(SFTDataset):
    """Manifest rows -> (Sample, true label): the SFT dataset's clips and windows, without targets."""

    def __getitem__(self, index: int):
        sample, _ = super().__getitem__(index)
        return sample, self.rows[index]["label"]


def collate(items) -> dict:
    """A batch of clips: the samples and their true labels, as lists (the trainer encodes them itself)."""
    samples, labels = zip(*items, strict=True)
    return {"samples": list(samples), "clip_labels": list(labels)}


@dataclass
class Rollout:
    """K answers per clip: ``samples[i]`` (each clip repeated K times, consecutively) with its prompt text and
    the answer's token ids (``completion_ids``, right-padded; ``completion_mask`` 1 up to and including the
    end-of-turn token) and decoded ``texts``."""

    samples: list
    prompts: list[str]
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    texts: list[str]
    #: answers that reached max_new_tokens without an end-of-turn token
    truncated: torch.Tensor
    #: the prompts' model inputs from sampling, reused by the scoring pass where the family encodes plainly
    prompt_inputs: dict | None = None


class GRPOTrainer(Trainer):
    """transformers ``Trainer`` whose loss samples answers, rewards them and applies the GRPO objective (see the
    module notes). Extra arguments: the ``detector`` (its ``model`` is trained), ``reward_weights``
    ``{name: weight}``, ``reward_functions`` ``{name: function}`` (names not given resolve to built-ins or import
    paths), ``num_generations``, ``generation`` (:class:`GenerationSettings`), ``beta`` and ``scale_rewards``."""

    def __init__(self, *, detector, reward_weights: Mapping[str, float],
                 reward_functions: Mapping[str, RewardFunction] | None = None, num_generations: int = 4,
                 generation: GenerationSettings | None = None, beta: float = 0.0, scale_rewards: bool = True,
                 **kwargs):
        kwargs.setdefault("data_collator", collate)
        super().__init__(model=detector.model, **kwargs)
        self.detector = detector
        self.reward_weights = dict(reward_weights)
        self.reward_functions = {name: (reward_functions or {}).get(name) or resolve_reward(name)
                                 for name in self.reward_weights}
        self.num_generations = num_generations
        self.generation = generation or GenerationSettings()
        self.beta = float(beta)
        self.scale_rewards = scale_rewards
        self._metrics: dict[str, list[float]] = defaultdict(list)
        # the reference policy: the trainable weights as GRPO starts (the SFT adapter), kept for the KL term
        self._reference = None
        if self.beta > 0:
            self._reference = {name: p.detach().clone() for name, p in detector.model.named_parameters()
                               if p.requires_grad}

    # -------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, model, samples: Sequence, num_generations: int | None = None) -> Rollout:
        """K answers per sample from the current policy (see the module notes)."""
        k = num_generations or self.num_generations
        det = self.detector
        rows = [s for s in samples for _ in range(k)]
        prompts = [det.render(s) for s in rows]
        inputs = self._prepare_input(dict(det.encode(rows, prompts)))
        # a family whose encode() gives plain model inputs (reusable_inputs) lets the scoring pass reuse them;
        # others are encoded again there
        reusable = det.reusable_inputs
        policy = self.accelerator.unwrap_model(model)
        was_training = policy.training
        policy.eval()
        g = self.generation
        try:
            sequences = policy.generate(**inputs, do_sample=True, temperature=g.temperature, top_p=g.top_p,
                                        top_k=g.top_k, repetition_penalty=g.repetition_penalty,
                                        max_new_tokens=g.max_new_tokens, pad_token_id=det.tokenizer.pad_token_id,
                                        eos_token_id=sorted(self._eos_ids()), suppress_tokens=self._suppressed(),
                                        use_cache=True)
        finally:
            policy.train(was_training)
        completion = sequences[:, inputs["input_ids"].shape[1]:]
        return self._rollout(rows, prompts, completion, inputs if reusable else None)

    def rollout_from_texts(self, samples: Sequence, completions: Sequence[str]) -> Rollout:
        """A rollout of given answers (one per sample, each ended by the end-of-turn token): to score or
        train on fixed candidates."""
        tok = self.detector.tokenizer
        ids = [tok(text + tok.eos_token, add_special_tokens=False)["input_ids"] for text in completions]
        width = max(len(x) for x in ids)
        completion = torch.full((len(ids), width), tok.pad_token_id, dtype=torch.long)
        for row, x in enumerate(ids):
            completion[row, :len(x)] = torch.tensor(x)
        samples = list(samples)
        return self._rollout(samples, [self.detector.render(s) for s in samples], completion)

    def _suppressed(self) -> list[int]:
        """Special tokens never sampled: an answer holding an audio, image or spectrogram placeholder (or a
        chat-format token) would no longer match its prompt's features in the scoring pass. End-of-turn stays."""
        tok = self.detector.tokenizer
        special = {i for i, added in tok.added_tokens_decoder.items() if added.special}
        special.update(i for i in tok.all_special_ids if i is not None)
        return sorted(special - self._eos_ids())

    def _eos_ids(self) -> set[int]:
        ids = {self.detector.tokenizer.eos_token_id}
        configured = getattr(self.detector.model.generation_config, "eos_token_id", None)
        if configured is not None:
            ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
        return {int(i) for i in ids if i is not None}

    def _rollout(self, rows, prompts, completion: torch.Tensor, inputs: dict | None = None) -> Rollout:
        is_eos = torch.zeros_like(completion, dtype=torch.bool)
        for eos in self._eos_ids():
            is_eos |= completion == eos
        width = completion.shape[1]
        first = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(is_eos[:, 0], width,
                                                                                     dtype=torch.long))
        mask = (torch.arange(width, device=completion.device)[None, :] <= first[:, None]).long()
        tok = self.detector.tokenizer
        texts = [tok.decode(ids[m.bool()], skip_special_tokens=True) for ids, m in zip(completion, mask,
                                                                                         strict=True)]
        return Rollout(list(rows), list(prompts), completion, mask, texts, ~is_eos.any(1), inputs)

    # -------------------------------------------------------------- rewards
    def rewards(self, rollout: Rollout, labels: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Total and per-reward values of each answer; ``labels`` holds the true label of each row."""
        evidence = [s.evidence for s in rollout.samples]
        return weighted_rewards(rollout.texts, labels, evidence, self.reward_weights, self.reward_functions)

    # -------------------------------------------------------------- objective
    def _inputs(self, rollout: Rollout) -> dict:
        if rollout.prompt_inputs is not None:
            batch = dict(rollout.prompt_inputs)
        else:
            batch = self._prepare_input(dict(self.detector.model_inputs(rollout.prompts, rollout.samples)))
        completion = rollout.completion_ids.to(batch["input_ids"].device)
        mask = rollout.completion_mask.to(batch["attention_mask"].device, batch["attention_mask"].dtype)
        batch["input_ids"] = torch.cat([batch["input_ids"], completion], dim=1)
        batch["attention_mask"] = torch.cat([batch["attention_mask"], mask], dim=1)
        return batch

    def token_logprobs(self, model, rollout: Rollout, inputs: dict | None = None) -> torch.Tensor:
        """log pi(o_t | ...) of every answer token, (rows, tokens), logits divided by the temperature."""
        inputs = inputs if inputs is not None else self._inputs(rollout)
        width = rollout.completion_ids.shape[1]
        with last_logits_only(self.accelerator.unwrap_model(model), width):
            logits = model(**inputs, use_cache=False).logits
        if logits.shape[1] != width:
            raise RuntimeError(f"expected logits for the {width} answer positions, got {logits.shape[1]}: the "
                               f"model's forward does not go through its output embeddings")
        logits = logits.float() / self.generation.temperature
        target = rollout.completion_ids.to(logits.device)
        return torch.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)

    @contextlib.contextmanager
    def _reference_weights(self, model):
        """Within it, the trainable parameters hold their values from the start of GRPO (the SFT adapter)."""
        params = dict(self.accelerator.unwrap_model(model).named_parameters())
        saved = {}
        try:
            for name, value in self._reference.items():
                p = params[name]
                saved[name] = p.data
                p.data = value.to(p.device, p.dtype)
            yield
        finally:
            for name, data in saved.items():
                params[name].data = data

    def policy_loss(self, model, rollout: Rollout, advantages) -> tuple[torch.Tensor, dict[str, float]]:
        """The GRPO loss of one rollout with its advantages (see the module notes) and its statistics."""
        inputs = self._inputs(rollout)
        logp = self.token_logprobs(model, rollout, inputs)
        mask = rollout.completion_mask.to(logp.device, logp.dtype)
        adv = torch.as_tensor(np.asarray(advantages), dtype=logp.dtype, device=logp.device)
        per_token = -torch.exp(logp - logp.detach()) * adv[:, None]
        stats = {}
        if self.beta > 0:
            with torch.no_grad(), self._reference_weights(model):
                ref = self.token_logprobs(model, rollout, inputs)
            diff = ref - logp
            kl = torch.exp(diff) - diff - 1
            per_token = per_token + self.beta * kl
            stats["kl"] = float((kl.detach() * mask).sum() / mask.sum().clamp(min=1))
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1)
        return loss, stats

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise ValueError("GRPO computes no model outputs to return (no evaluation loop)")
        samples, labels = inputs["samples"], inputs["clip_labels"]
        rollout = self.sample(model, samples)
        row_labels = [label for label in labels for _ in range(self.num_generations)]
        total, parts = self.rewards(rollout, row_labels)
        advantages = group_advantages(total, self.num_generations, scale=self.scale_rewards)
        loss, stats = self.policy_loss(model, rollout, advantages)
        groups = total.reshape(-1, self.num_generations)
        m = self._metrics
        m["reward"].append(float(total.mean()))
        m["reward_std"].append(float(groups.std(axis=1).mean()))
        m["frac_reward_zero_std"].append(float((groups.std(axis=1) == 0).mean()))
        for name, values in parts.items():
            m[f"rewards/{name}"].append(float(values.mean()))
        lengths = rollout.completion_mask.sum(1).float()
        m["completion_length"].append(float(lengths.mean()))
        m["frac_truncated"].append(float(rollout.truncated.float().mean()))
        for key, value in stats.items():
            m[key].append(value)
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._metrics and "loss" in logs:
            logs = {**logs, **{k: float(np.mean(v)) for k, v in self._metrics.items()}}
            self._metrics.clear()
        super().log(logs, start_time)


def _zero_stage(path: str) -> int:
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"deepspeed config {path}: {exc}") from exc
    return int((config.get("zero_optimization") or {}).get("stage", 0))


def _check_adapter(cfg: GRPOConfig) -> Path:
    adapter = Path(cfg.adapter)
    if not (adapter / "apallm.json").is_file() or not (adapter / "adapter").is_dir():
        raise FileNotFoundError(f"{adapter} is not an SFT adapter folder (apallm.json and adapter/): GRPO starts "
                                f"from one; train it first with 'apallm train sft --config <sft config>' "
                                f"(output_dir: {adapter})")
    return adapter


def build_grpo_trainer(cfg: GRPOConfig, reward_functions: Mapping[str, RewardFunction] | None = None):
    """The detector (the SFT adapter loaded trainable) and a ready :class:`GRPOTrainer`.

    Raises:
        FileNotFoundError: the SFT adapter folder or the manifest does not exist.
        ValueError: a ZeRO-3 DeepSpeed config, or an adapter with nothing to train.
    """
    from apallm.allm import load_allm

    adapter = _check_adapter(cfg)
    if cfg.deepspeed:
        if _zero_stage(cfg.deepspeed) == 3:
            raise ValueError(f"{cfg.deepspeed}: GRPO runs with DeepSpeed ZeRO-2 (or none), not ZeRO-3: it samples with "
                             f"generate on each rank and swaps whole adapter tensors for the reference policy; use "
                             f"configs/deepspeed/zero2.json")
        single_process_distributed_env()
    if not Path(cfg.train_manifest).exists():
        raise FileNotFoundError(f"{cfg.train_manifest}: no such training manifest")
    torch.manual_seed(cfg.seed)
    device = "cpu" if not torch.cuda.is_available() else "auto"
    detector = load_allm(cfg.model, adapter=str(adapter), device=device, adapter_trainable=True,
                         max_new_tokens=cfg.generation.max_new_tokens)
    if cfg.train_projector:
        for param in detector.trainable_extra(detector.model):
            param.requires_grad_(True)
    if not any(p.requires_grad for p in detector.model.parameters()):
        raise ValueError(f"{adapter}: the adapter has no trainable weights")
    args = training_arguments(cfg, detector.model)
    dataset = GRPODataset(read_labelled(cfg.train_manifest), detector, cfg.window_policy, cfg.seed)
    trainer = GRPOTrainer(detector=detector, args=args, train_dataset=dataset, reward_weights=cfg.rewards,
                            reward_functions=reward_functions, num_generations=cfg.num_generations,
                            generation=cfg.generation, beta=cfg.beta, scale_rewards=cfg.scale_rewards)
    return detector, trainer


def train_grpo(cfg: GRPOConfig, reward_functions: Mapping[str, Callable] | None = None) -> Path:
    """Run GRPO from the config's SFT adapter and write the new adapter folder; return its path."""
    _check_adapter(cfg)
    ensure_toy_data(cfg.toy_data, [cfg.train_manifest], targets=True)
    detector, trainer = build_grpo_trainer(cfg, reward_functions)
    trainer.train(resume_from_checkpoint=cfg.resume_from_checkpoint or None)
    out = save_output(detector, trainer, cfg, config_key="grpo_config")
    base = Path(cfg.adapter) / "base"
    if base.is_dir() and is_main_process() and not (out / "base").exists():
        shutil.copytree(base, out / "base")  # a built-in tiny base no hub can give back
    return out

"""The countermeasure run config, as read from ``configs/cm/<name>.yaml`` (:mod:`apallm.config` checks it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from apallm.cm.checkpoint import ARCHITECTURES, LAZY_ARCHITECTURES
from apallm.cm.codecs import CodecConfig
from apallm.cm.rawboost import ALGORITHMS, RawBoostConfig
from apallm.config import ConfigBase, ConfigError
from apallm.training.common import ToyData

Optimizer = Literal["adam", "sam", "asam"]
LRSchedule = Literal["constant", "cosine"]
OPTIMIZERS = get_args(Optimizer)
LR_SCHEDULES = get_args(LRSchedule)


@dataclass
class ModelSpec:
    """The ``model`` section: ``architecture`` (AASIST, SSL-AASIST, WPT-SSL-AASIST), ``preset`` (AASIST only:
    aasist | aasist-l), ``model_config`` (overrides of the architecture's configuration), ``pretrained_ssl``
    (SSL models: the hub id or folder their SSL configuration and weights come from) and ``name`` (the
    checkpoint's name; the output folder's name when absent)."""

    architecture: str = "AASIST"
    preset: Literal["aasist", "aasist-l"] | None = None
    model_config: dict = field(default_factory=dict)
    pretrained_ssl: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        known = sorted(set(ARCHITECTURES) | set(LAZY_ARCHITECTURES))
        if self.architecture not in known:
            raise ConfigError("architecture", f"{self.architecture!r} is not one of: {', '.join(known)}")
        if self.preset and self.architecture != "AASIST":
            raise ConfigError("preset", f"presets are AASIST's; {self.architecture} takes model_config")


@dataclass(frozen=True, kw_only=True)
class RawBoostAugmentation(RawBoostConfig):
    """The ``rawboost`` section: the RawBoost ``algorithm`` (:data:`apallm.cm.rawboost.ALGORITHMS`; 0: none)
    and any :class:`~apallm.cm.rawboost.RawBoostConfig` field."""

    algorithm: int

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError("algorithm", f"{self.algorithm!r} is not one of: "
                                           + ", ".join(f"{k} ({v})" for k, v in ALGORITHMS.items()))
        super().__post_init__()


@dataclass(frozen=True, kw_only=True)
class CodecAugmentation(CodecConfig):
    """The ``codec`` section: with ``probability`` a training clip (of either label) goes through a codec or
    telephone-channel round trip (:mod:`apallm.cm.codecs`; ``codecs``, ``compression`` as
    :class:`~apallm.cm.codecs.CodecConfig`)."""

    probability: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ConfigError("probability", f"must lie in [0, 1], got {self.probability!r}")
        super().__post_init__()


@dataclass
class CMTrainConfig(ConfigBase):
    """A run, as read from ``configs/cm/<name>.yaml``.

    ``model``: see :class:`ModelSpec`.
    ``class_weights``: ``[spoof, bonafide]`` weights of the cross-entropy, or ``"auto"`` (inverse class
    frequency of the training manifest, normalised to sum 1), or ``null`` (unweighted).
    ``optimizer``: ``adam``, ``sam`` (sharpness-aware minimisation, Foret et al. 2021) or ``asam``
    (adaptive SAM, Kwon et al. 2021) around Adam; ``sam_rho`` is the radius of the weight perturbation
    (``null``: 0.05 for SAM, 0.5 for ASAM, the values those papers recommend).
    ``lr_schedule``: ``constant`` or ``cosine``: per optimisation step, ``lr`` annealed to ``min_lr`` along a
    half cosine over the run (the published AASIST recipe: Adam at 1e-4 to 5e-6); ``warmup_steps`` first rise
    linearly from 0. The rate is a function of the step alone, so ``resume`` continues the same curve.
    ``rawboost``: null, or :class:`RawBoostAugmentation` (``{"algorithm": 1..8, ...RawBoostConfig fields}``).
    ``codec``: null, or :class:`CodecAugmentation` (``{"probability": p, "codecs": [...], "compression":
    [lo, hi]}``), applied before RawBoost and cropping.
    ``crop_samples``: the crop length in samples; it becomes the model's ``nb_samp``, so the checkpoint
    is scored (:class:`apallm.cm.CMDetector`) on the same length it was trained on.
    ``dropout``: one probability for every dropout layer while training (``0.0`` switches dropout off:
    a tiny model on a tiny set learns faster and steadier without it); ``null`` keeps the model's own.
    ``bn_recalibration``: before each evaluation, replace the batch-norm running statistics by their
    plain average over the epoch's training crops (one forward pass, no gradient); worth it for short
    runs, where the moving average still remembers the first weights.
    ``toy_data``: :class:`apallm.training.common.ToyData`: the toy set is written as the training set (and
    the evaluation set, with ``seed + 1``) when a manifest is absent.
    """

    KIND = "CM training"
    RENAMED = {"dev_manifest": "eval_manifest"}

    train_manifest: Path
    output_dir: Path
    model: ModelSpec = field(default_factory=lambda: ModelSpec(architecture="AASIST", preset="aasist-l"))
    eval_manifest: Path | None = None  # the dev set whose EER picks the best epoch; None: the training set
    epochs: int = 10
    batch_size: int = 24
    eval_batch_size: int | None = None
    lr: float = 1e-4
    lr_schedule: LRSchedule = "constant"  # per step, from lr down to min_lr
    min_lr: float = 0.0
    warmup_steps: int = 0  # linear warm-up from 0 to lr over this many steps, before the schedule
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    class_weights: Literal["auto"] | list[float] | None = "auto"
    optimizer: Optimizer = "adam"
    sam_rho: float | None = None
    rawboost: RawBoostAugmentation | None = None
    codec: CodecAugmentation | None = None
    freq_aug: bool = False  # AASIST only: the published frequency-band masking of the sinc filters
    crop_samples: int | None = None  # sets the model's nb_samp (training and scoring crop); None: 64600
    dropout: float | None = None  # override every dropout probability of the model; None: the model's own
    grad_clip: float | None = None  # largest L2 norm of a step's gradient; None: no clipping
    bn_recalibration: bool = False  # recompute batch-norm statistics on the training crops before each eval
    cache_audio: bool = True  # keep decoded clips in memory
    num_workers: int = 0
    threads: int | None = None
    keep_last: int = 2
    resume: bool = False
    seed: int = 0
    device: str = "cpu"
    toy_data: ToyData | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError("min_lr", f"need 0 <= min_lr <= lr, got min_lr={self.min_lr}, lr={self.lr}")
        if self.warmup_steps < 0:
            raise ConfigError("warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        if isinstance(self.class_weights, list) and len(self.class_weights) != 2:
            raise ConfigError("class_weights", f"'auto', null or [spoof, bonafide], got {self.class_weights}")
        if self.sam_rho is not None and self.sam_rho <= 0:
            raise ConfigError("sam_rho", f"the SAM radius must be positive, got {self.sam_rho}")

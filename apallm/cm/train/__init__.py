"""Countermeasure training (``apallm train cm --config configs/cm/<name>.yaml``), one module per concern:
:mod:`~apallm.cm.train.config` (the run config), :mod:`~apallm.cm.train.data` (dataset, crops, class weights),
:mod:`~apallm.cm.train.optim` (SAM / ASAM, learning-rate schedule, one step, optimizer state),
:mod:`~apallm.cm.train.bn` (batch-norm statistics), :mod:`~apallm.cm.train.model` (the model of a config) and
:mod:`~apallm.cm.train.loop` (:func:`train_cm`, which writes the checkpoints)."""

from apallm.cm.train.bn import frozen_batch_norm_statistics, recalibrate_batch_norm
from apallm.cm.train.config import (
    LR_SCHEDULES,
    OPTIMIZERS,
    CMTrainConfig,
    CodecAugmentation,
    ModelSpec,
    RawBoostAugmentation,
)
from apallm.cm.train.data import LABEL_INDEX, CMDataset, class_weights_from_labels, random_crop
from apallm.cm.train.loop import evaluate, train_cm
from apallm.cm.train.model import build_model
from apallm.cm.train.optim import (
    OPTIMIZER_FILE,
    SAM,
    learning_rate,
    load_optimizer_state,
    make_optimizer,
    save_optimizer_state,
    train_step,
)

__all__ = ["LABEL_INDEX", "LR_SCHEDULES", "OPTIMIZERS", "OPTIMIZER_FILE", "SAM", "CMDataset", "CMTrainConfig",
           "CodecAugmentation", "ModelSpec", "RawBoostAugmentation", "build_model", "class_weights_from_labels",
           "evaluate", "frozen_batch_norm_statistics", "learning_rate", "load_optimizer_state", "make_optimizer",
           "random_crop", "recalibrate_batch_norm", "save_optimizer_state", "train_cm", "train_step"]

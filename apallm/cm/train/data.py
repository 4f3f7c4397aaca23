"""The countermeasure training data: manifest rows -> crops (random for training, after optional codec and
RawBoost augmentation; the fixed first crop for evaluation) and label indices."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from apallm.cm.aasist import BONAFIDE_INDEX, SPOOF_INDEX
from apallm.cm.detector import fixed_crop
from apallm.cm.train.config import CodecAugmentation, RawBoostAugmentation
from apallm.config import config_from_dict

LABEL_INDEX = {"bonafide": BONAFIDE_INDEX, "spoof": SPOOF_INDEX}


def random_crop(waveform: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``num_samples`` window; a shorter clip is repeated end to end to that length first."""
    if len(waveform) == 0:
        raise ValueError("cannot crop an empty waveform")
    if len(waveform) <= num_samples:
        return fixed_crop(waveform, num_samples)
    start = int(rng.integers(0, len(waveform) - num_samples + 1))
    return waveform[start:start + num_samples]


class CMDataset(torch.utils.data.Dataset):
    """``(crop, label index)`` per manifest row. ``train=True``: random crops (and codec round trips, RawBoost),
    seeded from ``(seed, epoch, index)`` (see :meth:`set_epoch`); otherwise the fixed first-``num_samples`` crop.
    ``rawboost`` and ``codec`` are the config's sections (:class:`RawBoostAugmentation`,
    :class:`CodecAugmentation`, or mappings of their keys)."""

    def __init__(self, rows: list[dict], num_samples: int, *, train: bool, seed: int = 0,
                 rawboost: RawBoostAugmentation | Mapping | None = None,
                 codec: CodecAugmentation | Mapping | None = None, cache: bool = True):
        self.rows, self.num_samples, self.train, self.seed = rows, num_samples, train, seed
        self.labels = [LABEL_INDEX[r["label"]] for r in rows]
        self.epoch = 0
        self.cache: dict[int, np.ndarray] | None = {} if cache else None
        self.codec = config_from_dict(CodecAugmentation, codec) if codec else None
        self.rawboost = config_from_dict(RawBoostAugmentation, rawboost) if rawboost else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def waveform(self, index: int) -> np.ndarray:
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        from apallm.audio import load_audio

        wave = load_audio(self.rows[index]["path"]).waveform.astype(np.float32)
        if self.cache is not None:
            self.cache[index] = wave
        return wave

    def __getitem__(self, index: int):
        wave = self.waveform(index)
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if self.codec is not None and rng.random() < self.codec.probability:
                from apallm.cm.codecs import random_round_trip

                wave, _ = random_round_trip(wave, rng, self.codec)
            if self.rawboost is not None and self.rawboost.algorithm:
                from apallm.cm.rawboost import rawboost

                wave = rawboost(wave, self.rawboost.algorithm, rng, self.rawboost)
            crop = random_crop(wave, self.num_samples, rng)
        else:
            crop = fixed_crop(wave, self.num_samples)
        return torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32)), self.labels[index]


def class_weights_from_labels(labels: list[int]) -> torch.Tensor:
    """``[spoof, bonafide]`` weights inversely proportional to the class counts, summing to 1 (a 9:1
    spoof-to-bona-fide set gives AASIST's ``[0.1, 0.9]``)."""
    counts = np.bincount(np.asarray(labels), minlength=2).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"the training set needs both classes, got counts spoof={counts[0]:.0f}, "
                         f"bonafide={counts[1]:.0f}")
    weights = 1.0 / counts
    return torch.tensor(weights / weights.sum(), dtype=torch.float32)

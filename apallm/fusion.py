"""Score fusion: a logistic-regression calibration of several detectors' scores, fitted on a dev set.

Each input is a detector's P(spoof); fusion works on their log-odds, so a calibrated single system maps to
itself and systems that err on different clips complement each other. The fit is the package's one logistic
calibrator (:mod:`apallm.calibration`); its weights are a few numbers, saved as JSON, never pickled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from apallm.audio import Clip, as_clips
from apallm.calibration import LogisticCalibrator
from apallm.detectors import Detector

EPS = 1e-6


def log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


@dataclass
class LogisticFusion:
    """P(spoof) = sigmoid(bias + sum_i weight_i * logit(p_i)) over the named systems: a
    :class:`~apallm.calibration.LogisticCalibrator` (not standardised) over the systems' log-odds."""

    systems: list[str]
    calibrator: LogisticCalibrator

    def __post_init__(self):
        self.systems = list(self.systems)
        if self.calibrator.coef.shape != (len(self.systems),) or self.calibrator.standardised:
            raise ValueError(f"fusion of {len(self.systems)} system(s) needs one weight per system and no "
                             f"standardisation, got {self.calibrator.coef.shape[0]} weight(s)")

    @property
    def weights(self) -> list[float]:
        return self.calibrator.coef.tolist()

    @property
    def bias(self) -> float:
        return self.calibrator.intercept

    @classmethod
    def fit(cls, scores: Mapping[str, Sequence[float]], labels: Sequence[str], c: float = 1.0) -> LogisticFusion:
        """Fit on dev-set P(spoof) per system and the true labels (``bonafide``/``spoof``)."""
        systems = list(scores)
        if not systems:
            raise ValueError("fusion needs at least one system's scores")
        x = _features(scores, systems, len(labels))
        return cls(systems, LogisticCalibrator.fit(x, labels, c=c, standardise=False, balanced=False))

    def predict(self, scores: Mapping[str, Sequence[float]]) -> np.ndarray:
        """Fused P(spoof) for each clip."""
        missing = [s for s in self.systems if s not in scores]
        if missing:
            raise ValueError(f"fusion needs scores from {', '.join(missing)}")
        n = len(next(iter(scores.values())))
        return self.calibrator.predict(_features(scores, self.systems, n))

    def save(self, path: str | Path) -> Path:
        """JSON: ``{"type": "logistic_fusion", "systems": [...], "coef": [...], "intercept": ...}``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"type": "logistic_fusion", "systems": self.systems, **self.calibrator.to_dict()}
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> LogisticFusion:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.pop("type", None) != "logistic_fusion" or "systems" not in data:
            raise ValueError(f"{path} is not a saved LogisticFusion")
        systems = data.pop("systems")
        calibrator = LogisticCalibrator.from_dict(data, source=path)
        try:
            return cls(systems, calibrator)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


class FusedDetector(Detector):
    """Several detectors scored together and fused: itself a Detector."""

    def __init__(self, detectors: Mapping[str, Detector], fusion: LogisticFusion, name: str = "fusion"):
        unknown = set(fusion.systems) - set(detectors)
        if unknown:
            raise ValueError(f"no detector given for fused system(s) {', '.join(sorted(unknown))}")
        self.detectors = dict(detectors)
        self.fusion = fusion
        self.name = name

    def system_scores(self, clips: Sequence[Clip]) -> dict[str, np.ndarray]:
        clips = as_clips(clips)  # decode once for every system
        return {name: self.detectors[name].score(clips) for name in self.fusion.systems}

    def score(self, clips: Sequence[Clip]) -> np.ndarray:
        return self.fusion.predict(self.system_scores(clips))


def _features(scores: Mapping[str, Sequence[float]], systems: list[str], n: int) -> np.ndarray:
    cols = []
    for name in systems:
        p = np.asarray(scores[name], dtype=np.float64)
        if p.shape != (n,):
            raise ValueError(f"{name}: expected {n} scores, got shape {p.shape}")
        if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
            raise ValueError(f"{name}: scores must be probabilities P(spoof) in [0, 1]")
        cols.append(log_odds(p))
    return np.stack(cols, axis=1)

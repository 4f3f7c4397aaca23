"""The one logistic calibrator: P(spoof) = sigmoid(coef . z + intercept) over a feature vector.

``z`` is the feature vector standardised by the training mean and scale when the calibrator was fitted with
``standardise=True`` (the default detector's head over Whisper features), or the features as they are (score
fusion over detectors' log-odds, :mod:`apallm.fusion`). A feature that is NaN (not measured) reads as the
training mean: its standardised value is 0. The fitted numbers are plain arrays, saved as safetensors or
JSON-ready dicts, never pickled.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from apallm.verdict import BONAFIDE, SPOOF

#: the arrays of a calibrator, in the order they are written
KEYS = ("mean", "scale", "coef", "intercept")


def spoof_indicator(labels: Sequence) -> np.ndarray:
    """``labels`` (``bonafide``/``spoof``, 0/1 or booleans; 1 = spoof) as a 0/1 integer array."""
    array = np.asarray(labels)
    if array.dtype.kind in "biu" and np.isin(array, (0, 1)).all():
        return array.astype(int).reshape(-1)
    out = []
    for value in labels:
        if isinstance(value, str):
            if value not in (BONAFIDE, SPOOF):
                raise ValueError(f"unknown label {value!r}: use bonafide or spoof")
            out.append(int(value == SPOOF))
        elif value in (0, 1):  # also True/False and numpy integers
            out.append(int(value))
        else:
            raise ValueError(f"unknown label {value!r}: use bonafide or spoof (or 0/1, 1 = spoof)")
    return np.array(out, dtype=int)


def standardisation(features: np.ndarray, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and scale (standard deviation) of ``features``, NaN ignored, rows weighted by
    ``weights`` (``(n,)``, >= 0) when given; a constant column gets scale 1, so it standardises to 0."""
    x = np.asarray(features, dtype=np.float64)
    if weights is None:
        scale = np.nanstd(x, axis=0)
        return np.nanmean(x, axis=0), np.where(scale > 1e-8, scale, 1.0)
    w = np.asarray(weights, dtype=np.float64)
    finite = np.isfinite(x)
    total = w @ finite
    mean = (w @ np.where(finite, x, 0.0)) / total
    scale = np.sqrt((w @ np.where(finite, x - mean, 0.0) ** 2) / total)
    return mean, np.where(scale > 1e-8, scale, 1.0)


@dataclass
class LogisticCalibrator:
    """Logistic regression over a feature vector, with optional standardisation (see the module docstring)."""

    coef: np.ndarray
    intercept: float
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def __post_init__(self):
        self.coef = np.asarray(self.coef, dtype=np.float64)
        self.intercept = float(self.intercept)
        if self.coef.ndim != 1:
            raise ValueError(f"coef must be one weight per feature, got shape {self.coef.shape}")
        if (self.mean is None) != (self.scale is None):
            raise ValueError("give both mean and scale (standardised) or neither")
        if self.mean is not None:
            self.mean = np.asarray(self.mean, dtype=np.float64)
            self.scale = np.asarray(self.scale, dtype=np.float64)
            if not (self.mean.shape == self.scale.shape == self.coef.shape):
                raise ValueError(f"mean, scale and coef differ in shape: {self.mean.shape}, {self.scale.shape}, "
                                 f"{self.coef.shape}")

    @property
    def standardised(self) -> bool:
        return self.mean is not None

    def logit(self, features: np.ndarray) -> np.ndarray:
        """The log-odds of spoof for each row of ``features`` (``(n, len(coef))``)."""
        z = np.asarray(features, dtype=np.float64)
        if self.standardised:
            z = (z - self.mean) / self.scale
        z = np.where(np.isfinite(z), z, 0.0)
        return z @ self.coef + self.intercept

    def predict(self, features: np.ndarray) -> np.ndarray:
        """P(spoof) for each row of ``features``."""
        return 1.0 / (1.0 + np.exp(-self.logit(features)))

    @classmethod
    def fit(cls, features: np.ndarray, labels: Sequence, c: float = 1.0, *, standardise: bool = True,
            balanced: bool = True, sample_weight=None, row_weight=None) -> LogisticCalibrator:
        """L2-regularised logistic regression (scikit-learn, inverse strength ``c``) on ``features``
        (``(n, d)``; NaN allowed when standardising) and ``labels`` (see :func:`spoof_indicator`).
        ``balanced`` weighs the two classes equally. ``row_weight`` (``(n,)``) weighs the rows in the
        standardisation (by default each row counts once): rows that are n views of one example, each of
        ``row_weight`` and ``sample_weight`` 1/n of the example's, fit as the example alone would."""
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(features, dtype=np.float64)
        y = spoof_indicator(labels)
        if x.ndim != 2 or len(x) != len(y):
            raise ValueError(f"features must be (n, d) with one row per label: got {x.shape} for {len(y)} labels")
        if len(set(y.tolist())) < 2:
            raise ValueError("a logistic calibrator needs both labels (bonafide and spoof) in its training set")
        mean = scale = None
        if standardise:
            mean, scale = standardisation(x, row_weight)
            x = np.nan_to_num((x - mean) / scale, nan=0.0)
        model = LogisticRegression(C=c, class_weight="balanced" if balanced else None, max_iter=5000)
        model.fit(x, y, sample_weight=sample_weight)
        return cls(model.coef_[0].astype(np.float64), float(model.intercept_[0]), mean, scale)

    def to_dict(self) -> dict:
        """JSON-ready: ``coef`` and ``intercept``, plus ``mean`` and ``scale`` when standardised."""
        out = {"coef": self.coef.tolist(), "intercept": self.intercept}
        if self.standardised:
            out.update(mean=self.mean.tolist(), scale=self.scale.tolist())
        return out

    @classmethod
    def from_dict(cls, data: dict, source: str | os.PathLike | None = None) -> LogisticCalibrator:
        """The calibrator :meth:`to_dict` (or :meth:`save`'s arrays) describe; ``source`` names it in errors."""
        where = f"{source}: " if source is not None else ""
        missing = [k for k in ("coef", "intercept") if k not in data]
        unknown = sorted(set(data) - set(KEYS))
        if missing or unknown:
            problem = f"missing {missing}" if missing else f"unknown keys {unknown}"
            raise ValueError(f"{where}not a logistic calibrator ({problem}; the keys are {', '.join(KEYS)})")
        intercept = np.asarray(data["intercept"], dtype=np.float64).reshape(-1)
        if intercept.shape != (1,):
            raise ValueError(f"{where}intercept must be one number, got {intercept.size}")
        try:
            return cls(data["coef"], intercept[0], data.get("mean"), data.get("scale"))
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the arrays as safetensors (``intercept`` a one-element array)."""
        from safetensors.numpy import save_file

        tensors = {"coef": self.coef, "intercept": np.array([self.intercept])}
        if self.standardised:
            tensors = {"mean": self.mean, "scale": self.scale, **tensors}
        # no metadata: safetensors writes its keys in no fixed order, and the same head should give the same bytes
        save_file(tensors, str(path))

    @classmethod
    def load(cls, path: str | os.PathLike) -> LogisticCalibrator:
        from safetensors.numpy import load_file

        return cls.from_dict(load_file(str(path)), source=path)

"""Counts and duration statistics of a manifest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from apallm.datasets.manifest import ManifestEntry
from apallm.verdict import LABELS

#: percentiles reported for durations
PERCENTILES = (5, 25, 50, 75, 95)
#: how a null attack/split/dataset value is counted
NULL = "null"


def _counts(values) -> dict[str, int]:
    counter = Counter(NULL if v is None else v for v in values)
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _by_label(entries: Sequence[ManifestEntry], key: str) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for entry in entries:
        value = getattr(entry, key)
        row = table.setdefault(NULL if value is None else value, dict.fromkeys(LABELS, 0))
        row[entry.label] += 1
    return dict(sorted(table.items()))


def _durations(values: list[float]) -> dict:
    if not values:
        return {"known": 0, "total_s": 0.0, "total_h": 0.0}
    array = np.asarray(values, dtype=np.float64)
    total = float(array.sum())
    stats = {"known": len(values), "total_s": round(total, 3), "total_h": round(total / 3600, 4),
             "mean_s": round(float(array.mean()), 4), "min_s": round(float(array.min()), 4)}
    for p, value in zip(PERCENTILES, np.percentile(array, PERCENTILES), strict=True):
        stats[f"p{p}_s"] = round(float(value), 4)
    stats["max_s"] = round(float(array.max()), 4)
    return stats


def manifest_stats(entries: Sequence[ManifestEntry]) -> dict:
    """Counts per label, attack, split and dataset (and label by split and by dataset), and durations.

    ``duration`` summarises every entry with a known duration (total, mean, min, percentiles 5-95 by
    linear interpolation, max) and counts the ``missing`` ones; ``duration_by_label`` does the same per
    label. Null attack/split/dataset values are counted under ``"null"``.
    """
    known = [e for e in entries if e.duration is not None]
    duration = _durations([e.duration for e in known])
    duration["missing"] = len(entries) - len(known)
    return {
        "entries": len(entries),
        "label": {label: sum(e.label == label for e in entries) for label in LABELS},
        "attack": _counts(e.attack for e in entries),
        "split": _counts(e.split for e in entries),
        "dataset": _counts(e.dataset for e in entries),
        "label_by_split": _by_label(entries, "split"),
        "label_by_dataset": _by_label(entries, "dataset"),
        "duration": duration,
        "duration_by_label": {label: _durations([e.duration for e in known if e.label == label]) for label in LABELS},
    }

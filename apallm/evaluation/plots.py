"""DET curve and score histograms as PNG files, drawn with matplotlib's Agg renderer (no display, no pyplot)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import norm

from apallm import metrics

__all__ = ["plot_det", "plot_histograms"]

#: the normal-deviate axes span these error rates; rates outside are drawn at the edge
DET_LIMITS = (1e-4, 0.99)
DET_TICKS = (0.0001, 0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99)
_COLOURS = {"bonafide": "#1b7837", "spoof": "#c51b7d"}


def _corners(frr: np.ndarray, far: np.ndarray) -> np.ndarray:
    """Indices of the DET points where the step curve turns (plus both ends): the same curve, far fewer points."""
    bona_step = np.diff(frr) > 0
    turns = np.flatnonzero(bona_step[1:] != bona_step[:-1]) + 1
    return np.concatenate(([0], turns, [frr.size - 1]))


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120)
    return Path(path)


def plot_det(bonafide_scores, spoof_scores, path: str | os.PathLike, title: str = "DET curve") -> Path:
    """Draw the DET curve (:func:`apallm.metrics.det_curve`) on normal-deviate axes with the EER point marked.

    x: false acceptance rate (spoof accepted), y: false rejection rate (bona fide rejected), both in %.
    """
    frr, far, _ = metrics.det_curve(bonafide_scores, spoof_scores)
    eer, _ = metrics.compute_eer(bonafide_scores, spoof_scores)
    keep = _corners(frr, far)
    dev = lambda p: norm.ppf(np.clip(p, *DET_LIMITS))

    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.add_subplot()
    ax.plot(dev(far[keep]), dev(frr[keep]), color="#2166ac", linewidth=1.5, label="CM")
    limit = dev(np.array(DET_LIMITS))
    ax.plot(limit, limit, color="0.6", linestyle="--", linewidth=0.8, label="FRR = FAR")
    ax.plot(dev(eer), dev(eer), "o", color="#b2182b", markersize=7, label=f"EER = {100 * eer:.2f} %")
    ticks = dev(np.array(DET_TICKS))
    labels = [f"{100 * t:g}" for t in DET_TICKS]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlim(*limit)
    ax.set_ylim(*limit)
    ax.set_xlabel("False acceptance rate: spoof accepted (%)")
    ax.set_ylabel("False rejection rate: bona fide rejected (%)")
    ax.set_title(title)
    ax.grid(True, color="0.85", linewidth=0.6)
    ax.legend(loc="upper right", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_histograms(bonafide_scores, spoof_scores, path: str | os.PathLike, threshold: float | None = None,
                    title: str = "Score distributions") -> Path:
    """Draw per-label score histograms (density, shared bins), with a threshold line (e.g. the EER's)."""
    bona = np.asarray(bonafide_scores, dtype=np.float64)
    spoof = np.asarray(spoof_scores, dtype=np.float64)
    edges = np.histogram_bin_edges(np.concatenate((bona, spoof)), bins=min(100, max(10, int(np.sqrt(bona.size
                                                                                                  + spoof.size)))))
    fig = Figure(figsize=(6.5, 4.0))
    ax = fig.add_subplot()
    for label, values in (("bonafide", bona), ("spoof", spoof)):
        ax.hist(values, bins=edges, density=True, alpha=0.55, color=_COLOURS[label],
                label=f"{label} (n = {values.size})")
    if threshold is not None:
        ax.axvline(threshold, color="0.2", linestyle="--", linewidth=1.0, label=f"EER threshold {threshold:.3g}")
    ax.set_xlabel("CM score (higher = more bona fide)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return _save(fig, path)

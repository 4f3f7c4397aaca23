"""Detection metrics for spoofing countermeasure (CM) scores, with ASVspoof semantics.

Every function takes the scores of the two classes separately, ``bonafide_scores`` and
``spoof_scores`` (1-D, numpy-like: lists, numpy arrays, CPU torch tensors), where a
**higher score means more bona fide**. Bona fide speech is the *target* (positive) class:

* a **miss** (false rejection) is a bona fide trial rejected,
* a **false alarm** (false acceptance) is a spoof trial accepted.

The metrics reproduce the definitions of the official ASVspoof evaluation packages
(ASVspoof 2019/2021 ``eval_metrics.py`` and the ASVspoof 5 ``calculate_modules.py`` /
``calculate_metrics.py``), re-implemented here:

* :func:`det_curve` and :func:`compute_eer`: the step DET curve over every trial and the
  EER taken at the DET point where the two error rates are closest (no interpolation).
* :func:`compute_min_dcf` / :func:`compute_act_dcf`: the ASVspoof 5 normalised DCF
  (``Pspoof = 0.05``, ``Cmiss = 1``, ``Cfa = 10``).
* :func:`compute_cllr`: the log-likelihood-ratio cost in bits.
* :func:`compute_tdcf`: the normalised tandem DCF of ASVspoof 2021 / ASVspoof 5 with the
  ASVspoof 5 organisers' ASV error rates.

Plus threshold metrics (:func:`accuracy`, :func:`balanced_accuracy`, :func:`macro_f1`), a
bootstrap confidence interval for the EER (:func:`bootstrap_eer_ci`) and a JSON-ready
summary (:func:`compute_metrics`).

Every function raises :class:`ValueError` when a class has no scores, when the scores are
not a 1-D numeric array, or when any score is NaN or infinite.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DET_LEADING_OFFSET",
    "DCF_P_SPOOF",
    "DCF_C_MISS",
    "DCF_C_FA",
    "TDCF_P_SPOOF",
    "TDCF_P_TARGET",
    "TDCF_P_NONTARGET",
    "TDCF_C_MISS",
    "TDCF_C_FA",
    "TDCF_C_FA_SPOOF",
    "ASV_PFA",
    "ASV_PMISS",
    "ASV_PFA_SPOOF",
    "TDCFResult",
    "det_curve",
    "compute_eer",
    "compute_min_dcf",
    "compute_act_dcf",
    "bayes_threshold",
    "compute_cllr",
    "compute_tdcf",
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "bootstrap_eer_ci",
    "compute_metrics",
]

#: The DET curve's leading point (nothing rejected) sits this far below the lowest score.
DET_LEADING_OFFSET = 0.001

# ASVspoof 5 (phase 1) DCF cost model, as in the ASVspoof 5 evaluation package.
#: Prior probability of a spoofing attack.
DCF_P_SPOOF = 0.05
#: Cost of rejecting a bona fide trial.
DCF_C_MISS = 1.0
#: Cost of accepting a spoof trial.
DCF_C_FA = 10.0

# t-DCF cost model shared by the ASVspoof 2021 and ASVspoof 5 evaluation packages.
#: Prior probability of a spoofing attack.
TDCF_P_SPOOF = 0.05
#: Prior probability of a target (bona fide, claimed speaker) trial: (1 - Pspoof) * 0.99.
TDCF_P_TARGET = (1.0 - TDCF_P_SPOOF) * 0.99
#: Prior probability of a zero-effort non-target trial: (1 - Pspoof) * 0.01.
TDCF_P_NONTARGET = (1.0 - TDCF_P_SPOOF) * 0.01
#: Cost of the tandem system rejecting a target trial.
TDCF_C_MISS = 1.0
#: Cost of the tandem system accepting a non-target trial.
TDCF_C_FA = 10.0
#: Cost of the tandem system accepting a spoof trial.
TDCF_C_FA_SPOOF = 10.0

# Error rates of the organisers' ASV system at its EER threshold, pooled over all
# conditions: the pre-computed defaults of the ASVspoof 5 evaluation package.
#: ASV false-alarm rate on non-target trials.
ASV_PFA = 0.01881016557566423
#: ASV miss rate on target trials.
ASV_PMISS = 0.01880141010575793
#: ASV false-alarm rate on spoof trials (the ASV miss rate on spoofs is 1 - this).
ASV_PFA_SPOOF = 0.4607082907604729

_Floats = NDArray[np.float64]

# Upper bound on the number of matrix elements one bootstrap batch holds.
_BOOTSTRAP_BATCH_ELEMENTS = 4_000_000


# --------------------------------------------------------------------------- validation


def _as_scores(values: ArrayLike, name: str) -> _Floats:
    """Return ``values`` as a finite, non-empty, 1-D float64 array or raise ValueError."""
    if hasattr(values, "detach"):  # a torch tensor, possibly on an accelerator or with grad
        values = values.detach().cpu().numpy()  # type: ignore[union-attr]
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric scores: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of scores, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: every metric needs at least one score in each class")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"{name} contains {bad.size} non-finite score(s) (NaN or inf); "
            f"first at index {int(bad[0])}: {arr[bad[0]]!r}"
        )
    return arr


def _pair(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> tuple[_Floats, _Floats]:
    return _as_scores(bonafide_scores, "bonafide_scores"), _as_scores(spoof_scores, "spoof_scores")


def _check_threshold(threshold: float) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"threshold must be a real number, got {threshold!r}") from exc
    if not math.isfinite(value):
        raise ValueError(f"threshold must be finite, got {value!r}")
    return value


def _check_dcf_params(p_spoof: float, c_miss: float, c_fa: float) -> tuple[float, float, float]:
    p_spoof, c_miss, c_fa = float(p_spoof), float(c_miss), float(c_fa)
    if not 0.0 < p_spoof < 1.0:
        raise ValueError(f"p_spoof must lie strictly between 0 and 1, got {p_spoof!r}")
    if not (math.isfinite(c_miss) and c_miss > 0.0):
        raise ValueError(f"c_miss must be a positive finite cost, got {c_miss!r}")
    if not (math.isfinite(c_fa) and c_fa > 0.0):
        raise ValueError(f"c_fa must be a positive finite cost, got {c_fa!r}")
    return p_spoof, c_miss, c_fa


# --------------------------------------------------------------------------- DET and EER


def _det(bona: _Floats, spoof: _Floats) -> tuple[_Floats, _Floats, _Floats]:
    """DET curve of already validated score arrays (see :func:`det_curve`)."""
    n_bona, n_spoof = bona.size, spoof.size
    scores = np.concatenate((bona, spoof))
    # Stable sort: among equal scores, bona fide (concatenated first) precede spoof, and
    # each class keeps its input order.
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    bona_rejected = np.cumsum(order < n_bona, dtype=np.float64)
    spoof_rejected = np.arange(1, scores.size + 1, dtype=np.float64) - bona_rejected
    frr = np.empty(scores.size + 1)
    far = np.empty(scores.size + 1)
    thresholds = np.empty(scores.size + 1)
    frr[0], far[0], thresholds[0] = 0.0, 1.0, sorted_scores[0] - DET_LEADING_OFFSET
    frr[1:] = bona_rejected / n_bona
    far[1:] = (n_spoof - spoof_rejected) / n_spoof
    thresholds[1:] = sorted_scores
    return frr, far, thresholds


def det_curve(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> tuple[_Floats, _Floats, _Floats]:
    """Step DET curve over every trial, as ASVspoof's ``compute_det_curve``.

    All ``N = n_bonafide + n_spoof`` scores are concatenated (bona fide first) and sorted
    with a *stable* sort. Point ``0`` is the leading point ``frr = 0, far = 1`` (nothing
    rejected) at threshold ``min(score) - 0.001``; point ``i >= 1`` rejects the first ``i``
    trials of the sorted order, so ``frr[i]`` is the fraction of bona fide trials among
    them and ``far[i]`` the fraction of spoof trials not among them, at
    ``thresholds[i]`` = the ``i``-th smallest score. There is no interpolation and no
    merging of points: the arrays have ``N + 1`` entries, ``frr`` rises from 0 to 1 and
    ``far`` falls from 1 to 0.

    Without ties, point ``i`` is the operating point "accept as bona fide iff
    ``score > thresholds[i]``" (note the strict inequality: the DET thresholds reject
    scores *equal* to them, unlike :func:`compute_act_dcf` and :func:`accuracy`, which
    accept ``score >= threshold``).

    **Ties.** Tied scores are *not* merged into one DET point: each trial is its own
    point. Because the sort is stable and bona fide scores are concatenated before spoof
    scores, a group of ``b`` bona fide and ``s`` spoof trials sharing the score ``v`` is
    walked bona fide first: ``b`` points raise ``frr`` one bona fide trial at a time while
    ``far`` stays put, then ``s`` points lower ``far`` one spoof trial at a time, all with
    threshold ``v``. Only the group's last point, ``frr = #(bona <= v) / n_bonafide``,
    ``far = #(spoof > v) / n_spoof``, is reached by a real threshold (reject ``<= v``); the
    points inside the group are fractional decisions on the tied trials, and the corner
    one (all tied bona fide rejected, all tied spoof still accepted) is the *pessimistic*
    one: it is worse than both real operating points around it. Worked example, bona fide
    ``[1, 2, 2, 3]``, spoof ``[0, 2, 2, 5]``: the points at threshold 2 are
    ``(frr, far) = (0.5, 0.75), (0.75, 0.75), (0.75, 0.5), (0.75, 0.25)``. The
    :func:`compute_eer` of that example is therefore 0.75, taken at the corner, and a
    system giving every trial the same score has an EER of 1.0 (point ``frr = far = 1``),
    exactly as the reference computes. Minimum DCF and minimum t-DCF are not affected:
    intra-group points never cost less than the group's end points. Results do not depend
    on the order of the trials within each class, only on the class of tied trials.

    Args:
        bonafide_scores: scores of the bona fide (target) trials.
        spoof_scores: scores of the spoof (non-target) trials.

    Returns:
        ``(frr, far, thresholds)``: three float64 arrays of length ``N + 1``.

    Raises:
        ValueError: a class is empty, not 1-D, or has a NaN/inf score.

    Complexity: O(N log N).
    """
    return _det(*_pair(bonafide_scores, spoof_scores))


def _eer_from_det(frr: _Floats, far: _Floats, thresholds: _Floats) -> tuple[float, float]:
    index = int(np.argmin(np.abs(frr - far)))  # first index of the minimum, as np.argmin
    return 0.5 * (float(frr[index]) + float(far[index])), float(thresholds[index])


def compute_eer(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> tuple[float, float]:
    """Equal error rate, as ASVspoof's ``compute_eer``.

    Takes the :func:`det_curve` point ``i`` with the smallest ``|frr[i] - far[i]|`` (the
    first such point, i.e. the lowest threshold, when several are equally close) and
    returns ``eer = (frr[i] + far[i]) / 2`` with ``thresholds[i]``. No interpolation
    between DET points. See :func:`det_curve` for how tied scores are handled (they can
    make the EER pessimistic: a constant scorer gets 1.0).

    Perfect separation (every bona fide score above every spoof score) gives 0.0 at the
    highest spoof score; a fully swapped system gives 1.0 at the highest bona fide score.

    Args:
        bonafide_scores: scores of the bona fide trials (higher = more bona fide).
        spoof_scores: scores of the spoof trials.

    Returns:
        ``(eer, threshold)``: the EER as a fraction in ``[0, 1]`` and its DET threshold.

    Raises:
        ValueError: a class is empty, not 1-D, or has a NaN/inf score.
    """
    return _eer_from_det(*det_curve(bonafide_scores, spoof_scores))


# --------------------------------------------------------------------------- DCF


def bayes_threshold(
    p_spoof: float = DCF_P_SPOOF, c_miss: float = DCF_C_MISS, c_fa: float = DCF_C_FA
) -> float:
    """Bayes decision threshold for CM scores that are natural-log likelihood ratios.

    Accepting a trial as bona fide costs ``c_fa * p_spoof * P(spoof | x)`` in expectation,
    rejecting it ``c_miss * (1 - p_spoof) * P(bona | x)``; accepting is cheaper when
    ``LLR >= log(c_fa * p_spoof / (c_miss * (1 - p_spoof)))`` (``= -log(beta)`` with
    ASVspoof 5's ``beta = c_miss (1 - p_spoof) / (c_fa p_spoof)``). For the ASVspoof 5
    defaults this is ``log(0.5 / 0.95) ~= -0.6419``.
    """
    p_spoof, c_miss, c_fa = _check_dcf_params(p_spoof, c_miss, c_fa)
    return math.log(c_fa * p_spoof) - math.log(c_miss * (1.0 - p_spoof))


def compute_min_dcf(
    bonafide_scores: ArrayLike,
    spoof_scores: ArrayLike,
    p_spoof: float = DCF_P_SPOOF,
    c_miss: float = DCF_C_MISS,
    c_fa: float = DCF_C_FA,
) -> tuple[float, float]:
    """Minimum normalised detection cost over the DET thresholds (ASVspoof 5 ``minDCF``).

    ``DCF(i) = c_miss * (1 - p_spoof) * frr[i] + c_fa * p_spoof * far[i]`` on every
    :func:`det_curve` point, minimised (first minimum on ties), then divided by the cost
    of the best trivial system, ``min(c_miss * (1 - p_spoof), c_fa * p_spoof)`` (accept
    everything or reject everything). The DET curve contains both trivial operating
    points, so the result is always in ``[0, 1]``. Defaults are ASVspoof 5's:
    ``p_spoof = 0.05``, ``c_miss = 1``, ``c_fa = 10`` (normaliser 0.5).

    Returns:
        ``(min_dcf, threshold)``: the normalised minimum and its DET threshold.

    Raises:
        ValueError: bad scores (see :func:`det_curve`), ``p_spoof`` outside ``(0, 1)``, or
        a non-positive cost.
    """
    p_spoof, c_miss, c_fa = _check_dcf_params(p_spoof, c_miss, c_fa)
    frr, far, thresholds = det_curve(bonafide_scores, spoof_scores)
    # Same floating-point order as the reference (which works from P(bona) = 1 - Pspoof and
    # takes 1 - P(bona) for the spoof prior), so the values agree to the last bit.
    p_bona = 1.0 - p_spoof
    p_spoof_ref = 1.0 - p_bona
    cost = c_miss * frr * p_bona + c_fa * far * p_spoof_ref
    index = int(np.argmin(cost))
    normaliser = min(c_miss * p_bona, c_fa * p_spoof_ref)
    return float(cost[index]) / normaliser, float(thresholds[index])


def compute_act_dcf(
    bonafide_scores: ArrayLike,
    spoof_scores: ArrayLike,
    p_spoof: float = DCF_P_SPOOF,
    c_miss: float = DCF_C_MISS,
    c_fa: float = DCF_C_FA,
) -> tuple[float, float]:
    """Actual normalised DCF at the Bayes threshold for LLR scores (ASVspoof 5 ``actDCF``).

    The scores are read as natural-log likelihood ratios (bona fide vs spoof) and decided
    at :func:`bayes_threshold` ``t = log(c_fa * p_spoof / (c_miss * (1 - p_spoof)))``: a
    trial is accepted as bona fide iff ``score >= t``. Then
    ``Pmiss = #(bona < t) / n_bonafide``, ``Pfa = #(spoof >= t) / n_spoof`` and the cost
    ``c_miss * (1 - p_spoof) * Pmiss + c_fa * p_spoof * Pfa`` is normalised as in
    :func:`compute_min_dcf`. Always ``>= compute_min_dcf`` for the same arguments, and
    equal to it only for well calibrated scores.

    Returns:
        ``(act_dcf, threshold)``.

    Raises:
        ValueError: as :func:`compute_min_dcf`.
    """
    bona, spoof = _pair(bonafide_scores, spoof_scores)
    threshold = bayes_threshold(p_spoof, c_miss, c_fa)
    p_spoof, c_miss, c_fa = float(p_spoof), float(c_miss), float(c_fa)
    p_miss = np.count_nonzero(bona < threshold) / bona.size
    p_fa = np.count_nonzero(spoof >= threshold) / spoof.size
    cost = c_miss * (1.0 - p_spoof) * p_miss + c_fa * p_spoof * p_fa
    return cost / min(c_miss * (1.0 - p_spoof), c_fa * p_spoof), threshold


# --------------------------------------------------------------------------- Cllr


def compute_cllr(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> float:
    """Log-likelihood-ratio cost in bits, as ASVspoof 5's ``calculate_CLLR``.

    The scores are read as natural-log LLRs (bona fide vs spoof):

        Cllr = ( mean_bona log2(1 + e^-s) + mean_spoof log2(1 + e^s) ) / 2

    computed as ``np.logaddexp(0, -s)`` so scores of any finite size (e.g. +-1000) neither
    overflow nor lose precision. 0 is a perfect, confident system; 1 bit is the
    uninformative system that always outputs LLR 0; above 1 bit the scores are
    mis-calibrated (worse than saying nothing).

    Raises:
        ValueError: a class is empty, not 1-D, or has a NaN/inf score.
    """
    bona, spoof = _pair(bonafide_scores, spoof_scores)
    bona_nats = float(np.mean(np.logaddexp(0.0, -bona)))
    spoof_nats = float(np.mean(np.logaddexp(0.0, spoof)))
    return 0.5 * (bona_nats + spoof_nats) / math.log(2.0)


# --------------------------------------------------------------------------- t-DCF


class TDCFResult(NamedTuple):
    """Result of :func:`compute_tdcf`."""

    #: Minimum normalised t-DCF over the CM's DET thresholds.
    min_tdcf: float
    #: DET threshold at which the minimum is reached (first one on ties).
    min_threshold: float
    #: Normalised t-DCF at the requested threshold, or None when none was given.
    tdcf: float | None
    #: The requested threshold, or None.
    threshold: float | None
    #: The normalised t-DCF of an error-free CM, ``C0 / (C0 + min(C1, C2))``: the floor.
    floor: float


def compute_tdcf(
    bonafide_scores: ArrayLike,
    spoof_scores: ArrayLike,
    threshold: float | None = None,
    *,
    pfa_asv: float = ASV_PFA,
    pmiss_asv: float = ASV_PMISS,
    pfa_spoof_asv: float = ASV_PFA_SPOOF,
    p_target: float = TDCF_P_TARGET,
    p_nontarget: float = TDCF_P_NONTARGET,
    p_spoof: float = TDCF_P_SPOOF,
    c_miss: float = TDCF_C_MISS,
    c_fa: float = TDCF_C_FA,
    c_fa_spoof: float = TDCF_C_FA_SPOOF,
) -> TDCFResult:
    """Normalised tandem detection cost function (t-DCF) of a CM in front of a fixed ASV.

    This is the revised t-DCF of Kinnunen et al. (IEEE/ACM TASLP 2020) used by the
    ASVspoof 2021 evaluation package and by the ASVspoof 5 package's ``compute_tDCF``
    (not the ASVspoof 2019 "legacy" form without ``C0``). With the CM miss rate
    ``Pmiss_cm`` (bona fide rejected) and false-alarm rate ``Pfa_cm`` (spoof accepted):

        C0 = p_target * c_miss * pmiss_asv + p_nontarget * c_fa * pfa_asv
        C1 = p_target * c_miss - C0
        C2 = p_spoof * c_fa_spoof * pfa_spoof_asv
        t-DCF_norm = (C0 + C1 * Pmiss_cm + C2 * Pfa_cm) / (C0 + min(C1, C2))

    The denominator is the cost of the better of the two trivial CMs (accept all / reject
    all), so the minimum is at most 1; an error-free CM reaches the floor
    ``C0 / (C0 + min(C1, C2))``.

    Defaults (the ASVspoof 5 evaluation package, ``calculate_metrics.py``, phase 2):

    * cost model, also that of the ASVspoof 2021 package: ``p_spoof = 0.05``,
      ``p_target = 0.95 * 0.99 = 0.9405``, ``p_nontarget = 0.95 * 0.01 = 0.0095``,
      ``c_miss = 1``, ``c_fa = 10``, ``c_fa_spoof = 10``;
    * ASV error rates of the organisers' ASV system at its EER threshold, pre-computed
      and pooled over all conditions: ``pfa_asv = 0.01881016557566423``,
      ``pmiss_asv = 0.01880141010575793``, ``pfa_spoof_asv = 0.4607082907604729`` (the ASV
      miss rate on spoofs, ``Pmiss_spoof_asv``, is ``1 - pfa_spoof_asv = 0.5392917...``).
      The ASVspoof 2021 package computes its ASV rates from its own ASV score files
      instead; pass those here to reproduce a 2021 number.

    The minimum runs over the :func:`det_curve` points (``Pmiss_cm = frr``,
    ``Pfa_cm = far``). When ``threshold`` is given, the t-DCF is also evaluated there with
    the "accept iff ``score >= threshold``" rule: ``Pmiss_cm = #(bona < threshold) / n``,
    ``Pfa_cm = #(spoof >= threshold) / n``. Unlike the reference, which exits when the CM
    scores take fewer than 3 distinct values, hard decisions are accepted.

    Returns:
        :class:`TDCFResult` ``(min_tdcf, min_threshold, tdcf, threshold, floor)``.

    Raises:
        ValueError: bad scores; priors negative or not summing to 1; a rate outside
        ``[0, 1]``; a negative weight ``C0``, ``C1`` or ``C2``; a zero denominator.
    """
    bona, spoof = _pair(bonafide_scores, spoof_scores)
    params = {
        "pfa_asv": pfa_asv,
        "pmiss_asv": pmiss_asv,
        "pfa_spoof_asv": pfa_spoof_asv,
        "p_target": p_target,
        "p_nontarget": p_nontarget,
        "p_spoof": p_spoof,
        "c_miss": c_miss,
        "c_fa": c_fa,
        "c_fa_spoof": c_fa_spoof,
    }
    values = {key: float(value) for key, value in params.items()}
    for key, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{key} must be finite, got {value!r}")
    for key in ("pfa_asv", "pmiss_asv", "pfa_spoof_asv", "p_target", "p_nontarget", "p_spoof"):
        if not 0.0 <= values[key] <= 1.0:
            raise ValueError(f"{key} must lie in [0, 1], got {values[key]!r}")
    for key in ("c_miss", "c_fa", "c_fa_spoof"):
        if values[key] < 0.0:
            raise ValueError(f"{key} must be a non-negative cost, got {values[key]!r}")
    prior_sum = values["p_target"] + values["p_nontarget"] + values["p_spoof"]
    if abs(prior_sum - 1.0) > 1e-10:
        raise ValueError(f"p_target + p_nontarget + p_spoof must sum to 1, got {prior_sum!r}")

    c0 = values["p_target"] * values["c_miss"] * values["pmiss_asv"] + (
        values["p_nontarget"] * values["c_fa"] * values["pfa_asv"]
    )
    c1 = values["p_target"] * values["c_miss"] - c0
    c2 = values["p_spoof"] * values["c_fa_spoof"] * values["pfa_spoof_asv"]
    if c0 < 0.0 or c1 < 0.0 or c2 < 0.0:
        raise ValueError(
            f"t-DCF weights must be non-negative (C0={c0!r}, C1={c1!r}, C2={c2!r}): "
            "check the ASV error rates and the cost model"
        )
    normaliser = c0 + min(c1, c2)
    if normaliser <= 0.0:
        raise ValueError("the t-DCF of a trivial CM is 0 with these parameters: it cannot be normalised")

    frr, far, thresholds = _det(bona, spoof)
    curve = (c0 + c1 * frr + c2 * far) / normaliser
    index = int(np.argmin(curve))

    at_threshold: float | None = None
    checked_threshold: float | None = None
    if threshold is not None:
        checked_threshold = _check_threshold(threshold)
        p_miss = np.count_nonzero(bona < checked_threshold) / bona.size
        p_fa = np.count_nonzero(spoof >= checked_threshold) / spoof.size
        at_threshold = (c0 + c1 * p_miss + c2 * p_fa) / normaliser
    return TDCFResult(
        min_tdcf=float(curve[index]),
        min_threshold=float(thresholds[index]),
        tdcf=at_threshold,
        threshold=checked_threshold,
        floor=c0 / normaliser,
    )


# --------------------------------------------------------------------------- threshold metrics


def _confusion(
    bonafide_scores: ArrayLike, spoof_scores: ArrayLike, threshold: float
) -> tuple[int, int, int, int]:
    """``(bona accepted, bona rejected, spoof accepted, spoof rejected)`` at ``score >= threshold``."""
    bona, spoof = _pair(bonafide_scores, spoof_scores)
    t = _check_threshold(threshold)
    bona_accepted = int(np.count_nonzero(bona >= t))
    spoof_accepted = int(np.count_nonzero(spoof >= t))
    return bona_accepted, bona.size - bona_accepted, spoof_accepted, spoof.size - spoof_accepted


def accuracy(bonafide_scores: ArrayLike, spoof_scores: ArrayLike, threshold: float = 0.0) -> float:
    """Fraction of trials classified correctly, deciding bona fide iff ``score >= threshold``.

    Pooled over both classes, so it follows the class balance of the data. The default
    threshold 0 is the equal-prior, equal-cost Bayes decision for LLR or logit scores.

    Raises:
        ValueError: bad scores, or a non-finite threshold.
    """
    tp, fn, fp, tn = _confusion(bonafide_scores, spoof_scores, threshold)
    return (tp + tn) / (tp + fn + fp + tn)


def balanced_accuracy(bonafide_scores: ArrayLike, spoof_scores: ArrayLike, threshold: float = 0.0) -> float:
    """Mean of the per-class recalls at ``score >= threshold`` → bona fide.

    ``((1 - Pmiss) + (1 - Pfa)) / 2``: insensitive to the class balance; 0.5 for a
    system that accepts or rejects everything.

    Raises:
        ValueError: bad scores, or a non-finite threshold.
    """
    tp, fn, fp, tn = _confusion(bonafide_scores, spoof_scores, threshold)
    return 0.5 * (tp / (tp + fn) + tn / (tn + fp))


def macro_f1(bonafide_scores: ArrayLike, spoof_scores: ArrayLike, threshold: float = 0.0) -> float:
    """Unweighted mean of the bona fide and spoof F1 scores at ``score >= threshold`` → bona fide.

    Each class's F1 is ``2 TP / (2 TP + FP + FN)`` with that class as the positive one;
    the denominator is never zero since both classes are non-empty, and a class that is
    never predicted gets F1 = 0 (scikit-learn's ``zero_division=0`` convention).

    Raises:
        ValueError: bad scores, or a non-finite threshold.
    """
    tp, fn, fp, tn = _confusion(bonafide_scores, spoof_scores, threshold)
    f1_bona = 2 * tp / (2 * tp + fp + fn)
    f1_spoof = 2 * tn / (2 * tn + fn + fp)
    return 0.5 * (f1_bona + f1_spoof)


# --------------------------------------------------------------------------- bootstrap


def _eer_rows(bona: _Floats, spoof: _Floats) -> _Floats:
    """Row-wise :func:`compute_eer` of ``(B, n_bona)`` and ``(B, n_spoof)`` score matrices."""
    n_rows, n_bona = bona.shape
    n_spoof = spoof.shape[1]
    n_total = n_bona + n_spoof
    order = np.argsort(np.concatenate((bona, spoof), axis=1), axis=1, kind="mergesort")
    bona_rejected = np.cumsum(order < n_bona, axis=1, dtype=np.float64)
    spoof_rejected = np.arange(1, n_total + 1, dtype=np.float64) - bona_rejected
    frr = np.empty((n_rows, n_total + 1))
    far = np.empty((n_rows, n_total + 1))
    frr[:, 0], far[:, 0] = 0.0, 1.0
    frr[:, 1:] = bona_rejected / n_bona
    far[:, 1:] = (n_spoof - spoof_rejected) / n_spoof
    index = np.argmin(np.abs(frr - far), axis=1)
    rows = np.arange(n_rows)
    return 0.5 * (frr[rows, index] + far[rows, index])


def bootstrap_eer_ci(
    bonafide_scores: ArrayLike,
    spoof_scores: ArrayLike,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> tuple[float, float]:
    """Percentile bootstrap ``(1 - alpha)`` confidence interval of :func:`compute_eer`.

    Each replicate resamples the bona fide scores and the spoof scores *independently*,
    with replacement, keeping each class's size (a stratified bootstrap: the class
    balance of the evaluation set is fixed). The interval is the ``alpha/2`` and
    ``1 - alpha/2`` percentiles (numpy's linear interpolation) of the ``n_boot``
    replicate EERs.

    Reproducible: the generator is ``numpy.random.default_rng(seed)`` and replicate ``k``
    draws ``rng.integers(0, n_bonafide, n_bonafide)`` then
    ``rng.integers(0, n_spoof, n_spoof)``, replicate after replicate. The replicates are
    evaluated in vectorised batches; cost O(n_boot * N log N).

    Returns:
        ``(low, high)``, fractions in ``[0, 1]``.

    Raises:
        ValueError: bad scores, ``n_boot < 1`` or ``alpha`` outside ``(0, 1)``.
    """
    bona, spoof = _pair(bonafide_scores, spoof_scores)
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    n_boot = int(n_boot)
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")

    rng = np.random.default_rng(seed)
    n_bona, n_spoof = bona.size, spoof.size
    batch = max(1, _BOOTSTRAP_BATCH_ELEMENTS // (n_bona + n_spoof))
    eers = np.empty(n_boot)
    for start in range(0, n_boot, batch):
        stop = min(n_boot, start + batch)
        bona_idx = np.empty((stop - start, n_bona), dtype=np.int64)
        spoof_idx = np.empty((stop - start, n_spoof), dtype=np.int64)
        for row in range(stop - start):
            bona_idx[row] = rng.integers(0, n_bona, n_bona)
            spoof_idx[row] = rng.integers(0, n_spoof, n_spoof)
        eers[start:stop] = _eer_rows(bona[bona_idx], spoof[spoof_idx])
    low, high = np.percentile(eers, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return float(low), float(high)


# --------------------------------------------------------------------------- summary


def compute_metrics(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> dict[str, Any]:
    """All headline metrics with their default settings, as plain JSON-serialisable values.

    Keys: ``eer`` and ``eer_threshold`` (:func:`compute_eer`), ``min_dcf``
    (:func:`compute_min_dcf`), ``act_dcf`` (:func:`compute_act_dcf`, scores read as
    LLRs), ``cllr`` (:func:`compute_cllr`, bits), ``min_tdcf`` (:func:`compute_tdcf` with
    the ASVspoof 5 defaults), all Python floats; ``n_bonafide`` and ``n_spoof``, ints.

    Raises:
        ValueError: a class is empty, not 1-D, or has a NaN/inf score.
    """
    bona, spoof = _pair(bonafide_scores, spoof_scores)
    eer, eer_threshold = compute_eer(bona, spoof)
    return {
        "eer": float(eer),
        "eer_threshold": float(eer_threshold),
        "min_dcf": float(compute_min_dcf(bona, spoof)[0]),
        "act_dcf": float(compute_act_dcf(bona, spoof)[0]),
        "cllr": float(compute_cllr(bona, spoof)),
        "min_tdcf": float(compute_tdcf(bona, spoof).min_tdcf),
        "n_bonafide": int(bona.size),
        "n_spoof": int(spoof.size),
    }

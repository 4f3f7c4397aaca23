"""Tests for apallm.metrics against independent brute-force implementations.

The brute forces below count errors with explicit comparisons, one candidate threshold at
a time, and never sort-and-cumsum like the module does. ``brute_det_sequence`` rebuilds
the DET point order the ASVspoof reference defines (every trial is its own point; inside a
group of tied scores, the bona fide trials are rejected before the spoof trials);
``brute_operating_points`` gives the operating points real thresholds reach.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import apallm.metrics as M
from apallm.metrics import (
    accuracy,
    balanced_accuracy,
    bayes_threshold,
    bootstrap_eer_ci,
    compute_act_dcf,
    compute_cllr,
    compute_eer,
    compute_metrics,
    compute_min_dcf,
    compute_tdcf,
    det_curve,
    macro_f1,
)

# Values written out from the ASVspoof 5 evaluation package (calculate_metrics.py), on
# purpose not taken from the module under test.
ASV5_PFA_ASV = 0.01881016557566423
ASV5_PMISS_ASV = 0.01880141010575793
ASV5_PFA_SPOOF_ASV = 0.4607082907604729
ASV5_PTAR = 0.95 * 0.99
ASV5_PNON = 0.95 * 0.01
ASV5_PSPOOF = 0.05


# --------------------------------------------------------------------------- brute forces


def brute_det_sequence(bona, spoof):
    """The reference's DET points [(frr, far, threshold)], by counting, trial by trial."""
    bona, spoof = list(map(float, bona)), list(map(float, spoof))
    nb, ns = len(bona), len(spoof)
    points = [(0.0, 1.0, min(bona + spoof) - 0.001)]
    for v in sorted(set(bona) | set(spoof)):
        bona_below = sum(1 for x in bona if x < v)
        bona_tied = sum(1 for x in bona if x == v)
        spoof_above = sum(1 for x in spoof if x > v)
        spoof_tied = sum(1 for x in spoof if x == v)
        # tied bona fide trials go first, while every tied spoof trial is still accepted
        for j in range(1, bona_tied + 1):
            points.append(((bona_below + j) / nb, (spoof_above + spoof_tied) / ns, v))
        for j in range(1, spoof_tied + 1):
            points.append(((bona_below + bona_tied) / nb, (spoof_above + spoof_tied - j) / ns, v))
    return points


def brute_operating_points(bona, spoof):
    """[(frr, far, t)] for "accept iff score > t", t = leading point and every unique score."""
    bona, spoof = list(map(float, bona)), list(map(float, spoof))
    candidates = [min(bona + spoof) - 0.001] + sorted(set(bona) | set(spoof))
    out = []
    for t in candidates:
        frr = sum(1 for x in bona if x <= t) / len(bona)
        far = sum(1 for x in spoof if x > t) / len(spoof)
        out.append((frr, far, t))
    return out


def brute_eer(points):
    best = None
    for frr, far, t in points:  # first point with the smallest |frr - far|
        if best is None or abs(frr - far) < abs(best[0] - best[1]):
            best = (frr, far, t)
    return (best[0] + best[1]) / 2, best[2]


def rates_at(bona, spoof, t):
    """(Pmiss, Pfa) for "accept iff score >= t"."""
    pmiss = sum(1 for x in bona if x < t) / len(bona)
    pfa = sum(1 for x in spoof if x >= t) / len(spoof)
    return pmiss, pfa


def brute_tdcf_weights(pfa_asv=ASV5_PFA_ASV, pmiss_asv=ASV5_PMISS_ASV, pfa_spoof_asv=ASV5_PFA_SPOOF_ASV,
                       ptar=ASV5_PTAR, pnon=ASV5_PNON, pspoof=ASV5_PSPOOF,
                       cmiss=1.0, cfa=10.0, cfa_spoof=10.0):
    # Expected cost of the tandem system = C0 + C1 * Pmiss_cm + C2 * Pfa_cm, where a bona
    # fide target passes only if neither CM nor ASV rejects it, etc.
    c0 = ptar * cmiss * pmiss_asv + pnon * cfa * pfa_asv
    c1 = ptar * cmiss * (1 - pmiss_asv) - pnon * cfa * pfa_asv
    c2 = pspoof * cfa_spoof * pfa_spoof_asv
    return c0, c1, c2


def make_scores(seed, nb, ns, ties):
    rng = np.random.default_rng(seed)
    if ties:  # integers from a small range: many ties, within and across classes
        return rng.integers(-3, 4, nb).astype(float), rng.integers(-4, 3, ns).astype(float)
    return rng.normal(1.0, 1.5, nb), rng.normal(-1.0, 1.5, ns)


CASES = [
    (seed, nb, ns, ties)
    for ties in (False, True)
    for seed, (nb, ns) in enumerate([(1, 1), (1, 6), (7, 2), (13, 29), (60, 45), (150, 210)])
]
CASE_IDS = [f"{'ties' if t else 'cont'}-{nb}x{ns}-s{s}" for s, nb, ns, t in CASES]


# --------------------------------------------------------------------------- DET and EER


@pytest.mark.parametrize("seed,nb,ns,ties", CASES, ids=CASE_IDS)
def test_det_curve_matches_bruteforce_sequence(seed, nb, ns, ties):
    bona, spoof = make_scores(seed, nb, ns, ties)
    frr, far, thr = det_curve(bona, spoof)
    expected = brute_det_sequence(bona, spoof)
    assert len(frr) == len(far) == len(thr) == nb + ns + 1
    assert frr.tolist() == [p[0] for p in expected]
    assert far.tolist() == [p[1] for p in expected]
    assert thr.tolist() == [p[2] for p in expected]


@pytest.mark.parametrize("seed,nb,ns,ties", CASES, ids=CASE_IDS)
def test_det_curve_contains_every_threshold_operating_point(seed, nb, ns, ties):
    bona, spoof = make_scores(seed, nb, ns, ties)
    frr, far, thr = det_curve(bona, spoof)
    points = set(zip(frr.tolist(), far.tolist(), thr.tolist(), strict=True))
    for point in brute_operating_points(bona, spoof):
        assert point in points
    # the curve is a monotone staircase from (0, 1) to (1, 0)
    assert np.all(np.diff(frr) >= 0) and np.all(np.diff(far) <= 0)
    assert (frr[-1], far[-1]) == (1.0, 0.0)


@pytest.mark.parametrize("seed,nb,ns,ties", CASES, ids=CASE_IDS)
def test_eer_matches_bruteforce(seed, nb, ns, ties):
    bona, spoof = make_scores(seed, nb, ns, ties)
    eer, threshold = compute_eer(bona, spoof)
    assert (eer, threshold) == brute_eer(brute_det_sequence(bona, spoof))
    assert isinstance(eer, float) and isinstance(threshold, float)
    if not ties:  # continuous scores: every DET point is a real threshold's operating point
        assert (eer, threshold) == brute_eer(brute_operating_points(bona, spoof))


def test_tie_semantics_worked_example():
    # ASVspoof's compute_det_curve on these scores (checked against the reference code)
    frr, far, thr = det_curve([1, 2, 2, 3], [0, 2, 2, 5])
    assert list(zip(frr.tolist(), far.tolist(), thr.tolist(), strict=True)) == [
        (0.0, 1.0, -0.001),
        (0.0, 0.75, 0.0),
        (0.25, 0.75, 1.0),
        (0.5, 0.75, 2.0),  # tied bona fide rejected first ...
        (0.75, 0.75, 2.0),  # ... up to the pessimistic corner
        (0.75, 0.5, 2.0),  # then the tied spoof trials
        (0.75, 0.25, 2.0),
        (1.0, 0.25, 3.0),
        (1.0, 0.0, 5.0),
    ]
    assert compute_eer([1, 2, 2, 3], [0, 2, 2, 5]) == (0.75, 2.0)


def test_constant_scores_give_eer_one():
    # all trials tied: the reference walks every bona fide trial before any spoof one
    assert compute_eer(np.zeros(3), np.zeros(5)) == (1.0, 0.0)


def test_perfect_separation_gives_eer_zero():
    bona, spoof = [2.0, 3.5, 9.0], [-1.0, 0.5, 1.5, 1.9]
    assert compute_eer(bona, spoof) == (0.0, 1.9)  # at the highest spoof score


def test_fully_swapped_gives_eer_one():
    bona, spoof = [-1.0, 0.5, 1.5], [2.0, 3.5, 9.0, 4.0]
    assert compute_eer(bona, spoof) == (1.0, 1.5)  # frr = far = 1 at the highest bona fide score


def test_eer_depends_only_on_counts_and_order():
    bona, spoof = make_scores(5, 40, 70, ties=True)
    rng = np.random.default_rng(9)
    shuffled = compute_eer(rng.permutation(bona), rng.permutation(spoof))
    assert shuffled == compute_eer(bona, spoof)
    # a strictly increasing map (exact here: small integers) keeps the EER and min DCF
    assert compute_eer(4 * bona - 7, 4 * spoof - 7)[0] == compute_eer(bona, spoof)[0]
    assert compute_min_dcf(4 * bona - 7, 4 * spoof - 7)[0] == compute_min_dcf(bona, spoof)[0]
    # and a decreasing one does not (higher must mean more bona fide)
    assert compute_eer(-bona, -spoof)[0] > compute_eer(bona, spoof)[0]


def test_det_curve_accepts_plain_sequences():
    frr, far, thr = det_curve([0.2, 0.9], (0.1,))
    assert frr.dtype == far.dtype == thr.dtype == np.float64
    assert thr[0] == pytest.approx(0.1 - 0.001, abs=0)


# --------------------------------------------------------------------------- DCF


# ASVspoof 5 defaults, then settings where the normaliser is each of its two terms
DCF_SETTINGS = [(0.05, 1.0, 10.0), (0.5, 1.0, 1.0), (0.3, 2.0, 0.5), (0.9, 1.0, 1.0), (0.2, 0.5, 3.0)]


def brute_min_dcf(bona, spoof, p_spoof, c_miss, c_fa):
    norm = min(c_miss * (1 - p_spoof), c_fa * p_spoof)
    return min((c_miss * (1 - p_spoof) * frr + c_fa * p_spoof * far) / norm
               for frr, far, _ in brute_operating_points(bona, spoof))


@pytest.mark.parametrize("seed,nb,ns,ties", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("p_spoof,c_miss,c_fa", DCF_SETTINGS)
def test_min_dcf_matches_bruteforce(seed, nb, ns, ties, p_spoof, c_miss, c_fa):
    bona, spoof = make_scores(seed, nb, ns, ties)
    value, threshold = compute_min_dcf(bona, spoof, p_spoof, c_miss, c_fa)
    expected = brute_min_dcf(bona, spoof, p_spoof, c_miss, c_fa)
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # the returned threshold reaches the minimum with the DET rule "accept iff score > t"
    frr = np.mean(bona <= threshold)
    far = np.mean(spoof > threshold)
    norm = min(c_miss * (1 - p_spoof), c_fa * p_spoof)
    assert (c_miss * (1 - p_spoof) * frr + c_fa * p_spoof * far) / norm == pytest.approx(value, rel=1e-12)
    assert 0.0 <= value <= 1.0 + 1e-12


def test_dcf_defaults_are_asvspoof5():
    assert (M.DCF_P_SPOOF, M.DCF_C_MISS, M.DCF_C_FA) == (0.05, 1.0, 10.0)
    assert bayes_threshold() == pytest.approx(math.log(10 * 0.05 / (1 * 0.95)), rel=1e-14)
    assert bayes_threshold() == pytest.approx(-0.6418538861723947, rel=1e-12)


@pytest.mark.parametrize("seed,nb,ns,ties", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("p_spoof,c_miss,c_fa", DCF_SETTINGS)
def test_act_dcf_matches_bruteforce_and_bounds_min_dcf(seed, nb, ns, ties, p_spoof, c_miss, c_fa):
    bona, spoof = make_scores(seed, nb, ns, ties)
    value, threshold = compute_act_dcf(bona, spoof, p_spoof, c_miss, c_fa)
    t = math.log(c_fa * p_spoof / (c_miss * (1 - p_spoof)))
    assert threshold == pytest.approx(t, rel=1e-12, abs=1e-15)
    pmiss, pfa = rates_at(bona, spoof, t)
    norm = min(c_miss * (1 - p_spoof), c_fa * p_spoof)
    assert value == pytest.approx((c_miss * (1 - p_spoof) * pmiss + c_fa * p_spoof * pfa) / norm, rel=1e-12)
    assert compute_min_dcf(bona, spoof, p_spoof, c_miss, c_fa)[0] <= value + 1e-12


def test_act_dcf_sign_convention():
    # Bayes threshold is log(0.5 / 0.95) ~ -0.64: a spoof at -0.5 is accepted (false
    # alarm), a bona fide trial at -0.7 is rejected (miss); with the sign flipped neither
    # would be.
    assert compute_act_dcf([5.0, 5.0], [-0.5])[0] == pytest.approx(1.0)  # Cfa*Pspoof / 0.5
    assert compute_act_dcf([-0.7], [-5.0, -5.0])[0] == pytest.approx(1.9)  # Cmiss*(1-Pspoof) / 0.5
    assert compute_act_dcf([-0.6], [-0.65])[0] == 0.0
    # ties with the threshold: score == threshold is accepted
    t = bayes_threshold()
    assert compute_act_dcf([t], [-10.0])[0] == 0.0
    assert compute_act_dcf([10.0], [t])[0] == pytest.approx(1.0)


def test_trivial_systems_have_normalised_dcf_one_or_worse():
    # accept everything: only false alarms, costing exactly the normaliser Cfa*Pspoof
    assert compute_act_dcf([50.0, 60.0], [40.0, 70.0])[0] == pytest.approx(1.0)
    # reject everything: 0.95 / 0.5
    assert compute_act_dcf([-50.0, -60.0], [-40.0, -70.0])[0] == pytest.approx(1.9)
    # no information at all: min DCF is the trivial accept-all cost
    assert compute_min_dcf(np.zeros(4), np.zeros(6))[0] == pytest.approx(1.0)
    # fully swapped scores cannot beat the trivial system
    assert compute_min_dcf([-3.0, -2.0], [2.0, 3.0])[0] == pytest.approx(1.0)


def test_min_dcf_perfect_separation_is_zero_and_miscalibration_shows_in_act_dcf():
    bona, spoof = np.array([1.0, 2.0, 3.0]), np.array([-3.0, -2.0, -1.0])
    assert compute_min_dcf(bona, spoof)[0] == 0.0
    assert compute_act_dcf(bona, spoof)[0] == 0.0
    shifted = (bona - 2.5, spoof - 2.5)  # same ranking, badly calibrated: bona fide at -1.5 rejected
    assert compute_min_dcf(*shifted)[0] == 0.0
    assert compute_act_dcf(*shifted)[0] == pytest.approx(0.95 * (1 / 3) / 0.5)


@pytest.mark.parametrize("kwargs", [{"p_spoof": 0.0}, {"p_spoof": 1.0}, {"c_miss": 0.0}, {"c_fa": -1.0}])
def test_dcf_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        compute_min_dcf([1.0], [0.0], **kwargs)
    with pytest.raises(ValueError):
        compute_act_dcf([1.0], [0.0], **kwargs)


# --------------------------------------------------------------------------- Cllr


def test_cllr_of_uninformative_llrs_is_one_bit():
    assert compute_cllr(np.zeros(5), np.zeros(3)) == pytest.approx(1.0, abs=1e-14)


def test_cllr_known_calibrated_values():
    # bona fide LLR log 3, spoof LLR -log 3: each trial costs log2(1 + 1/3) bits
    assert compute_cllr([math.log(3)], [-math.log(3)]) == pytest.approx(math.log2(4 / 3), rel=1e-14)
    # one perfect and one reversed trial per class
    assert compute_cllr([0.0, math.log(3)], [math.log(3)]) == pytest.approx(
        0.5 * (0.5 * (1 + math.log2(4 / 3)) + 2.0), rel=1e-14)


@pytest.mark.parametrize("seed,nb,ns,ties", CASES, ids=CASE_IDS)
def test_cllr_matches_direct_formula(seed, nb, ns, ties):
    bona, spoof = make_scores(seed, nb, ns, ties)
    expected = 0.5 * (sum(math.log2(1 + math.exp(-x)) for x in bona) / nb
                      + sum(math.log2(1 + math.exp(x)) for x in spoof) / ns)
    assert compute_cllr(bona, spoof) == pytest.approx(expected, rel=1e-12)


def test_cllr_is_stable_for_huge_llrs():
    with np.errstate(over="raise", invalid="raise"):  # an exp(1000) would raise FloatingPointError
        assert compute_cllr([1000.0, 800.0], [-1000.0]) == pytest.approx(0.0, abs=1e-300)
        # confidently wrong: log2(1 + e^1000) = 1000 / ln 2 bits per trial
        assert compute_cllr([-1000.0], [1000.0]) == pytest.approx(1000 / math.log(2), rel=1e-14)
        mixed = compute_cllr([1000.0, -1000.0], [-1000.0, 0.0])
    assert mixed == pytest.approx(0.5 * (0.5 * 1000 / math.log(2) + 0.5), rel=1e-14)


# --------------------------------------------------------------------------- t-DCF


def test_tdcf_defaults_are_the_asvspoof5_values():
    assert M.ASV_PFA == ASV5_PFA_ASV
    assert M.ASV_PMISS == ASV5_PMISS_ASV
    assert M.ASV_PFA_SPOOF == ASV5_PFA_SPOOF_ASV
    assert M.TDCF_P_TARGET == pytest.approx(0.9405, rel=1e-15)
    assert M.TDCF_P_NONTARGET == pytest.approx(0.0095, rel=1e-15)
    assert (M.TDCF_P_SPOOF, M.TDCF_C_MISS, M.TDCF_C_FA, M.TDCF_C_FA_SPOOF) == (0.05, 1.0, 10.0, 10.0)


@pytest.mark.parametrize("seed,nb,ns,ties", CASES, ids=CASE_IDS)
def test_tdcf_matches_bruteforce(seed, nb, ns, ties):
    bona, spoof = make_scores(seed, nb, ns, ties)
    c0, c1, c2 = brute_tdcf_weights()
    norm = c0 + min(c1, c2)
    expected_min = min((c0 + c1 * frr + c2 * far) / norm
                       for frr, far, _ in brute_operating_points(bona, spoof))
    result = compute_tdcf(bona, spoof, threshold=0.5)
    assert result.min_tdcf == pytest.approx(expected_min, rel=1e-12)
    pmiss, pfa = rates_at(bona, spoof, 0.5)
    assert result.tdcf == pytest.approx((c0 + c1 * pmiss + c2 * pfa) / norm, rel=1e-12)
    assert result.threshold == 0.5
    assert result.floor == pytest.approx(c0 / norm, rel=1e-12)
    assert result.floor - 1e-12 <= result.min_tdcf <= 1.0 + 1e-12
    # min_threshold reaches the minimum with the DET rule "accept iff score > t"
    frr, far = np.mean(bona <= result.min_threshold), np.mean(spoof > result.min_threshold)
    assert (c0 + c1 * frr + c2 * far) / norm == pytest.approx(result.min_tdcf, rel=1e-12)
    assert compute_tdcf(bona, spoof).tdcf is None


def test_tdcf_overridden_cost_model_and_asv_rates():
    bona, spoof = make_scores(3, 80, 90, ties=False)
    kwargs = dict(pfa_asv=0.05, pmiss_asv=0.1, pfa_spoof_asv=0.9, p_target=0.6, p_nontarget=0.2,
                  p_spoof=0.2, c_miss=2.0, c_fa=3.0, c_fa_spoof=5.0)
    c0, c1, c2 = brute_tdcf_weights(0.05, 0.1, 0.9, 0.6, 0.2, 0.2, 2.0, 3.0, 5.0)
    norm = c0 + min(c1, c2)
    expected = min((c0 + c1 * frr + c2 * far) / norm for frr, far, _ in brute_operating_points(bona, spoof))
    result = compute_tdcf(bona, spoof, **kwargs)
    assert result.min_tdcf == pytest.approx(expected, rel=1e-12)
    assert result.min_tdcf != pytest.approx(compute_tdcf(bona, spoof).min_tdcf, rel=1e-3)


def test_tdcf_perfect_and_swapped_systems():
    c0, c1, c2 = brute_tdcf_weights()
    perfect = compute_tdcf([1.0, 2.0, 3.0], [-3.0, -2.0, -1.5])
    assert perfect.min_tdcf == pytest.approx(c0 / (c0 + min(c1, c2)), rel=1e-12)
    assert perfect.min_tdcf == pytest.approx(0.077934, abs=1e-6)  # the floor with ASVspoof 5 rates
    assert compute_tdcf([-3.0, -2.0], [1.0, 2.0, 3.0]).min_tdcf == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("kwargs", [
    {"p_target": 0.5},  # priors no longer sum to 1
    {"p_spoof": -0.01, "p_target": 0.9405 + 0.06},
    {"pfa_asv": 1.5},
    {"pmiss_asv": float("nan")},
    {"c_fa_spoof": -1.0},
    {"pmiss_asv": 0.99, "pfa_asv": 0.99},  # C1 < 0: the ASV rates make the CM useless
])
def test_tdcf_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        compute_tdcf([1.0, 2.0], [0.0, -1.0], **kwargs)


def test_tdcf_rejects_bad_threshold():
    with pytest.raises(ValueError, match="finite"):
        compute_tdcf([1.0], [0.0], threshold=float("inf"))


# --------------------------------------------------------------------------- threshold metrics


@pytest.mark.parametrize("seed,nb,ns,ties", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("threshold", [-1.0, 0.0, 0.5, 2.0])
def test_threshold_metrics_match_bruteforce(seed, nb, ns, ties, threshold):
    bona, spoof = make_scores(seed, nb, ns, ties)
    tp = sum(1 for x in bona if x >= threshold)
    fn = nb - tp
    fp = sum(1 for x in spoof if x >= threshold)
    tn = ns - fp
    assert accuracy(bona, spoof, threshold) == pytest.approx((tp + tn) / (nb + ns), rel=1e-12)
    assert balanced_accuracy(bona, spoof, threshold) == pytest.approx((tp / nb + tn / ns) / 2, rel=1e-12)

    def f1(tp_, fp_, fn_):
        precision = tp_ / (tp_ + fp_) if tp_ + fp_ else 0.0
        recall = tp_ / (tp_ + fn_)
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    expected = (f1(tp, fp, fn) + f1(tn, fn, fp)) / 2
    assert macro_f1(bona, spoof, threshold) == pytest.approx(expected, rel=1e-12)


def test_threshold_metrics_hand_computed():
    bona, spoof = [0.9, 0.4, 0.6, 0.2], [0.1, 0.5, 0.3]
    # at 0.5: bona fide accepted 0.9, 0.6 (TP=2, FN=2); spoof 0.5 accepted since >= (FP=1, TN=2)
    assert accuracy(bona, spoof, 0.5) == pytest.approx(4 / 7)
    assert balanced_accuracy(bona, spoof, 0.5) == pytest.approx((2 / 4 + 2 / 3) / 2)
    assert macro_f1(bona, spoof, 0.5) == pytest.approx((4 / 7 + 4 / 7) / 2)  # 2*2/(4+1+2), 2*2/(4+2+1)
    # everything accepted: spoof class never predicted gets F1 0
    assert macro_f1(bona, spoof, -1.0) == pytest.approx((2 * 4 / (8 + 3)) / 2)
    assert balanced_accuracy(bona, spoof, -1.0) == 0.5
    assert accuracy([1.0], [0.0]) == 0.5  # default threshold 0: a score of 0.0 counts as bona fide
    assert accuracy([1.0], [-1e-9]) == 1.0


# --------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("nb,ns,ties", [(30, 45, True), (40, 40, False)])
def test_bootstrap_follows_the_documented_resampling(nb, ns, ties):
    bona, spoof = make_scores(11, nb, ns, ties)
    for n_boot, alpha in [(200, 0.1), (3, 0.5), (1, 0.05)]:  # few replicates: every one shows
        rng = np.random.default_rng(123)
        eers = []
        for _ in range(n_boot):
            b = bona[rng.integers(0, bona.size, bona.size)]
            s = spoof[rng.integers(0, spoof.size, spoof.size)]
            eers.append(compute_eer(b, s)[0])
        expected = tuple(np.percentile(eers, [50 * alpha, 100 - 50 * alpha]).tolist())
        assert bootstrap_eer_ci(bona, spoof, n_boot=n_boot, alpha=alpha, seed=123) == expected


def test_bootstrap_batches_do_not_change_the_result(monkeypatch):
    bona, spoof = make_scores(4, 25, 35, ties=False)
    whole = bootstrap_eer_ci(bona, spoof, n_boot=50, seed=7)
    monkeypatch.setattr(M, "_BOOTSTRAP_BATCH_ELEMENTS", 130)  # two replicates per batch
    assert bootstrap_eer_ci(bona, spoof, n_boot=50, seed=7) == whole


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bootstrap_ci_contains_point_eer_and_narrows_with_more_data(seed):
    small = make_scores(100 + seed, 60, 60, ties=False)
    large = make_scores(200 + seed, 2000, 2000, ties=False)
    widths = []
    for bona, spoof in (small, large):
        low, high = bootstrap_eer_ci(bona, spoof, n_boot=200, seed=seed)
        eer = compute_eer(bona, spoof)[0]
        assert 0.0 <= low <= eer <= high <= 1.0
        widths.append(high - low)
    assert widths[1] < 0.5 * widths[0]  # ~sqrt(33) narrower in theory


def test_bootstrap_seed_and_parameters():
    bona, spoof = make_scores(8, 50, 50, ties=False)
    first = bootstrap_eer_ci(bona, spoof, n_boot=100, seed=1)
    assert bootstrap_eer_ci(bona, spoof, n_boot=100, seed=1) == first
    assert bootstrap_eer_ci(bona, spoof, n_boot=100, seed=2) != first
    wide = bootstrap_eer_ci(bona, spoof, n_boot=300, alpha=0.01, seed=1)
    narrow = bootstrap_eer_ci(bona, spoof, n_boot=300, alpha=0.5, seed=1)
    assert wide[0] <= narrow[0] <= narrow[1] <= wide[1] and wide != narrow
    for kwargs in ({"n_boot": 0}, {"n_boot": 2.5}, {"alpha": 0.0}, {"alpha": 1.0}):
        with pytest.raises(ValueError):
            bootstrap_eer_ci(bona, spoof, **kwargs)


# --------------------------------------------------------------------------- summary


def test_compute_metrics_is_consistent_and_json_ready():
    bona, spoof = make_scores(21, 70, 90, ties=False)
    out = compute_metrics(bona, spoof)
    assert set(out) == {
        "eer", "eer_threshold", "min_dcf", "act_dcf", "cllr", "min_tdcf", "n_bonafide", "n_spoof"}
    assert (out["eer"], out["eer_threshold"]) == compute_eer(bona, spoof)
    assert out["min_dcf"] == compute_min_dcf(bona, spoof)[0]
    assert out["act_dcf"] == compute_act_dcf(bona, spoof)[0]
    assert out["cllr"] == compute_cllr(bona, spoof)
    assert out["min_tdcf"] == compute_tdcf(bona, spoof).min_tdcf
    assert (out["n_bonafide"], out["n_spoof"]) == (70, 90)
    for key, value in out.items():
        assert type(value) is (int if key.startswith("n_") else float), key
    assert json.loads(json.dumps(out)) == out


# --------------------------------------------------------------------------- input validation

SCORE_FUNCTIONS = [
    det_curve, compute_eer, compute_min_dcf, compute_act_dcf, compute_cllr, compute_tdcf,
    accuracy, balanced_accuracy, macro_f1, bootstrap_eer_ci, compute_metrics,
]


@pytest.mark.parametrize("func", SCORE_FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad,pattern", [
    ([], "empty"),
    ([0.3, float("nan")], "non-finite"),
    ([float("inf"), 0.1], "non-finite"),
    ([-np.inf], "non-finite"),
    ([[0.1, 0.2]], "1-D"),
    (["a", "b"], "numeric"),
])
@pytest.mark.parametrize("side", ["bonafide", "spoof"])
def test_invalid_scores_raise_value_error(func, bad, pattern, side):
    good = [0.5, -0.2, 1.0]
    args = (bad, good) if side == "bonafide" else (good, bad)
    with pytest.raises(ValueError, match=pattern) as info:
        func(*args)
    assert f"{side}_scores" in str(info.value)


def test_threshold_metrics_reject_non_finite_threshold():
    for func in (accuracy, balanced_accuracy, macro_f1):
        with pytest.raises(ValueError, match="finite"):
            func([1.0], [0.0], float("nan"))

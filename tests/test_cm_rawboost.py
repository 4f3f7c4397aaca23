"""RawBoost: seeded, changes the signal, and each algorithm's statistics are what it promises."""

import numpy as np
import pytest
from conftest import speech_like

from apallm.cm.rawboost import (
    ALGORITHMS,
    RawBoostConfig,
    isd_additive_noise,
    lnl_convolutive_noise,
    notch_filter_coefficients,
    rawboost,
    ssi_additive_noise,
)

X = speech_like(1.0).astype(np.float64)


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_algorithm_is_deterministic_under_a_seed_and_keeps_the_length(algorithm):
    a = rawboost(X, algorithm, np.random.default_rng(7))
    b = rawboost(X, algorithm, np.random.default_rng(7))
    assert a.dtype == np.float32 and a.shape == X.shape
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all()
    if algorithm == 0:
        np.testing.assert_array_equal(a, X.astype(np.float32))
    else:
        assert not np.allclose(a, X, atol=1e-4)
        assert not np.array_equal(a, rawboost(X, algorithm, np.random.default_rng(8)))


def test_unknown_algorithm_and_bad_input_are_refused():
    with pytest.raises(ValueError, match="unknown RawBoost algorithm 9"):
        rawboost(X, 9, np.random.default_rng(0))
    with pytest.raises(ValueError, match="1-D"):
        rawboost(np.zeros((2, 100)), 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="snr_min"):
        RawBoostConfig(snr_min=50)


def test_published_defaults():
    c = RawBoostConfig()
    assert (c.n_bands, c.min_f, c.max_f, c.min_bw, c.max_bw) == (5, 20, 8000, 100, 1000)
    assert (c.min_coeff, c.max_coeff) == (10, 100)
    assert (c.min_g, c.max_g, c.min_bias_lin_nonlin, c.max_bias_lin_nonlin, c.n_f) == (0, 0, 5, 20, 5)
    assert (c.p, c.g_sd, c.snr_min, c.snr_max) == (10, 2, 10, 40)


@pytest.mark.parametrize("seed", range(5))
def test_ssi_noise_snr_lies_in_the_configured_range(seed):
    config = RawBoostConfig()
    y = ssi_additive_noise(X, np.random.default_rng(seed), config)
    snr = 20 * np.log10(np.linalg.norm(X) / np.linalg.norm(y - X))
    assert config.snr_min <= snr <= config.snr_max
    narrow = RawBoostConfig(snr_min=20, snr_max=20)
    y = ssi_additive_noise(X, np.random.default_rng(seed), narrow)
    assert 20 * np.log10(np.linalg.norm(X) / np.linalg.norm(y - X)) == pytest.approx(20, abs=1e-9)


def test_notch_cascade_peaks_at_its_gain_and_has_deep_notches():
    rng = np.random.default_rng(1)
    taps = notch_filter_coefficients(rng, RawBoostConfig(), 0.0, 0.0)
    response = np.abs(np.fft.rfft(taps, 4096))
    assert response.max() == pytest.approx(1.0, rel=0.05)  # gain 0 dB at the peak
    assert response.min() < 0.1  # at least one deep notch


@pytest.mark.parametrize("seed", range(5))
def test_isd_noise_touches_at_most_p_percent_of_the_samples(seed):
    config = RawBoostConfig()
    x = X / np.max(np.abs(X)) * 0.3  # no peak normalisation can kick in
    y = isd_additive_noise(x, np.random.default_rng(seed), config)
    changed = np.count_nonzero(y != x)
    assert 0 < changed <= len(x) * config.p / 100
    ratio = (y - x)[y != x] / x[y != x]  # the noise is g_sd * x * u1 * u2, |u1 u2| <= 1
    assert np.all(np.abs(ratio) <= config.g_sd + 1e-9)


def test_lnl_noise_is_zero_mean_and_peak_limited():
    y = lnl_convolutive_noise(X, np.random.default_rng(2))
    assert abs(np.mean(y)) < 1e-3
    assert np.max(np.abs(y)) <= 1.0 + 1e-12
    # linear-only version (n_f = 1) with 0 dB gain keeps roughly the input energy, filtered by notches
    linear = lnl_convolutive_noise(X, np.random.default_rng(2), RawBoostConfig(n_f=1))
    assert 0.1 < np.linalg.norm(linear) / np.linalg.norm(X) <= 1.01

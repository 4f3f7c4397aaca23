"""RawBoost: data boosting and augmentation on the raw waveform, for countermeasure training.

Tak, Kamble, Patino, Todisco and Evans, "RawBoost: A Raw Data Boosting and Augmentation Method applied to
Automatic Speaker Verification Anti-Spoofing", ICASSP 2022. An independent implementation of the three
algorithms and their combinations as published in ``TakHemlata/SSL_Anti-spoofing`` (``RawBoost.py`` and
``data_utils_SSL.py``), with the published default parameters (the ``main_SSL_*.py`` arguments) as the
defaults of :class:`RawBoostConfig`:

1. :func:`lnl_convolutive_noise`: linear and non-linear convolutive noise. The sum over ``k = 1..N_f``
   of ``x**k``, each filtered by a random cascade of notch (band-stop) FIR filters with a random gain;
   the non-linear terms (``k >= 2``) are attenuated by a further 5 to 20 dB.
2. :func:`isd_additive_noise`: impulsive signal-dependent noise. Up to ``P`` % of the samples, chosen at
   random, get ``g_sd * x[n] * u1 * u2`` added, with ``u1, u2 ~ U(-1, 1)``.
3. :func:`ssi_additive_noise`: stationary signal-independent noise. White noise coloured by a random
   notch-filter cascade, added at a random SNR between ``snr_min`` and ``snr_max`` dB.

:func:`rawboost` applies one of the published numbered combinations (:data:`ALGORITHMS`). Every random draw
comes from the ``numpy.random.Generator`` passed in, so a seed gives the same augmentation every time.
The ``N_f`` powers of the input make algorithm 1 expect audio in [-1, 1], as :func:`apallm.load_audio`
gives it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

#: algorithm number -> stages, as numbered in the published code; "1||2" runs 1 and 2 in parallel
ALGORITHMS: dict[int, str] = {
    0: "none",
    1: "1",
    2: "2",
    3: "3",
    4: "1+2+3",
    5: "1+2",
    6: "1+3",
    7: "2+3",
    8: "1||2",
}


@dataclass(frozen=True)
class RawBoostConfig:
    """RawBoost parameters; the defaults are the published ones.

    Notch filters (algorithms 1 and 3): ``n_bands`` filters in cascade, each with a centre frequency in
    ``[min_f, max_f]`` Hz, a width in ``[min_bw, max_bw]`` Hz and ``[min_coeff, max_coeff]`` taps (made
    odd). Algorithm 1: linear gain in ``[min_g, max_g]`` dB, each non-linear term a further
    ``[min_bias_lin_nonlin, max_bias_lin_nonlin]`` dB lower, non-linearity order ``n_f``. Algorithm 2:
    at most ``p`` % of the samples, gain ``g_sd``. Algorithm 3: SNR in ``[snr_min, snr_max]`` dB (its
    filter gain also comes from ``[min_g, max_g]``, then the noise is rescaled to the SNR).
    """

    n_bands: int = 5
    min_f: float = 20.0
    max_f: float = 8000.0
    min_bw: float = 100.0
    max_bw: float = 1000.0
    min_coeff: int = 10
    max_coeff: int = 100
    min_g: float = 0.0
    max_g: float = 0.0
    min_bias_lin_nonlin: float = 5.0
    max_bias_lin_nonlin: float = 20.0
    n_f: int = 5
    p: float = 10.0
    g_sd: float = 2.0
    snr_min: float = 10.0
    snr_max: float = 40.0
    sample_rate: int = 16_000

    def __post_init__(self) -> None:
        for low, high in (("min_f", "max_f"), ("min_bw", "max_bw"), ("min_coeff", "max_coeff"),
                          ("min_g", "max_g"), ("min_bias_lin_nonlin", "max_bias_lin_nonlin"),
                          ("snr_min", "snr_max")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"RawBoostConfig: {low} = {getattr(self, low)} exceeds {high} = {getattr(self, high)}")
        if self.n_bands < 1 or self.n_f < 1 or self.min_coeff < 1:
            raise ValueError("RawBoostConfig: n_bands, n_f and min_coeff must be at least 1")
        if not 0.0 <= self.p <= 100.0:
            raise ValueError(f"RawBoostConfig: p is a percentage of samples, got {self.p}")


def _normalise(x: np.ndarray, always: bool) -> np.ndarray:
    """Divide by the peak magnitude: always, or only when the peak exceeds 1 (the published ``normWav``)."""
    peak = np.max(np.abs(x))
    return x / peak if peak > 0 and (always or peak > 1.0) else x


def notch_filter_coefficients(rng: np.random.Generator, config: RawBoostConfig, min_g: float,
                              max_g: float) -> np.ndarray:
    """A random cascade of ``config.n_bands`` Hamming-windowed band-stop FIR filters, scaled so that its
    magnitude response peaks at a gain drawn uniformly from ``[min_g, max_g]`` dB."""
    nyquist = config.sample_rate / 2
    taps = np.ones(1)
    for _ in range(config.n_bands):
        centre = rng.uniform(config.min_f, config.max_f)
        width = rng.uniform(config.min_bw, config.max_bw)
        n_coeff = int(rng.uniform(config.min_coeff, config.max_coeff))
        n_coeff += 1 - n_coeff % 2  # a band-stop FIR filter needs an odd number of taps
        low = max(centre - width / 2, 1e-3)
        high = min(centre + width / 2, nyquist - 1e-3)
        taps = np.convolve(signal.firwin(n_coeff, [low, high], window="hamming", fs=config.sample_rate), taps)
    gain_db = rng.uniform(min_g, max_g)
    _, response = signal.freqz(taps, 1, fs=config.sample_rate)
    return 10.0 ** (gain_db / 20.0) * taps / np.max(np.abs(response))


def fir_filter(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Filter ``x`` with the FIR ``taps``, shifted back by half the filter length so the output stays
    aligned with the input and has its length (the published ``filterFIR``)."""
    shift = (len(taps) + 1) // 2
    padded = np.pad(x, (0, len(taps) + 1))
    return signal.lfilter(taps, 1, padded)[shift:shift + len(x)]


def lnl_convolutive_noise(x: np.ndarray, rng: np.random.Generator, config: RawBoostConfig = RawBoostConfig()
                          ) -> np.ndarray:
    """Algorithm 1: ``sum_k notch_k(x**k)`` for ``k = 1..n_f``, mean removed, peak-limited to 1.

    The linear term's gain is drawn from ``[min_g, max_g]`` dB, each non-linear term's from
    ``[min_g - max_bias, max_g - min_bias]`` dB, the range the published code draws from.
    """
    y = np.zeros(len(x))
    for order in range(1, config.n_f + 1):
        if order == 1:
            min_g, max_g = config.min_g, config.max_g
        else:
            min_g = config.min_g - config.max_bias_lin_nonlin
            max_g = config.max_g - config.min_bias_lin_nonlin
        y += fir_filter(np.power(x, order), notch_filter_coefficients(rng, config, min_g, max_g))
    return _normalise(y - np.mean(y), always=False)


def isd_additive_noise(x: np.ndarray, rng: np.random.Generator, config: RawBoostConfig = RawBoostConfig()
                       ) -> np.ndarray:
    """Algorithm 2: a share drawn from ``U(0, p)`` % of the samples, at random positions, become
    ``x[n] + g_sd * x[n] * u1 * u2`` with ``u1, u2 ~ U(-1, 1)``; peak-limited to 1."""
    share = rng.uniform(0.0, config.p)
    count = int(len(x) * share / 100.0)
    positions = rng.choice(len(x), size=count, replace=False)
    factors = (2.0 * rng.random(count) - 1.0) * (2.0 * rng.random(count) - 1.0)
    y = np.array(x, dtype=np.float64)
    y[positions] += config.g_sd * y[positions] * factors
    return _normalise(y, always=False)


def ssi_additive_noise(x: np.ndarray, rng: np.random.Generator, config: RawBoostConfig = RawBoostConfig()
                       ) -> np.ndarray:
    """Algorithm 3: add white Gaussian noise coloured by a random notch-filter cascade, scaled to an SNR
    drawn from ``U(snr_min, snr_max)`` dB relative to the whole signal's energy."""
    noise = rng.standard_normal(len(x))
    noise = _normalise(fir_filter(noise, notch_filter_coefficients(rng, config, config.min_g, config.max_g)),
                       always=True)
    snr_db = rng.uniform(config.snr_min, config.snr_max)
    noise *= np.linalg.norm(x) / (np.linalg.norm(noise) * 10.0 ** (snr_db / 20.0))
    return x + noise


_STAGES = {"1": lnl_convolutive_noise, "2": isd_additive_noise, "3": ssi_additive_noise}


def rawboost(x: np.ndarray, algorithm: int, rng: np.random.Generator, config: RawBoostConfig = RawBoostConfig()
             ) -> np.ndarray:
    """Apply RawBoost ``algorithm`` (see :data:`ALGORITHMS`) to a 1-D waveform; returns float32.

    Series combinations feed each stage's output to the next; the parallel one (8) adds the outputs of
    algorithms 1 and 2 on the same input and peak-limits the sum to 1. Algorithm 0 returns the input.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown RawBoost algorithm {algorithm!r}: choose from "
                         + ", ".join(f"{k} ({v})" for k, v in ALGORITHMS.items()))
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"RawBoost takes a non-empty 1-D waveform, got shape {x.shape}")
    plan = ALGORITHMS[algorithm]
    if plan == "none":
        y = x
    elif "||" in plan:
        y = _normalise(sum(_STAGES[stage](x, rng, config) for stage in plan.split("||")), always=False)
    else:
        y = x
        for stage in plan.split("+"):
            y = _STAGES[stage](y, rng, config)
    return y.astype(np.float32)

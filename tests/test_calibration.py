"""apallm.calibration.LogisticCalibrator: the one logistic fit under the default detector's head and score fusion."""

import json

import numpy as np
import pytest

from apallm.calibration import LogisticCalibrator, spoof_indicator, standardisation


def data(seed=0, n=300):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return rng.normal(size=(n, 2)) + np.outer(y, [2.0, 0.0]), y


def test_a_calibrator_round_trips_through_json_and_safetensors_unchanged(tmp_path):
    x, y = data()
    for standardise in (True, False):
        fitted = LogisticCalibrator.fit(x, y, c=0.5, standardise=standardise)
        assert fitted.standardised == standardise
        again = LogisticCalibrator.from_dict(json.loads(json.dumps(fitted.to_dict())))
        np.testing.assert_array_equal(again.predict(x), fitted.predict(x))
        fitted.save(tmp_path / "c.safetensors")
        np.testing.assert_array_equal(LogisticCalibrator.load(tmp_path / "c.safetensors").predict(x), fitted.predict(x))
    assert sorted(LogisticCalibrator.fit(x, y, standardise=False).to_dict()) == ["coef", "intercept"]


def test_the_fit_reads_label_words_and_bits_alike_and_weighs_the_classes_when_asked():
    x, y = data(seed=1)
    words = np.where(y == 1, "spoof", "bonafide")
    np.testing.assert_array_equal(LogisticCalibrator.fit(x, words).coef, LogisticCalibrator.fit(x, y).coef)
    # with three spoofs in four clips, balancing the classes lowers the intercept
    x4, y4 = np.concatenate([x, x[y == 1], x[y == 1]]), np.concatenate([y, y[y == 1], y[y == 1]])
    assert LogisticCalibrator.fit(x4, y4).intercept < LogisticCalibrator.fit(x4, y4, balanced=False).intercept


def test_unmeasured_features_read_as_the_training_mean():
    calibrator = LogisticCalibrator(coef=[1.0, 2.0], intercept=0.5, mean=[10.0, 0.0], scale=[2.0, 1.0])
    assert calibrator.logit(np.array([[np.nan, 1.0]]))[0] == pytest.approx(0.5 + 2.0)
    assert calibrator.logit(np.array([[14.0, np.nan]]))[0] == pytest.approx(0.5 + 2.0)
    plain = LogisticCalibrator(coef=[1.0, 2.0], intercept=0.5)
    assert plain.predict(np.array([[0.0, 0.0]]))[0] == pytest.approx(1 / (1 + np.exp(-0.5)))


def test_weighted_rows_standardise_and_fit_as_their_repeated_rows():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3)) * [1.0, 5.0, 0.1] + [0.0, 2.0, -1.0]
    y = (x[:, 0] + rng.normal(size=40) > 0).astype(int)
    counts = rng.integers(1, 4, size=40)
    repeated = np.repeat(x, counts, axis=0)
    mean, scale = standardisation(x, counts)
    np.testing.assert_allclose(mean, repeated.mean(0))
    np.testing.assert_allclose(scale, repeated.std(0))
    holed = x.copy()
    holed[0, 1] = np.nan  # NaN is left out, as unweighted
    np.testing.assert_allclose(standardisation(holed, np.ones(40))[0], np.nanmean(holed, 0))
    fit = LogisticCalibrator.fit(x, y, c=0.5, balanced=False, sample_weight=counts, row_weight=counts)
    reference = LogisticCalibrator.fit(repeated, np.repeat(y, counts), c=0.5, balanced=False)
    np.testing.assert_allclose(fit.predict(x), reference.predict(x), atol=1e-6)


def test_bad_inputs_are_clear_errors(tmp_path):
    x, y = data()
    with pytest.raises(ValueError, match="needs both labels"):
        LogisticCalibrator.fit(x, np.ones_like(y))
    with pytest.raises(ValueError, match="unknown label 'fake'"):
        spoof_indicator(["spoof", "fake"])
    with pytest.raises(ValueError, match="unknown label 2"):
        spoof_indicator([0, 2])
    with pytest.raises(ValueError, match="one row per label"):
        LogisticCalibrator.fit(x[:10], y)
    with pytest.raises(ValueError, match="both mean and scale"):
        LogisticCalibrator(coef=[1.0], intercept=0.0, mean=[0.0])
    with pytest.raises(ValueError, match="differ in shape"):
        LogisticCalibrator(coef=[1.0, 2.0], intercept=0.0, mean=[0.0], scale=[1.0])
    with pytest.raises(ValueError, match=r"h.json: not a logistic calibrator \(missing \['coef'\]"):
        LogisticCalibrator.from_dict({"intercept": 0.0}, source=tmp_path / "h.json")
    with pytest.raises(ValueError, match=r"unknown keys \['bias'\]"):
        LogisticCalibrator.from_dict({"coef": [1.0], "intercept": 0.0, "bias": 1.0})

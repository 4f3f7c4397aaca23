import numpy as np
import pytest
from conftest import SR, speech_like

from apallm import load_audio
from apallm.calibration import LogisticCalibrator
from apallm.detectors import Detector
from apallm.fusion import FusedDetector, LogisticFusion
from apallm.metrics import compute_eer


def eer_of(p_spoof, labels):
    p = np.asarray(p_spoof)
    spoof = np.asarray(labels) == "spoof"
    return compute_eer(1 - p[~spoof], 1 - p[spoof])[0]


def complementary(n=400, seed=0):
    """Two systems, each blind to half of the attacks: each alone errs often, together they see all."""
    rng = np.random.default_rng(seed)
    labels = np.array(["bonafide"] * (n // 2) + ["spoof"] * (n // 2))
    attack_a = np.zeros(n, bool)
    attack_a[n // 2: 3 * n // 4] = True  # spoofs only system A sees
    attack_b = (labels == "spoof") & ~attack_a  # spoofs only system B sees
    a = np.where(attack_a, 2.5, -1.0) + rng.normal(0, 1, n)
    b = np.where(attack_b, 2.5, -1.0) + rng.normal(0, 1, n)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    return labels, {"a": sig(a), "b": sig(b)}


def test_fusion_beats_the_better_single_system_on_complementary_errors(tmp_path):
    labels, dev = complementary(seed=0)
    test_labels, test = complementary(seed=1)
    fusion = LogisticFusion.fit(dev, labels)
    fused = fusion.predict(test)
    best_single = min(eer_of(test["a"], test_labels), eer_of(test["b"], test_labels))
    assert eer_of(fused, test_labels) < best_single - 0.05
    assert all(w > 0 for w in fusion.weights)
    again = LogisticFusion.load(fusion.save(tmp_path / "fusion.json"))
    np.testing.assert_allclose(again.predict(test), fused)


def test_fusion_errors():
    labels, dev = complementary()
    with pytest.raises(ValueError, match="both labels"):
        LogisticFusion.fit(dev, ["spoof"] * len(labels))
    with pytest.raises(ValueError, match="probabilities"):
        LogisticFusion.fit({"a": dev["a"] * 3}, labels)
    fusion = LogisticFusion.fit(dev, labels)
    with pytest.raises(ValueError, match="needs scores from b"):
        fusion.predict({"a": dev["a"]})


class Constant(Detector):
    def __init__(self, value):
        self.value = value

    def score(self, clips):
        return np.full(len(clips), self.value)


def test_fused_detector_is_a_detector():
    fusion = LogisticFusion(["x", "y"], LogisticCalibrator(coef=[1.0, 1.0], intercept=0.0))
    det = FusedDetector({"x": Constant(0.9), "y": Constant(0.5)}, fusion)
    clips = [load_audio(speech_like(1.0), sample_rate=SR)]
    assert det.score(clips)[0] == pytest.approx(0.9)  # logit(0.5) = 0 adds nothing
    (verdict,) = det.explain(clips)
    assert verdict.label == "spoof" and verdict.detector == "fusion"

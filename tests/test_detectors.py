"""The one door to a verdict (Detector.explain): any source, abstention without speech, flags, the uncertain
band, auxiliary scores; and the factory the commands share."""

import argparse

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, speech_like

from apallm.audio import load_audio
from apallm.detectors import (
    Detector,
    add_arguments,
    available_detectors,
    explain_with,
    from_args,
    load_detector,
    parse_pairs,
)


class Fixed(Detector):
    """Scores every clip with the same P(spoof): the machinery around the score is what is tested."""

    def __init__(self, p: float, name: str = "fixed"):
        self.p, self.name = p, name

    def score(self, clips):
        return np.full(len(clips), self.p)


@pytest.fixture
def files(tmp_path):
    speech = tmp_path / "speech.wav"
    sf.write(speech, speech_like(2.0), SR)
    noise = tmp_path / "noise.wav"
    sf.write(noise, (0.2 * np.random.default_rng(1).standard_normal(2 * SR)).astype(np.float32), SR)
    return speech, noise


def test_the_shipped_detector_explains_paths_bytes_arrays_and_clips(files):
    speech, _ = files
    detector = load_detector("default")
    clip = load_audio(speech)
    samples, _ = sf.read(speech, dtype="float32")  # an array is raw audio: conditioned like a file's samples
    verdicts = detector.explain([str(speech), speech.read_bytes(), samples, (samples, SR), clip])
    assert len({round(v.score, 6) for v in verdicts}) == 1  # the same samples, whatever the wrapping
    assert all(v.label in ("bonafide", "spoof") for v in verdicts)
    assert detector.score(str(speech))[0] == pytest.approx(verdicts[0].score)


def test_explain_abstains_on_clips_without_speech_and_never_scores_them(files):
    speech, noise = files

    class Counting(Fixed):
        seen = 0

        def score(self, clips):
            Counting.seen += len(clips)
            return super().score(clips)

    v_noise, v_speech = Counting(0.9).explain([noise, speech])
    assert Counting.seen == 1  # only the speech clip reached the detector
    assert v_noise.label == "no_speech" and v_noise.score is None and v_noise.flags == ["no_speech"]
    assert v_speech.label == "spoof" and v_speech.score == 0.9 and not v_speech.uncertain


def test_flags_and_the_detectors_uncertain_band_reach_the_verdict(files):
    speech, _ = files
    offset = load_audio(speech_like(2.0) + 0.1, sample_rate=SR)
    detector = Fixed(0.55)
    (v,) = detector.explain([offset])
    assert v.flags == ["dc_offset"] and v.uncertain and v.display_label == "spoof (uncertain)"
    detector.uncertain_band = (0.45, 0.5)
    assert not detector.explain([offset])[0].uncertain


def test_auxiliary_scores_go_beside_the_verdict(files):
    speech, noise = files
    verdicts = explain_with(Fixed(0.2), [speech, noise], [Fixed(0.7, "aux")])
    assert verdicts[0].cm_scores == {"aux": 0.7} and verdicts[0].to_dict()["cm_scores"] == {"aux": 0.7}
    assert verdicts[1].label == "no_speech"


def test_the_shared_options_build_the_named_detector(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--detector", "tests.test_detectors:make_fixed", "--detector-arg", "p=0.3",
                              "--uncertain-band", "0.2,0.8"])
    detector = from_args(args)
    assert type(detector).__name__ == "Fixed" and detector.p == 0.3 and detector.uncertain_band == (0.2, 0.8)
    assert parser.parse_args([]).max_duration == 600.0
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_pairs(["p"])
    with pytest.raises(SystemExit):  # an ALLM and a named detector at once
        parser.parse_args(["--model", "tiny-qwen2_5-omni", "--detector", "default"])


def make_fixed(p: str = "0.5") -> Fixed:
    return Fixed(float(p))


def test_audio_llms_load_through_the_registry_like_every_other_detector():
    from apallm.allm.base import ALLMDetector

    assert "allm" in available_detectors()
    detector = load_detector("allm", model="tiny-qwen2_5-omni")
    assert isinstance(detector, ALLMDetector) and detector.family == "qwen2_5_omni"


def test_a_default_detector_folder_loads_by_its_path(tmp_path):
    from apallm.cm.default import WEIGHTS_DIR, DefaultDetector

    detector = load_detector(str(WEIGHTS_DIR))
    assert isinstance(detector, DefaultDetector) and detector.name == "apallm-default"
    with pytest.raises(ValueError, match="unknown detector"):
        load_detector(str(tmp_path))  # a folder that is neither kind

import numpy as np
import pytest
from conftest import SR, speech_like

from apallm import load_audio
from apallm.cm.codecs import CODECS, NARROWBAND, CodecConfig, random_round_trip, round_trip, telephone_band
from apallm.evidence import measure_cues


def bandwidth(x):
    return {c.name: c for c in measure_cues(load_audio(x, sample_rate=SR))}["bandwidth_hz"].value


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_every_codec_round_trips_with_the_same_length_and_changes_the_signal(codec):
    x = speech_like(2.0, seed=1)
    y = round_trip(x, codec, 0.8)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert not np.allclose(x, y, atol=1e-3)
    # still the same speech: the codec keeps the energy of the band it carries
    reference = telephone_band(x, SR) if codec in NARROWBAND else x
    assert 0.5 < np.sum(y ** 2) / np.sum(reference ** 2) < 1.5


@pytest.mark.parametrize("codec", ["mulaw", "alaw", "gsm"])
def test_telephone_channels_are_narrow_band(codec):
    assert bandwidth(speech_like(2.0)) > 7000
    assert bandwidth(round_trip(speech_like(2.0), codec)) < 4000


def test_random_round_trip_is_seeded():
    x = speech_like(1.5, seed=2)
    a, codec_a = random_round_trip(x, np.random.default_rng(7))
    b, codec_b = random_round_trip(x, np.random.default_rng(7))
    assert codec_a == codec_b and np.array_equal(a, b)
    drawn = {random_round_trip(x, np.random.default_rng(s), CodecConfig(codecs=("mp3", "mulaw")))[1]
             for s in range(12)}
    assert drawn == {"mp3", "mulaw"}
    with pytest.raises(ValueError, match="unknown codecs"):
        CodecConfig(codecs=("aac",))


def test_cm_training_set_applies_codecs_seeded(tmp_path):
    from apallm.cm.train import CMDataset
    from apallm.datasets.manifest import read_labelled
    from apallm.synth import make_toy_set

    rows = read_labelled(make_toy_set(tmp_path, n=2))
    plain = CMDataset(rows, 16000, train=True, seed=3)
    coded = CMDataset(rows, 16000, train=True, seed=3, codec={"probability": 1.0, "codecs": ["mulaw"]})
    again = CMDataset(rows, 16000, train=True, seed=3, codec={"probability": 1.0, "codecs": ["mulaw"]})
    assert not np.allclose(plain[0][0].numpy(), coded[0][0].numpy())
    assert np.array_equal(coded[0][0].numpy(), again[0][0].numpy())
    with pytest.raises(ValueError, match="unknown codecs"):
        CMDataset(rows, 16000, train=True, codec={"codecs": ["aac"]})

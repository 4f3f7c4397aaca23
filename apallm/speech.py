"""Speech presence: does a clip hold enough speech for a verdict about speech?

A detector of synthetic speech has nothing to say about noise, music, tones or silence, yet it will still
output a score for them. Every verdict therefore starts with this check, and a clip without enough speech
gets the abstaining label ``no_speech`` instead of a confident bona fide / spoof.

The check runs Silero VAD (MIT; the ``silero-vad`` package carries its weights, so it works offline) over
the 16 kHz clip in 32 ms frames, and counts the frames whose speech probability reaches
:data:`FRAME_THRESHOLD`. A clip has speech when that adds up to at least :data:`MIN_SPEECH_S` seconds, or to
half of a clip shorter than twice that.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np

from apallm.audio import TARGET_SAMPLE_RATE, Clip

#: per-frame speech probability that counts as speech (below Silero's 0.5: short words in children's and
#: far-field digit recordings reach 0.3-0.5, while noise, tones and chords stay under 0.2)
FRAME_THRESHOLD = 0.3
#: seconds of detected speech a clip needs (shorter clips: half their length)
MIN_SPEECH_S = 0.1
FRAME_SAMPLES = 512  # Silero VAD's frame at 16 kHz (32 ms)

_lock = threading.Lock()
_model = None


@dataclass(frozen=True)
class SpeechPresence:
    """``speech_s``: seconds of frames judged speech; ``ratio``: their share of the clip."""

    speech_s: float
    ratio: float
    has_speech: bool

    def to_dict(self) -> dict:
        return {"speech_s": round(self.speech_s, 3), "ratio": round(self.ratio, 4), "has_speech": self.has_speech}


def _vad():
    global _model
    if _model is None:
        import torch

        threads = torch.get_num_threads()
        with warnings.catch_warnings():  # it uses torch.jit and importlib.resources.path, both deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                from silero_vad import load_silero_vad
            except ImportError as exc:  # a core dependency; only a broken install gets here
                raise ImportError("speech presence needs the silero-vad package: pip install silero-vad") from exc
            finally:
                torch.set_num_threads(threads)  # importing silero_vad sets torch to one thread
            _model = load_silero_vad()
    return _model


def speech_presence(clip: Clip) -> SpeechPresence:
    """Measure the speech in ``clip`` (16 kHz). A silent clip has none, without running the VAD."""
    if clip.sample_rate != TARGET_SAMPLE_RATE:
        raise ValueError(f"speech presence needs {TARGET_SAMPLE_RATE} Hz audio, got {clip.sample_rate} Hz")
    duration = clip.duration_s
    if clip.is_silent or clip.num_samples < FRAME_SAMPLES:
        return SpeechPresence(0.0, 0.0, False)
    import torch

    wave = torch.from_numpy(np.ascontiguousarray(clip.waveform, dtype=np.float32))
    with _lock, torch.inference_mode():
        model = _vad()
        model.reset_states()
        probs = model.audio_forward(wave, TARGET_SAMPLE_RATE)[0].numpy()
        model.reset_states()
    speech_s = float(np.sum(probs >= FRAME_THRESHOLD)) * FRAME_SAMPLES / TARGET_SAMPLE_RATE
    speech_s = min(speech_s, duration)
    need = min(MIN_SPEECH_S, duration / 2)
    return SpeechPresence(speech_s, speech_s / duration if duration else 0.0, speech_s >= need)

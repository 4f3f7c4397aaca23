"""Shared fixtures and helpers. Signals whose truth is known, made by the tests themselves; the expensive
read-only things several test modules need, made once a session (a random AASIST-L checkpoint, toy sets, the
default detector); the demo served on 127.0.0.1; Debian's headless Chromium.

Test modules import helpers from here (``from conftest import ...``), never from another test module."""

from __future__ import annotations

import contextlib
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from apallm.detectors import Detector
from apallm.synth import SR, brickwall_lowpass, harmonic_voice, speech_like, tone, white_noise  # noqa: F401

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: a tiny random Whisper (transformers' WhisperConfig arguments) for front-end tests
TINY_WHISPER = dict(vocab_size=64, num_mel_bins=80, d_model=16, encoder_layers=2, decoder_layers=1,
                    encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                    max_source_positions=1500, max_target_positions=32, pad_token_id=1, bos_token_id=1,
                    eos_token_id=1, decoder_start_token_id=2)

SPLICE_S = 1.5  # where spliced_clip() joins its two voices


@pytest.fixture
def sr():
    return SR


# ------------------------------------------------------------------ models and data, made once a session


@pytest.fixture(scope="session")
def cm_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised AASIST-L countermeasure checkpoint folder (torch seed 0); read-only."""
    import torch

    from apallm.cm import build_preset, save_cm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_preset("aasist-l")
    return save_cm(model, tmp_path_factory.mktemp("cm") / "aasist-l", name="aasist-l",
                   provenance={"source": "random initialisation (tests)"})


@pytest.fixture(scope="session")
def toy_set(tmp_path_factory):
    """``toy_set(n=..., seed=..., targets=...)``: the manifest of ``apallm.synth.make_toy_set`` with those
    arguments, written once a session; read-only (a test that edits a set makes its own)."""
    from apallm.synth import make_toy_set

    made: dict[tuple, Path] = {}

    def make(**kwargs) -> Path:
        key = tuple(sorted(kwargs.items()))
        if key not in made:
            made[key] = make_toy_set(tmp_path_factory.mktemp("toy"), **kwargs)
        return made[key]

    return make


@pytest.fixture(scope="session")
def default_detector():
    """The detector shipped inside the package (``load_detector("default")``); read-only."""
    from apallm.detectors import load_detector

    return load_detector("default")


# ------------------------------------------------------------------ the demo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(detector, limits, cms=(), chat_model=None):
    """The demo app launched on 127.0.0.1 at a free port; yields (app, url); closed afterwards."""
    from apallm.demo import build_app, launch

    app = build_app(detector, cms=cms, limits=limits, chat_model=chat_model)
    _, url, _ = launch(app, limits, host="127.0.0.1", port=free_port(), block=False, quiet=True)
    try:
        yield app, url
    finally:
        app.close(verbose=False)


def spliced_clip(path: Path) -> Path:
    """1.5 s of one voice, then a telephone-band voice without a pause: a splice at 1.5 s; then 1.5 s of
    speech-like syllables (the steady voices alone are no speech to a voice activity detector)."""
    a = harmonic_voice(SPLICE_S, seed=1, pauses=False)
    b = brickwall_lowpass(harmonic_voice(1.5, seed=3, pauses=False, f0=(200, 260)), 3400.0)
    sf.write(path, np.concatenate([a, b, speech_like(1.5, seed=2)]), SR)
    return path


# ------------------------------------------------------------------ a real browser


@pytest.fixture(scope="module")
def browser_args() -> list[str]:
    """Chromium's extra command-line arguments; a test module overrides this fixture to add some."""
    return []


@pytest.fixture(scope="module")
def browser(browser_args):
    """Debian's headless Chromium driven by Playwright, one per test module; skips where either is missing."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it where it can)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (the dev extra)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=browser_args)
        yield browser
        browser.close()


# --------------------------------------------------------------------------- a detector that keys on one artifact

TONE_HZ, START_S, END_S = 3000.0, 1.5, 2.0


class ToneDetector(Detector):
    """P(spoof) rises with the energy of a narrow band around 3 kHz: a detector that keys on one artifact."""

    name = "tone-detector"

    def score(self, clips):
        out = []
        for clip in clips:
            spec = np.abs(np.fft.rfft(clip.waveform)) ** 2
            f = np.fft.rfftfreq(len(clip.waveform), 1 / clip.sample_rate)
            ratio = spec[np.abs(f - TONE_HZ) < 20].sum() / spec.sum()
            out.append(1.0 - np.exp(-ratio / 0.01))
        return np.array(out)


def planted(seconds=4.0):
    x = speech_like(seconds, seed=2)
    t = np.arange(len(x)) / SR
    inside = (t >= START_S) & (t < END_S)
    x[inside] += tone(TONE_HZ, seconds, amp=0.05)[inside]
    return x

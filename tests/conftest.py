"""Signals whose truth is known, made by the tests themselves."""

from __future__ import annotations

import pytest

from apallm.synth import SR, brickwall_lowpass, speech_like, tone, white_noise  # noqa: F401


@pytest.fixture
def sr():
    return SR

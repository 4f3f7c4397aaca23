import hashlib
import io
import subprocess
import sys

import numpy as np
import pytest
from conftest import SR, speech_like, tone, white_noise
from PIL import Image

from apallm.evidence import SpectrogramConfig, render_spectrogram, snap_to_patch
from apallm.evidence.spectrogram import spectrogram_db


def rgb(spec):
    return np.asarray(spec.image.convert("RGB")).astype(int)


@pytest.mark.parametrize("kind", ["cqt", "mel", "stft"])
def test_render_is_byte_identical_and_sized(kind):
    x = speech_like(2.0)
    cfg = SpectrogramConfig(kind=kind, width=500, height=390)
    a = render_spectrogram(x, SR, cfg)
    b = render_spectrogram(x.copy(), SR, cfg)
    assert a.png == b.png
    assert a.png.startswith(b"\x89PNG")
    assert a.image.size == (504, 392) == (cfg.width, cfg.height)
    assert cfg.width % 28 == 0 and cfg.height % 28 == 0


@pytest.mark.slow
def test_render_is_identical_across_processes():
    code = ("import hashlib,sys; sys.path.insert(0,'tests'); from conftest import speech_like; "
            "from apallm.evidence import render_spectrogram; "
            "print(hashlib.sha256(render_spectrogram(speech_like(2.0), 16000).png).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == hashlib.sha256(render_spectrogram(speech_like(2.0), SR).png).hexdigest()


def test_size_snapping():
    assert snap_to_patch(448) == 448
    assert snap_to_patch(460) == 448 and snap_to_patch(463) == 476
    assert snap_to_patch(10) == 224  # never smaller than room for axes
    assert SpectrogramConfig(width=1000, height=300).width == 1008


def test_axes_margins_carry_labels_and_data_area_carries_the_signal():
    spec = render_spectrogram(speech_like(2.0), SR)
    img = rgb(spec)
    left, top, right, bottom = spec.plot_box
    dark = img.sum(axis=2) < 300
    assert dark[top:bottom, :left - 2].sum() > 100, "frequency tick labels missing"
    assert dark[bottom + 2:, left:right].sum() > 40, "time tick labels missing"
    assert dark[:top - 1, left:right].sum() > 100, "header missing"
    data = img[top:bottom, left:right]
    assert data.std() > 20, "data area is blank"


def test_guides_are_drawn_at_band_edges():
    spec = render_spectrogram(np.zeros(SR, np.float32), SR, SpectrogramConfig(kind="stft"))
    img = rgb(spec)
    left, top, right, bottom = spec.plot_box
    cyan = (img[:, :, 0] < 60) & (img[:, :, 1] > 200) & (img[:, :, 2] > 200)
    rows = np.nonzero(cyan[:, left:right].sum(axis=1) > 20)[0]
    # linear axis from 0 to 8 kHz: 1, 2 and 4 kHz at 1/8, 2/8 and 4/8 of the height, 8 kHz at the top
    for frac in (1 / 8, 2 / 8, 4 / 8, 1.0):
        y = bottom - frac * (bottom - top)
        assert np.min(np.abs(rows - y)) <= 2, f"no guide near {frac * 8:g} kHz"


@pytest.mark.parametrize("kind", ["cqt", "mel", "stft"])
def test_fixed_db_scale_full_scale_sine_is_0_db_at_its_frequency(kind):
    cfg = SpectrogramConfig(kind=kind)
    db, freqs, times = spectrogram_db(tone(1000.0, 2.0, amp=1.0), SR, cfg)
    assert db.shape == (len(freqs), len(times))
    mid = db[:, db.shape[1] // 4: 3 * db.shape[1] // 4]
    assert abs(mid.max()) < 1.0
    peak_hz = freqs[np.argmax(mid.mean(axis=1))]
    assert abs(np.log2(peak_hz / 1000.0)) < 0.1
    # 40 dB quieter is 40 dB lower: the scale is absolute, not normalised per clip
    quiet, _, _ = spectrogram_db(tone(1000.0, 2.0, amp=0.01), SR, cfg)
    assert quiet[:, quiet.shape[1] // 4: 3 * quiet.shape[1] // 4].max() == pytest.approx(-40.0, abs=1.0)


def test_cqt_axis_is_logarithmic_and_reaches_near_nyquist():
    spec = render_spectrogram(white_noise(1.0), SR)
    f = spec.frequencies_hz
    ratios = f[1:] / f[:-1]
    assert np.allclose(ratios, 2 ** (1 / 24))
    assert 7000 < f[-1] < 8000 and f[0] == pytest.approx(32.70, abs=0.01)


def test_markers_and_regions_change_the_picture_only_when_asked():
    x = speech_like(2.0)
    plain = render_spectrogram(x, SR)
    marked = render_spectrogram(x, SR, markers_s=[1.0], regions_s=[(0.5, 0.8)])
    assert plain.png != marked.png
    diff = np.any(rgb(plain) != rgb(marked), axis=2)
    left, top, right, bottom = plain.plot_box
    x_marker = int(round(left + 0.5 * (right - left)))
    assert diff[top:bottom, x_marker].sum() > 20


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="unknown spectrogram kind"):
        SpectrogramConfig(kind="wavelet")
    with pytest.raises(ValueError):
        SpectrogramConfig(db_min=0, db_max=-10)


def test_long_and_short_clips_render():
    for seconds in (0.25, 30.0):
        spec = render_spectrogram(white_noise(seconds), SR)
        Image.open(io.BytesIO(spec.png)).verify()
        assert spec.matrix_db.shape[1] >= 2

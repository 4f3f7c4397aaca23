import io
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, tone

from apallm import (
    AudioError,
    AudioTooLongError,
    AudioTooShortError,
    EmptyAudioError,
    NonFiniteAudioError,
    UnreadableAudioError,
    UnsupportedFormatError,
    load_audio,
    split_windows,
)
from apallm.audio import sniff_format


def dominant_hz(x, sr=SR):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)]


@pytest.mark.parametrize("fmt,subtype,ext", [("WAV", "PCM_16", "wav"), ("FLAC", "PCM_16", "flac"),
                                             ("OGG", "VORBIS", "ogg"), ("MP3", "MPEG_LAYER_III", "mp3")])
def test_decodes_common_formats_and_resamples(tmp_path, fmt, subtype, ext):
    src_sr = 44_100
    x = tone(1000.0, 1.5, sr=src_sr, amp=0.4)
    path = tmp_path / f"clip.{ext}"
    sf.write(path, x, src_sr, format=fmt, subtype=subtype)
    clip = load_audio(path)
    assert clip.sample_rate == SR and clip.original_sample_rate == src_sr
    assert clip.original_format == fmt
    assert clip.id == "clip"
    # duration kept (lossy codecs add a little padding) and the tone is still at 1 kHz
    assert abs(clip.duration_s - 1.5) < 0.06
    assert abs(dominant_hz(clip.waveform) - 1000.0) < 5
    assert 0.3 < np.max(np.abs(clip.waveform)) < 0.5


def test_pyav_decodes_containers_libsndfile_cannot(tmp_path):
    av = pytest.importorskip("av", reason="PyAV (apallm[codecs]) not installed")
    path = tmp_path / "clip.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=SR)
        stream.layout = "mono"
        x = tone(500.0, 1.0, amp=0.3)
        frame = av.AudioFrame.from_ndarray(x[None, :], format="flt", layout="mono")
        frame.sample_rate = SR
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    clip = load_audio(path)
    assert clip.original_format == "MP4"
    assert abs(clip.duration_s - 1.0) < 0.1
    assert abs(dominant_hz(clip.waveform) - 500.0) < 5


def test_stereo_mixes_down_and_measures_before_resampling(tmp_path):
    left = tone(300.0, 1.0, sr=48_000, amp=0.5)
    right = -left + 0.2  # cancels the tone, leaves a DC of 0.1 in the mix
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 48_000, subtype="FLOAT")
    clip = load_audio(path)
    assert clip.original_channels == 2
    # the offset is measured on the decoded mix, flagged, and removed by the intake's conditioning
    assert abs(clip.dc_offset - 0.1) < 1e-4 and "dc_offset" in clip.flags
    assert np.allclose(clip.waveform, 0.0, atol=1e-3)
    raw = load_audio(path, conditioning=False)
    assert np.allclose(raw.waveform[2000:-2000], 0.1, atol=1e-3)


def test_conditioning_removes_offset_and_rumble_and_keeps_speech_band():
    t = np.arange(3 * SR) / SR
    speech_band = 0.3 * np.sin(2 * np.pi * 220 * t)
    rumble = 0.2 * np.sin(2 * np.pi * 5 * t)
    clip = load_audio((speech_band + rumble - 0.26).astype(np.float32), sample_rate=SR)
    assert abs(clip.dc_offset + 0.26) < 1e-3 and clip.flags == ["dc_offset"]
    settled = clip.waveform[SR // 2:]  # after the filter's start-up
    assert abs(float(np.mean(settled))) < 1e-3
    assert abs(np.max(np.abs(settled)) - 0.3) < 0.01  # rumble gone, 220 Hz kept at its level
    same = load_audio(speech_band.astype(np.float32), sample_rate=SR)
    assert np.max(np.abs(settled - same.waveform[SR // 2:])) < 0.01


def test_detectors_take_paths_bytes_arrays_and_clips(tmp_path):
    from apallm.audio import as_clips

    x = tone(440.0, 1.0, amp=0.25)
    path = tmp_path / "t.wav"
    sf.write(path, x, SR)
    clips = as_clips([str(path), path.read_bytes(), x, (x, SR), load_audio(path)])
    assert len(clips) == 5 and all(c.sample_rate == SR for c in clips)
    assert all(np.allclose(c.waveform, clips[0].waveform, atol=1e-4) for c in clips)
    assert len(as_clips(str(path))) == 1
    with pytest.raises(TypeError, match="list of arrays"):
        as_clips(x)


def test_bytes_file_object_and_arrays_agree(tmp_path):
    x = tone(440.0, 1.0, amp=0.25)
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="FLOAT")
    data = buf.getvalue()
    a = load_audio(data)
    b = load_audio(io.BytesIO(data))
    c = load_audio(x, sample_rate=SR)
    d = load_audio(torch.from_numpy(x)[None, :], sample_rate=SR)  # torchaudio's (channels, time)
    e = load_audio((x * 32767).astype(np.int16), sample_rate=SR)
    for other in (b, c, d):
        np.testing.assert_allclose(a.waveform, other.waveform, atol=1e-7)
    np.testing.assert_allclose(a.waveform, e.waveform, atol=1e-4)
    with pytest.raises(ValueError, match="sample_rate"):
        load_audio(x)


def test_array_resampling_keeps_frequency_and_length():
    x = tone(3000.0, 2.0, sr=22_050, amp=0.5)
    clip = load_audio(x, sample_rate=22_050)
    assert clip.num_samples == 32_000
    assert abs(dominant_hz(clip.waveform) - 3000.0) < 3


# ------------------------------------------------------------------------------------------ bad input

def _wav_bytes(x, sr=SR, subtype="PCM_16"):
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def test_missing_file(tmp_path):
    with pytest.raises(UnreadableAudioError, match="no such file"):
        load_audio(tmp_path / "nope.wav")


def test_corrupt_wav_is_unreadable(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    with pytest.raises(UnreadableAudioError, match="corrupt or truncated WAV"):
        load_audio(path)


def test_truncated_flac_is_unreadable(tmp_path):
    buf = io.BytesIO()
    sf.write(buf, tone(200.0, 2.0), SR, format="FLAC")
    path = tmp_path / "cut.flac"
    path.write_bytes(buf.getvalue()[:60])
    with pytest.raises(UnreadableAudioError):
        load_audio(path)


def test_zero_bytes_and_zero_frames_are_empty(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(EmptyAudioError, match="0 bytes"):
        load_audio(empty)
    with pytest.raises(EmptyAudioError, match="zero samples"):
        load_audio(_wav_bytes(np.zeros(0, dtype=np.float32)))
    with pytest.raises(EmptyAudioError):
        load_audio(np.zeros(0, dtype=np.float32), sample_rate=SR)


def test_non_finite_samples():
    x = tone(200.0, 1.0)
    x[100] = np.nan
    x[200] = np.inf
    with pytest.raises(NonFiniteAudioError, match="2 of 16000"):
        load_audio(_wav_bytes(x, subtype="FLOAT"))


@pytest.mark.parametrize("payload,what", [(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "PNG"),
                                          (b"hello, this is a text file\n" * 10, "text"),
                                          (b"%PDF-1.7\n" + b"\x00" * 100, "PDF")])
def test_non_audio_is_unsupported(tmp_path, payload, what):
    path = tmp_path / "thing.wav"
    path.write_bytes(payload)
    with pytest.raises(UnsupportedFormatError, match=what):
        load_audio(path)


def test_unknown_binary_is_unsupported():
    noise = bytes(np.random.default_rng(0).integers(128, 256, 4000, dtype=np.uint8))
    with pytest.raises(UnsupportedFormatError):
        load_audio(b"\x01\x02" + noise)


def test_too_long_is_refused_before_decoding_and_after(tmp_path):
    path = tmp_path / "long.flac"
    sf.write(path, tone(200.0, 5.0), SR)
    with pytest.raises(AudioTooLongError, match="limit of 4 s"):
        load_audio(path, max_duration_s=4)
    with pytest.raises(AudioTooLongError):
        load_audio(tone(200.0, 5.0), sample_rate=SR, max_duration_s=4)
    assert load_audio(path, max_duration_s=None).duration_s == pytest.approx(5.0)


def test_too_short():
    with pytest.raises(AudioTooShortError, match="100 ms"):
        load_audio(tone(200.0, 0.1), sample_rate=SR)
    assert load_audio(tone(200.0, 0.1), sample_rate=SR, min_duration_s=0.05).duration_s == pytest.approx(0.1)


def test_every_error_is_its_own_type_under_one_base():
    kinds = {cls.kind for cls in (UnreadableAudioError, UnsupportedFormatError, EmptyAudioError,
                                  NonFiniteAudioError, AudioTooLongError, AudioTooShortError)}
    assert len(kinds) == 6
    assert all(issubclass(cls, AudioError) for cls in (UnreadableAudioError, AudioTooShortError))
    err = UnreadableAudioError("bad header", "a.wav")
    assert err.source == "a.wav" and str(err) == "a.wav: bad header"


def test_silence_is_flagged_not_refused():
    clip = load_audio(np.zeros(SR, dtype=np.float32), sample_rate=SR)
    assert clip.is_silent and clip.peak_dbfs == -math.inf
    quiet = load_audio(tone(200.0, 1.0, amp=1e-4), sample_rate=SR)
    assert quiet.is_silent
    assert not load_audio(tone(200.0, 1.0, amp=0.01), sample_rate=SR).is_silent


def test_clipping_is_measured_on_the_decoded_samples(tmp_path):
    amp = 3.0
    x = np.clip(tone(100.0, 2.0, amp=amp), -1.0, 1.0)
    path = tmp_path / "clipped.wav"
    sf.write(path, x, SR, subtype="PCM_16")
    clip = load_audio(path)
    expected = 1.0 - (2 / np.pi) * np.arcsin(0.999 / amp)
    assert abs(clip.clipping_ratio - expected) < 0.01
    assert "clipped" in clip.flags


def test_sniffing():
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "WAV"
    assert sniff_format(b"fLaC\x00") == "FLAC"
    assert sniff_format(b"ID3\x04") == "MP3"
    assert sniff_format(b"\xff\xfb\x90\x00") == "MP3"
    assert sniff_format(b"\xff\xd8\xff\xe0") == "non-audio:JPEG"
    assert sniff_format(b"\x00\x00\x00\x20ftypM4A ") == "MP4"


# ------------------------------------------------------------------------------------------ windows

def test_sliding_windows_cover_every_sample_with_full_windows():
    clip = load_audio(np.arange(70 * SR, dtype=np.float32) / (70 * SR), sample_rate=SR, max_duration_s=None)
    wins = split_windows(clip, window_s=30.0)
    assert [round(w.offset_s, 3) for w in wins] == [0.0, 30.0, 40.0]
    assert all(w.num_samples == 30 * SR for w in wins)
    covered = np.zeros(clip.num_samples, bool)
    for w in wins:
        start = int(round(w.offset_s * SR))
        np.testing.assert_array_equal(w.waveform, clip.waveform[start:start + w.num_samples])
        covered[start:start + w.num_samples] = True
    assert covered.all()
    assert [w.id for w in wins] == ["clip_w00", "clip_w01", "clip_w02"]
    overlap = split_windows(clip, window_s=30.0, hop_s=20.0)
    assert [round(w.offset_s) for w in overlap] == [0, 20, 40]


def test_first_center_and_short_clips():
    clip = load_audio(np.random.default_rng(0).standard_normal(50 * SR).astype(np.float32) * 0.1,
                      sample_rate=SR)
    (first,) = split_windows(clip, 30.0, policy="first")
    (center,) = split_windows(clip, 30.0, policy="center")
    assert first.offset_s == 0.0 and center.offset_s == pytest.approx(10.0)
    short = load_audio(tone(200.0, 3.0), sample_rate=SR)
    assert split_windows(short, 30.0) == [short]
    with pytest.raises(ValueError, match="unknown window policy"):
        split_windows(clip, 30.0, policy="random")


def test_torchaudio_resampler_option():
    x = tone(3000.0, 1.0, sr=22_050, amp=0.5)
    a = load_audio(x, sample_rate=22_050, resampler="torchaudio")
    b = load_audio(x, sample_rate=22_050)
    assert a.num_samples == b.num_samples == 16_000
    assert abs(dominant_hz(a.waveform) - 3000.0) < 3
    assert not np.array_equal(a.waveform, b.waveform)
    assert np.max(np.abs(a.waveform[1000:-1000] - b.waveform[1000:-1000])) < 0.01
    with pytest.raises(ValueError, match="unknown resampler"):
        load_audio(x, sample_rate=22_050, resampler="linear")

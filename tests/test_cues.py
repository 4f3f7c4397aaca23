import json

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, brickwall_lowpass, speech_like, tone, white_noise

from apallm import EvidenceConfig, extract_evidence, load_audio
from apallm.evidence import Evidence, measure_cues
from apallm.evidence.cues import cue_specs
from apallm.synth import harmonic_voice

NO_IMAGE = EvidenceConfig(render_image=False)


def cues_of(x, sr=SR, **kw):
    return {c.name: c for c in measure_cues(load_audio(x, sample_rate=sr, **kw))}


@pytest.mark.parametrize("cutoff", [2000.0, 4000.0, 6000.0])
def test_bandwidth_finds_a_lowpass_cutoff(cutoff):
    c = cues_of(brickwall_lowpass(white_noise(3.0), cutoff))["bandwidth_hz"]
    assert abs(c.value - cutoff) < 100
    assert c.status == "low" and c.unit == "Hz"
    assert f"{c.value:.0f} Hz" in c.phrase


def test_bandwidth_of_lowpassed_noise_at_44k_after_resampling(tmp_path):
    x = brickwall_lowpass(white_noise(3.0, sr=44_100), 4000.0, sr=44_100)
    path = tmp_path / "lp.wav"
    sf.write(path, x, 44_100, subtype="FLOAT")
    assert abs(measure_cues(load_audio(path))[0].value - 4000.0) < 100


def test_bandwidth_reads_a_butterworth_cutoff_not_its_tail():
    from scipy.signal import butter, sosfilt, sosfiltfilt

    sos = butter(10, 4000.0, fs=SR, output="sos")
    for filt in (sosfilt, sosfiltfilt):  # 60 dB/octave, and twice that run forwards and backwards
        c = cues_of(filt(sos, white_noise(3.0)).astype(np.float32))["bandwidth_hz"]
        assert 3900 <= c.value <= 4300 and c.status == "low"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bandwidth_of_telephone_band_speech(seed):
    from scipy.signal import butter, sosfilt

    telephone = butter(8, (300.0, 3400.0), btype="bandpass", fs=SR, output="sos")
    x = sosfilt(telephone, harmonic_voice(3.0, seed=seed)).astype(np.float32)
    assert 3200 <= cues_of(x)["bandwidth_hz"].value <= 3600


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wide_band_speech_reads_at_least_7_khz(seed):
    assert cues_of(speech_like(4.0, seed=seed))["bandwidth_hz"].value >= 7000
    assert cues_of(harmonic_voice(3.0, seed=seed))["bandwidth_hz"].value >= 7000


def test_full_band_noise_and_speech_have_full_bandwidth():
    assert cues_of(white_noise(2.0))["bandwidth_hz"].value > 7500
    c = cues_of(speech_like(3.0))
    assert c["bandwidth_hz"].value > 7000 and c["bandwidth_hz"].status == "normal"


def test_octave_band_profile_follows_the_lowpass():
    c = cues_of(brickwall_lowpass(white_noise(3.0), 3900.0))
    # white noise: each octave holds energy in proportion to its width; nothing above the cut-off
    assert c["band_energy_4000_8000"].value < -40
    passband = 3900 - 62.5
    assert c["band_energy_2000_4000"].value == pytest.approx(10 * np.log10(1900 / passband), abs=0.5)
    assert c["band_energy_1000_2000"].value == pytest.approx(10 * np.log10(1000 / passband), abs=0.5)
    assert c["band_energy_125_250"].value == pytest.approx(10 * np.log10(125 / passband), abs=0.5)


def test_flatness_separates_noise_from_tone():
    assert cues_of(white_noise(2.0))["spectral_flatness"].value > 0.4
    flat_tone = cues_of(tone(440.0, 2.0))["spectral_flatness"]
    assert flat_tone.value < 0.01 and flat_tone.status == "low"


def test_rolloff_of_lowpassed_noise():
    assert cues_of(brickwall_lowpass(white_noise(3.0), 4000.0))["spectral_rolloff_hz"].value == \
        pytest.approx(0.85 * 4000, rel=0.05)


@pytest.mark.parametrize("f0", [110.0, 220.0, 330.0])
def test_tone_pitch_is_found(f0):
    c = cues_of(tone(f0, 2.0))
    assert abs(c["f0_mean_hz"].value - f0) < 2.0
    assert c["f0_spread_st"].value < 0.1
    assert c["voiced_ratio"].value > 0.95


def test_speech_like_pitch_range_and_noise_is_unvoiced():
    c = cues_of(speech_like(4.0, f0=(110.0, 170.0)))
    assert 110 < c["f0_mean_hz"].value < 170
    assert c["f0_spread_st"].value > 1.0
    assert cues_of(white_noise(2.0))["voiced_ratio"].value < 0.05


def test_splice_of_two_signals_is_found_near_its_time():
    a = harmonic_voice(1.5, seed=1, pauses=False)
    # another voice through a telephone band, inserted without a pause
    b = brickwall_lowpass(harmonic_voice(1.5, seed=3, pauses=False, f0=(200, 260)), 3400.0)
    c = cues_of(np.concatenate([a, b]))["splice_candidates"]
    times = c.detail["times_s"]
    assert c.value >= 1 and any(abs(t - 1.5) < 0.05 for t in times)
    assert "1.5" in c.phrase


def test_no_splice_in_stationary_signals():
    for x in (white_noise(3.0), tone(300.0, 3.0)):
        assert cues_of(x)["splice_candidates"].value == 0


def test_pause_floor_ratio_and_digital_silence():
    speech = harmonic_voice(2.0, pauses=False)
    x = np.concatenate([speech, np.zeros(2 * SR, np.float32)])
    c = cues_of(x)
    assert c["pause_ratio"].value == pytest.approx(0.5, abs=0.03)
    assert c["pause_floor_dbfs"].value == -120.0 and c["pause_floor_dbfs"].status == "low"
    noisy = x + 10 ** (-50 / 20) / np.sqrt(2) * np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)
    c = cues_of(noisy)
    assert c["pause_floor_dbfs"].value == pytest.approx(-50.0, abs=1.5)
    assert c["speech_to_pause_db"].value == pytest.approx(c["speech_level_dbfs"].value + 50.0, abs=1.5)


def test_clipping_and_dc_offset_are_measured():
    clipped = np.clip(tone(150.0, 2.0, amp=2.0), -1, 1)
    c = cues_of(clipped)
    assert c["clipping_ratio"].value == pytest.approx(1 - (2 / np.pi) * np.arcsin(0.999 / 2.0), abs=0.01)
    assert c["clipping_ratio"].status == "high"
    c = cues_of(tone(150.0, 2.0, amp=0.3) + 0.05)
    assert c["dc_offset"].value == pytest.approx(0.05, abs=1e-3) and c["dc_offset"].status == "high"
    assert cues_of(tone(150.0, 2.0, amp=0.3))["dc_offset"].status == "normal"


def test_silent_clip_gives_evidence_with_unmeasurable_cues():
    ev = extract_evidence(load_audio(np.zeros(2 * SR, np.float32), sample_rate=SR))
    assert "silent" in ev.flags
    assert ev.cue("f0_mean_hz").value is None and ev.cue("f0_mean_hz").status == "na"
    assert ev.cue("pause_floor_dbfs").value == -120.0
    json.loads(ev.to_json())  # no NaN/inf leaks into JSON
    assert ev.spectrogram is not None


def test_every_cue_has_the_schema_and_a_spec():
    ev = extract_evidence(load_audio(speech_like(3.0), sample_rate=SR), NO_IMAGE)
    data = json.loads(ev.to_json())
    assert len(data["cues"]) >= 8
    required = {"bandwidth_hz", "spectral_flatness", "spectral_rolloff_hz", "pause_floor_dbfs", "pause_ratio",
                "f0_mean_hz", "f0_spread_st", "voiced_ratio", "splice_candidates", "clipping_ratio", "dc_offset"}
    assert required <= {c["name"] for c in data["cues"]}
    assert sum(c["name"].startswith("band_energy_") for c in data["cues"]) == 6
    for cue in data["cues"]:
        assert {"name", "value", "unit", "range", "phrase", "domain", "status"} <= set(cue)
        assert cue["domain"] in ("frequency", "time") and cue["phrase"]
        lo, hi = cue["range"]
        assert lo <= hi
        assert cue["name"] in cue_specs()
    assert set(cue_specs()) == {c["name"] for c in data["cues"]}, "a cue spec is never measured"
    back = Evidence.from_dict(data)
    assert [c.to_dict() for c in back.cues] == data["cues"]


def test_text_block_lists_every_cue_by_domain_and_marks_out_of_range():
    ev = extract_evidence(load_audio(brickwall_lowpass(white_noise(2.0), 4000.0), sample_rate=SR), NO_IMAGE)
    text = ev.to_text()
    assert text.index("[frequency domain]") < text.index("[time domain]")
    for cue in ev.cues:
        assert f"{cue.name} = " in text
    line = next(ln for ln in text.splitlines() if ln.startswith("- bandwidth_hz"))
    assert "LOW" in line and "[natural 7000 to 8000]" in line
    notable = ev.to_text(only_notable=True)
    assert "bandwidth_hz" in notable and len(notable) < len(text)


@pytest.mark.parametrize("label", ["spoof", "bonafide"])
def test_evidence_rationale_supports_its_label_and_is_recognised(label):
    from apallm.rationale import find_claims, judge_consistency

    ev = extract_evidence(load_audio(brickwall_lowpass(speech_like(3.0), 3000.0), sample_rate=SR), NO_IMAGE)
    frequency, time = ev.rationale(label)
    claims = find_claims(frequency + "; " + time)
    assert claims, "the phrases come from the cue templates, so the matcher must recognise them"
    assert judge_consistency(label, claims) == "consistent"
    if label == "spoof":
        assert "energy stops near" in frequency  # the band limit is the out-of-range frequency cue

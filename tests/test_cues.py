import json

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, brickwall_lowpass, speech_like, tone, white_noise

from apallm import EvidenceConfig, extract_evidence, load_audio
from apallm.evidence import Evidence, measure_cues
from apallm.evidence.cues import cue_specs, make_cue
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
def test_evidence_rationale_supports_its_label_and_is_recognised(label, monkeypatch):
    import apallm.evidence
    from apallm.rationale import find_claims, judge_consistency

    monkeypatch.setattr(apallm.evidence, "citable", lambda name: True)  # the band limit is not in the vocabulary

    ev = extract_evidence(load_audio(brickwall_lowpass(speech_like(3.0), 3000.0), sample_rate=SR), NO_IMAGE)
    frequency, time = ev.rationale(label)
    claims = find_claims(frequency + "; " + time)
    assert claims, "the phrases come from the cue templates, so the matcher must recognise them"
    assert judge_consistency(label, claims) == "consistent"
    if label == "spoof":
        assert "energy stops near" in frequency  # the band limit is the out-of-range frequency cue


# ------------------------------------------------------------------------------ synthesis cues, known answers

def am_noise(depth_db, rate_hz, seconds=3.0, seed=0):
    """White noise whose level follows depth_db * sin(2 pi rate t) in dB."""
    t = np.arange(int(seconds * SR)) / SR
    gain = 10 ** (depth_db * np.sin(2 * np.pi * rate_hz * t) / 20)
    return (white_noise(seconds, seed=seed) * gain).astype(np.float32)


def test_ltas_peak_finds_a_steady_tone_and_its_frequency():
    # fs/4 of a 22.05 kHz vocoder, 10 dB under the noise in total power, but in 2-3 of 1024 bins
    x = white_noise(3.0) + tone(5512.5, 3.0, amp=0.03)
    c = cues_of(x)["ltas_peak_db"]
    assert abs(c.detail["freq_hz"] - 5512.5) < 8 and c.value > 12 and c.status != "low"
    assert f"near {c.detail['freq_hz']:.0f} Hz" in c.phrase
    assert cues_of(white_noise(3.0))["ltas_peak_db"].value < 6  # no line: only the noise's ripple


def test_sub_bass_of_white_and_highpassed_noise():
    # white noise: 60 Hz of band against 200 Hz, 10 log10(0.3) = -5.2 dB (the 20 Hz intake high-pass aside)
    assert cues_of(white_noise(3.0))["sub_bass_db"].value == pytest.approx(-5.2, abs=1.0)
    spec = np.fft.rfft(white_noise(3.0))
    spec[np.fft.rfftfreq(3 * SR, 1 / SR) < 95] = 0
    c = cues_of(np.fft.irfft(spec, n=3 * SR).astype(np.float32))["sub_bass_db"]
    assert c.value < -30 and c.status == "low"


def test_hf_phase_spread_of_an_impulse_per_frame_and_of_noise():
    clicks = np.zeros(3 * SR, np.float32)
    clicks[::512] = 0.5  # one impulse in every 512-sample frame: linear phase, a constant group delay
    assert cues_of(clicks)["hf_phase_spread"].value < 0.05
    assert cues_of(white_noise(3.0))["hf_phase_spread"].value > 2.0


def test_envelope_variation_of_a_steady_vowel_and_of_changing_vowels():
    steady = harmonic_voice(3.0, pauses=False)  # one fixed spectral shape
    moving = speech_like(3.0, pauses=False)  # seven vowels and fricatives
    s, m = cues_of(steady)["envelope_variation_db"].value, cues_of(moving)["envelope_variation_db"].value
    assert s < 1.5 < 3.0 < m


def test_hnr_of_a_tone_in_noise():
    # a 200 Hz tone 10 dB above white noise; pitch is tracked at 8 kHz, where half the noise remains: 13 dB
    x = tone(200.0, 3.0, amp=0.3) + white_noise(3.0, amp=0.3 / np.sqrt(2) / 10 ** (10 / 20))
    assert cues_of(x)["hnr_db"].value == pytest.approx(13.0, abs=1.5)
    assert cues_of(tone(200.0, 3.0))["hnr_db"].value > 25


def test_jitter_of_a_steady_and_a_vibrato_tone():
    assert cues_of(tone(200.0, 3.0))["f0_jitter_pct"].value < 0.05
    t = np.arange(3 * SR) / SR
    f0 = 200.0 * (1 + 0.04 * np.sin(2 * np.pi * 3.0 * t))  # +-4 % at 3 Hz
    x = (0.5 * np.sin(2 * np.pi * np.cumsum(f0) / SR)).astype(np.float32)
    # per 10 ms the relative change is 4 % * 2 pi * 3 Hz * 0.01 s * |cos|, the median |cos| is cos(pi/4); YIN's
    # 53 ms frame averages the vibrato by sinc(3 Hz * 53 ms) = 0.96
    expected = 4.0 * 2 * np.pi * 3.0 * 0.01 * np.cos(np.pi / 4) * np.sinc(3.0 * 0.0535)
    assert cues_of(x)["f0_jitter_pct"].value == pytest.approx(expected, rel=0.2)


def test_shimmer_of_a_steady_and_an_amplitude_modulated_tone():
    assert cues_of(tone(200.0, 3.0))["shimmer_db"].value < 0.05
    t = np.arange(3 * SR) / SR
    x = (tone(200.0, 3.0, amp=0.3) * 10 ** (6.0 * np.sin(2 * np.pi * 3.0 * t) / 20)).astype(np.float32)
    expected = 6.0 * 2 * np.pi * 3.0 * 0.01 * np.cos(np.pi / 4)  # +-6 dB at 3 Hz, per 10 ms
    assert cues_of(x)["shimmer_db"].value == pytest.approx(expected, rel=0.2)


def test_hf_flux_of_steady_and_modulated_noise():
    steady = cues_of(white_noise(3.0))["hf_flux_db"]
    assert steady.value < 0.8 and steady.status == "low"  # smoother over time than any speech
    expected = 12.0 * 2 * np.pi * 4.0 * 0.01 * np.cos(np.pi / 4)  # +-12 dB at 4 Hz, per 10 ms
    assert cues_of(am_noise(12.0, 4.0))["hf_flux_db"].value == pytest.approx(expected, rel=0.25)


def test_pause_noise_colour():
    voice = harmonic_voice(2.0, pauses=False)
    rng = np.random.default_rng(1)
    white = 10 ** (-50 / 20) * rng.standard_normal(2 * SR)
    spec = np.fft.rfft(rng.standard_normal(2 * SR))
    f = np.fft.rfftfreq(2 * SR, 1 / SR)
    spec[1:] /= np.sqrt(f[1:])
    pink = np.fft.irfft(spec, n=2 * SR)
    pink *= 10 ** (-50 / 20) / pink.std()
    for noise, expected in ((white, 10 * np.log10(4000 / 3700)), (pink, 10 * np.log10(np.log(2) / np.log(4000 / 300)))):
        x = np.concatenate([voice, noise]).astype(np.float32)
        assert cues_of(x)["pause_hf_tilt_db"].value == pytest.approx(expected, abs=1.0)
    silent_pauses = np.concatenate([voice, np.zeros(2 * SR, np.float32)])
    assert cues_of(silent_pauses)["pause_hf_tilt_db"].status == "na"  # digital silence has no colour


def test_rationale_cites_only_the_vocabulary_and_says_when_nothing_supports_the_label():
    from apallm.evidence import citable

    assert citable("hf_phase_spread") and not citable("bandwidth_hz")  # from eval/cue_ranges.py's LOSO AUCs
    ev = extract_evidence(load_audio(brickwall_lowpass(speech_like(3.0), 3000.0), sample_rate=SR), NO_IMAGE)
    assert ev.cue("bandwidth_hz").status == "low"  # measured and shown ...
    frequency, time = ev.rationale("spoof")
    assert "energy stops near" not in frequency  # ... but not cited
    for domain, text in (("frequency", frequency), ("time", time)):
        if not ev.supporting_cues(domain, "spoof"):
            assert text == f"no {domain}-domain cue that separates real from synthetic speech lies outside the " \
                           "range of natural speech"
    # white noise's random high-band phase is outside natural speech, and the phase cue is citable
    noise = extract_evidence(load_audio(white_noise(3.0), sample_rate=SR), NO_IMAGE)
    assert "4-8 kHz phase is more random" in noise.rationale("spoof")[0]


def test_cepstral_peak_prominence_finds_the_pitch_period_and_falls_with_noise():
    t = np.arange(3 * SR) / SR
    comb = sum(np.sin(2 * np.pi * 125.0 * k * t) for k in range(1, 60)).astype(np.float32)  # a flat comb at 125 Hz
    comb *= 0.3 / np.abs(comb).max()
    values = []
    for snr_db in (40.0, 20.0, 10.0):
        noise = white_noise(3.0, amp=float(comb.std()) / 10 ** (snr_db / 20))
        c = cues_of(comb + noise)["cpp_db"]
        assert c.detail["peak_f0_hz"] == pytest.approx(125.0, rel=0.02)  # the peak lies at the 8 ms period
        values.append(c.value)
    assert values[0] > values[1] > values[2] > 0
    assert cues_of(white_noise(3.0))["cpp_db"].status == "na"  # no voiced frames


def test_a_cue_measured_in_a_region_is_judged_against_the_region_range(monkeypatch):
    import apallm.evidence
    import apallm.evidence.cues as cues_module
    from apallm.evidence import citable

    spec = dict(cues_module.cue_specs()["hf_phase_spread"])
    spec.update(range=[2.2, 2.4], cite=True, region_range=[1.0, 2.4], region_cite=False)
    bare = {k: v for k, v in spec.items() if not k.startswith("region_")}
    specs = {"with_region": spec, "without_region": bare}
    monkeypatch.setattr(cues_module, "cue_specs", lambda: specs)
    monkeypatch.setattr(apallm.evidence, "cue_specs", lambda: specs)
    whole, there = make_cue("with_region", 1.5), make_cue("with_region", 1.5, in_region=True)
    assert (whole.status, whole.range) == ("low", (2.2, 2.4))
    assert (there.status, there.range) == ("normal", (1.0, 2.4))  # a second of speech varies more than a clip
    assert "1.000" in make_cue("with_region", 0.5, in_region=True).phrase  # its phrase names the region's range
    assert make_cue("without_region", 1.5, in_region=True).status == "low"  # no region range: the clip's
    assert citable("with_region") and not citable("with_region", in_region=True)
    assert citable("without_region", in_region=True)  # no region flag: the clip's


def test_cues_measured_in_a_region_use_region_ranges_from_the_shipped_table():
    from apallm.attribution import Region, cues_in

    wave = speech_like(3.0)
    region = Region("span", 1.0, 1.5, 0.0, 8000.0, 0.3)
    for cue in cues_in(load_audio(wave, sample_rate=SR), region):
        spec = cue_specs()[cue.name]
        assert cue.range == tuple(float(x) for x in spec.get("region_range", spec["range"]))
    assert any("region_range" in spec for spec in cue_specs().values())  # eval/cue_ranges.py --in-region wrote them

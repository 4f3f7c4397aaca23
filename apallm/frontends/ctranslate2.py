"""Read a CTranslate2 ``model.bin`` without CTranslate2, and convert a CTranslate2 Whisper model to a
``transformers`` Whisper folder (``config.json``, ``model.safetensors``, ``preprocessor_config.json``).

The file format (what :func:`read_ctranslate2` parses; all integers little-endian):

- ``u32`` binary version (6 for the files CTranslate2 4.x writes), a ``u16``-length-prefixed spec name
  (``WhisperSpec``; the strings keep their trailing NUL), ``u32`` spec revision, ``u32`` variable count;
- per variable: its name (``u16`` length + bytes), a rank byte, the shape as ``rank`` ``u32`` values, a dtype byte
  (:data:`DTYPES`), a ``u32`` byte count and the raw data;
- then a ``u32`` alias count and ``(alias, target)`` name pairs (``decoder/projection/weight`` is an alias
  of ``decoder/embeddings/weight``).

The Whisper spec keeps q, k and v of self-attention fused in one ``linear_0`` (k has no bias in Whisper: its
part of the fused bias is zero), and cross-attention's k and v fused in ``linear_1``; layer norms are
``gamma``/``beta``. :func:`whisper_state_dict` splits them back into ``WhisperForConditionalGeneration``'s
parameter names; :func:`convert_whisper` writes the folder, which ``WhisperModel.from_pretrained`` (or
:class:`apallm.frontends.WhisperFrontEnd`) loads offline.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

#: CTranslate2's DataType enum, as written in the dtype byte
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_BFLOAT16 = 5


class CT2FormatError(ValueError):
    """The file is not a CTranslate2 model this reader understands."""


def read_ctranslate2(path: str | os.PathLike) -> tuple[str, dict[str, np.ndarray], dict[str, str]]:
    """``(spec name, {variable name: array}, {alias: target})`` of a CTranslate2 ``model.bin``.

    Scalars (rank 0) come back as 0-d arrays; bfloat16 variables are widened to float32."""
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        try:
            values = struct.unpack_from("<" + fmt, data, pos)
        except struct.error as exc:
            raise CT2FormatError(f"{path}: truncated at byte {pos}") from exc
        pos += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def string() -> str:
        nonlocal pos
        n = take("H")
        raw = data[pos:pos + n]
        pos += n
        return raw.rstrip(b"\0").decode("utf-8")

    version = take("I")
    if not 1 <= version <= 6:
        raise CT2FormatError(f"{path}: unknown CTranslate2 binary version {version}")
    spec = string() if version >= 2 else ""
    _revision = take("I") if version >= 2 else 1
    count = take("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        rank = take("B")
        shape = tuple(int(v) for v in np.atleast_1d(take("I" * rank))) if rank else ()
        dtype = take("B")
        nbytes = take("I")
        raw = data[pos:pos + nbytes]
        if len(raw) != nbytes:
            raise CT2FormatError(f"{path}: variable {name!r} is truncated")
        pos += nbytes
        if dtype == _BFLOAT16:
            array = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dtype in DTYPES:
            array = np.frombuffer(raw, dtype=DTYPES[dtype])
        else:
            raise CT2FormatError(f"{path}: variable {name!r} has unknown dtype code {dtype}")
        if array.size != int(np.prod(shape)):
            raise CT2FormatError(f"{path}: variable {name!r}: {array.size} values for shape {shape}")
        variables[name] = array.reshape(shape)
    aliases = {}
    if version >= 3 and pos < len(data):
        for _ in range(take("I")):
            alias = string()
            aliases[alias] = string()
    return spec, variables, aliases


def _layer_count(variables: dict, prefix: str) -> int:
    n = 0
    while f"{prefix}/layer_{n}/ffn/linear_0/weight" in variables:
        n += 1
    return n


def whisper_config(variables: dict[str, np.ndarray]) -> dict:
    """The ``WhisperConfig`` fields of a CTranslate2 Whisper model, read off its tensor shapes. The special
    token ids are those of the English-only checkpoints (``*.en``) when the vocabulary has 51864 entries, and of
    the multilingual ones otherwise."""
    vocab, d_model = variables["decoder/embeddings/weight"].shape
    multilingual = vocab >= 51865
    eot = 50257 if multilingual else 50256
    return {
        "model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"],
        "vocab_size": int(vocab), "num_mel_bins": int(variables["encoder/conv1/weight"].shape[1]),
        "d_model": int(d_model),
        "encoder_layers": _layer_count(variables, "encoder"), "decoder_layers": _layer_count(variables, "decoder"),
        "encoder_attention_heads": int(variables["encoder/num_heads"]),
        "decoder_attention_heads": int(variables["decoder/num_heads"]),
        "encoder_ffn_dim": int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "decoder_ffn_dim": int(variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "max_source_positions": int(variables["encoder/position_encodings/encodings"].shape[0]),
        "max_target_positions": int(variables["decoder/position_encodings/encodings"].shape[0]),
        "activation_function": "gelu", "scale_embedding": False, "tie_word_embeddings": True,
        "bos_token_id": eot, "eos_token_id": eot, "pad_token_id": eot, "decoder_start_token_id": eot + 1,
    }


def whisper_state_dict(variables: dict[str, np.ndarray], encoder_only: bool = False) -> dict[str, np.ndarray]:
    """``WhisperForConditionalGeneration`` parameters (``model.encoder.*``, ``model.decoder.*``,
    ``proj_out.weight``) from the variables of a CTranslate2 ``WhisperSpec``; ``encoder_only`` keeps the encoder."""
    out: dict[str, np.ndarray] = {}

    def norm(dst: str, src: str) -> None:
        out[f"{dst}.weight"], out[f"{dst}.bias"] = variables[f"{src}/gamma"], variables[f"{src}/beta"]

    def linear(dst: str, src: str, bias: bool = True) -> None:
        out[f"{dst}.weight"] = variables[f"{src}/weight"]
        if bias:
            out[f"{dst}.bias"] = variables[f"{src}/bias"]

    def split(dst: str, src: str, names: tuple[str, ...]) -> None:
        w, b = variables[f"{src}/weight"], variables[f"{src}/bias"]
        for name, wi, bi in zip(names, np.split(w, len(names)), np.split(b, len(names)), strict=True):
            out[f"{dst}.{name}.weight"] = np.ascontiguousarray(wi)
            if name != "k_proj":  # Whisper's keys have no bias (CTranslate2 stores zeros)
                out[f"{dst}.{name}.bias"] = np.ascontiguousarray(bi)

    e = "model.encoder"
    for conv in ("conv1", "conv2"):
        linear(f"{e}.{conv}", f"encoder/{conv}")
    out[f"{e}.embed_positions.weight"] = variables["encoder/position_encodings/encodings"]
    def self_attention_and_ffn(dst: str, src: str) -> None:
        split(f"{dst}.self_attn", f"{src}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")

    for i in range(_layer_count(variables, "encoder")):
        self_attention_and_ffn(f"{e}.layers.{i}", f"encoder/layer_{i}")
    norm(f"{e}.layer_norm", "encoder/layer_norm")
    if encoder_only:
        return out
    d = "model.decoder"
    out[f"{d}.embed_tokens.weight"] = variables["decoder/embeddings/weight"]
    out[f"{d}.embed_positions.weight"] = variables["decoder/position_encodings/encodings"]
    for i in range(_layer_count(variables, "decoder")):
        src, dst = f"decoder/layer_{i}", f"{d}.layers.{i}"
        self_attention_and_ffn(dst, src)
        linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
        split(f"{dst}.encoder_attn", f"{src}/attention/linear_1", ("k_proj", "v_proj"))
        linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
        norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
    norm(f"{d}.layer_norm", "decoder/layer_norm")
    out["proj_out.weight"] = variables["decoder/embeddings/weight"]
    return out


#: the log-mel front end every Whisper checkpoint up to large-v2 uses (80 bands, 25 ms / 10 ms, 30 s chunks)
PREPROCESSOR = {"feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 80, "sampling_rate": 16000,
                "hop_length": 160, "n_fft": 400, "chunk_length": 30, "n_samples": 480000, "nb_max_frames": 3000,
                "padding_side": "right", "padding_value": 0.0, "return_attention_mask": False,
                "processor_class": "WhisperProcessor"}


def convert_whisper(model_dir: str | os.PathLike, out_dir: str | os.PathLike, *, dtype: str = "float16",
                    encoder_only: bool = False, provenance: dict | None = None) -> Path:
    """Convert the CTranslate2 Whisper model in ``model_dir`` (its ``model.bin``) to a ``transformers`` folder
    ``out_dir``; returns it. ``dtype``: ``float16`` (as stored) or ``float32``."""
    from safetensors.numpy import save_file

    spec, variables, _aliases = read_ctranslate2(Path(model_dir) / "model.bin")
    if spec != "WhisperSpec":
        raise CT2FormatError(f"{model_dir}: a {spec or 'pre-v2'} model, not a CTranslate2 Whisper model")
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be float16 or float32, got {dtype!r}")
    config = whisper_config(variables)
    config["torch_dtype"] = dtype
    if provenance:
        config["apallm_provenance"] = provenance
    state = {k: np.ascontiguousarray(v.astype(dtype)) for k, v in whisper_state_dict(variables, encoder_only).items()}
    if not encoder_only:
        state.pop("proj_out.weight")  # tied to the token embedding: safetensors keeps one copy
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "preprocessor_config.json").write_text(
        json.dumps({**PREPROCESSOR, "feature_size": config["num_mel_bins"]}, indent=2) + "\n")
    return out

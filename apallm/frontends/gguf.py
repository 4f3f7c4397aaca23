"""A causal LM shipped as a GGUF file (llama.cpp's format) -> a ``transformers`` folder of safetensors.

``transformers`` reads GGUF itself (with the ``gguf`` package): ``AutoModelForCausalLM.from_pretrained(folder,
gguf_file=name)`` dequantizes every tensor (Q4_1 blocks -> float32) into the model class the file's architecture
names (``llama`` -> ``LlamaForCausalLM``), and ``AutoTokenizer`` rebuilds the tokenizer and its chat template from
the file's metadata. Both take tens of seconds, so :func:`convert_gguf` does it once and writes a plain folder
(``config.json``, ``model.safetensors`` in float32, which holds the dequantized values exactly, the tokenizer
files) that loads in a second; ``apallm models prepare smollm2-135m-instruct`` calls it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from apallm.frontends.base import require


def load_gguf(path: str | os.PathLike, dtype=None):
    """(model, tokenizer) read from the GGUF file ``path``, every weight dequantized to ``dtype`` (float32 by
    default)."""
    import torch
    import transformers

    require("gguf", "reading a GGUF model", "gguf", extra="lite")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such GGUF file")
    kwargs = {}
    if hasattr(transformers, "GgufConfig"):  # newer transformers can keep the blocks packed: unpack them all
        kwargs["quantization_config"] = transformers.GgufConfig(dequantize=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                              dtype=dtype or torch.float32, **kwargs)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model.eval(), tokenizer


def save_lm_folder(model, tokenizer, out_dir: str | os.PathLike, provenance: dict | None = None) -> Path:
    """Write a dequantized GGUF ``model`` and its ``tokenizer`` as a plain ``transformers`` folder: the weights
    (one copy of tied ones), ``config.json`` without the GGUF loading settings (``provenance`` recorded under
    ``apallm_provenance``), ``generation_config.json`` and the tokenizer files. (``save_pretrained`` refuses a
    model loaded from GGUF even when every weight is dense.)"""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state, seen = {}, set()
    for key, value in model.state_dict().items():
        if value.data_ptr() in seen:  # tied to an earlier weight (lm_head to the token embedding)
            continue
        seen.add(value.data_ptr())
        state[key] = value.detach().cpu().contiguous()
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    if provenance:
        config["apallm_provenance"] = provenance
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    model.generation_config.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def convert_gguf(path: str | os.PathLike, out_dir: str | os.PathLike, provenance: dict | None = None) -> Path:
    """Convert the GGUF file ``path`` into the folder ``out_dir`` (see the module notes); returns it."""
    model, tokenizer = load_gguf(path)
    return save_lm_folder(model, tokenizer, out_dir, provenance)

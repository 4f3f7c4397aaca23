"""ALLM families and loading: a hub id, a local checkpoint, a built-in tiny model, or a fine-tuned folder."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from apallm._imports import resolve

#: ALLM families: name -> "module:Class". A new family is one module (a subclass of ALLMDetector that names its
#: ``model_types``, LoRA targets and towers) plus one line here.
FAMILIES = {
    "qwen2_5_omni": "apallm.allm.qwen_omni:QwenOmniDetector",
    "qwen2_audio": "apallm.allm.qwen2_audio:Qwen2AudioDetector",
    "composite": "apallm.allm.composite:CompositeDetector",
}
#: models built by code, not read from a checkpoint: name -> (family, builder path). The tiny random ones (offline,
#: for tests and CPU smoke runs) and ``lite``, assembled from weights prepared offline (``apallm[lite]``)
TINY_MODELS = {
    "tiny-qwen2_5-omni": ("qwen2_5_omni", "apallm.allm.tiny:build_tiny_omni"),
    "tiny-qwen2-audio": ("qwen2_audio", "apallm.allm.tiny:build_tiny_qwen2_audio"),
    "tiny-composite": ("composite", "apallm.allm.tiny:build_tiny_composite"),
    "lite": ("composite", "apallm.allm.composite:build_lite"),
    "lite-base": ("composite", "apallm.allm.composite:build_lite"),
}
#: the trained adapter of ``lite`` shipped in the package (train/lite_allm.py); ``lite-base`` is the same
#: model with fresh projectors and no adapter, what the recipe trains from
LITE_ADAPTER = Path(__file__).resolve().parent / "weights" / "lite"


def lite_available() -> bool:
    """Whether ``load_allm("lite")`` can run here offline: the trained adapter ships in this package and the
    packages of its two parts (``apallm[lite]``) are installed."""
    from apallm.frontends.base import MissingExtraError
    from apallm.frontends.prepare import BUNDLED

    if not (LITE_ADAPTER / "apallm.json").is_file():
        return False
    try:
        for name in ("whisper-tiny.en", "smollm2-135m-instruct"):
            BUNDLED[name].source_files()
    except MissingExtraError:
        return False
    return True


def families() -> list[str]:
    return sorted(FAMILIES)


def family_class(name: str) -> type:
    if name not in FAMILIES:
        raise ValueError(f"unknown ALLM family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    return resolve(FAMILIES[name])


def _model_types() -> dict[str, str]:
    """checkpoint ``model_type`` -> family, from each family class's ``model_types``."""
    return {model_type: name for name in FAMILIES for model_type in family_class(name).model_types}


def detect_family(model: str) -> str:
    """The family of a checkpoint (hub id or local path) from its config's ``model_type``."""
    if model in TINY_MODELS:
        return TINY_MODELS[model][0]
    local = Path(model) / "config.json"
    if local.is_file():
        model_type = json.loads(local.read_text()).get("model_type")
    else:
        from transformers import AutoConfig

        model_type = AutoConfig.from_pretrained(model).model_type
    known = _model_types()
    if model_type not in known:
        raise ValueError(f"{model}: model_type {model_type!r} is not a supported ALLM family "
                         f"({', '.join(sorted(known))}); pass family= explicitly if it is compatible")
    return known[model_type]


def resolve_device_dtype(device: str | None = "auto", dtype: str | torch.dtype | None = "auto"):
    """``auto``: CUDA with bf16 when available, else CPU with fp32."""
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype in (None, "auto"):
        dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    elif isinstance(dtype, str):
        dtype = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                 "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}[dtype]
    return torch.device(device), dtype


def build_tiny(name: str, seed: int = 0):
    return resolve(TINY_MODELS[name][1])(seed=seed)


def load_allm(model: str | None = None, *, adapter: str | Path | None = None, family: str | None = None,
              device: str | None = "auto", dtype: str | torch.dtype | None = "auto", quantization: str | None = None,
              adapter_trainable: bool = False, **kwargs):
    """Load an ALLM detector.

    - ``model``: a hub id (``Qwen/Qwen2.5-Omni-3B``), a local checkpoint folder, or a built-in tiny model
      (``tiny-qwen2_5-omni``). With ``adapter`` it overrides the base model recorded in the adapter folder.
    - ``adapter``: a folder written by ``apallm train sft`` (PEFT adapter, processor, apallm.json).
    - ``quantization``: ``"4bit"`` loads the base in 4-bit NF4 through bitsandbytes (GPU only).
    - ``adapter_trainable``: load the adapter's weights trainable (to go on training it, as GRPO does from an
      SFT adapter); by default they are frozen for inference.
    Remaining keyword arguments (options, batch_size, max_new_tokens, ...) go to the detector.
    """
    from .base import CONFIG_NAME, load_config
    from .prompting import PromptOptions

    device, dtype = resolve_device_dtype(device, dtype)
    if model == "lite" and adapter is None and (LITE_ADAPTER / CONFIG_NAME).is_file():
        model, adapter = None, LITE_ADAPTER  # the shipped adapter names its base (lite-base)
    saved: dict = {}
    processor = None
    base_dir = None
    if adapter is not None:
        saved = load_config(adapter)
        family = family or saved["family"]
        if (Path(adapter) / "base").is_dir() and model is None:
            base_dir = str(Path(adapter) / "base")
        model = model or base_dir or saved.get("base_model")
        if (Path(adapter) / "processor").is_dir():
            processor = family_class(family).load_processor(str(Path(adapter) / "processor"))
    elif model is not None and (Path(model) / CONFIG_NAME).is_file():
        saved = load_config(model)  # a merged model folder keeps its prompts and options
    if model is None:
        raise ValueError("give a model (hub id, local path or tiny-*) or an adapter folder")
    family = family or detect_family(model)
    cls = family_class(family)

    if model in TINY_MODELS:
        net, tiny_processor = build_tiny(model)
        net = net.to(dtype)
        processor = processor or tiny_processor
    else:
        quant = quantization_config(quantization, dtype)
        net = cls.load_model(model, dtype=dtype, device_map=None if quant is None else {"": device.index or 0},
                             quantization_config=quant)
        processor = processor or cls.load_processor(model)
    net = cls.prepare_model(net, processor)
    if quantization is None:
        net = net.to(device)
    if adapter is not None:
        from peft import PeftModel

        net = PeftModel.from_pretrained(net, str(Path(adapter) / "adapter"), is_trainable=adapter_trainable)
        cls.load_extra(net, adapter)
    elif model is not None and (Path(model) / CONFIG_NAME).is_file():
        cls.load_extra(net, model)
    net.eval()

    options = kwargs.pop("options", None) or PromptOptions.from_dict(saved.get("options"))
    if "evidence_config" not in kwargs and "spectrogram" in saved:
        from apallm.evidence import EvidenceConfig, SpectrogramConfig

        kwargs["evidence_config"] = EvidenceConfig(spectrogram=SpectrogramConfig(**saved["spectrogram"]))
    for key in ("label_words", "max_new_tokens", "window_s", "prompts", "cm_detectors"):
        if key in saved and key not in kwargs:
            kwargs[key] = saved[key]
    base_name = saved.get("base_model") if base_dir else model
    detector = cls(net, processor, options=options, base_model=base_name, **kwargs)
    if adapter is not None:
        detector.name = f"{family}:{Path(adapter).name}"
    return detector


def quantization_config(quantization: str | None, dtype):
    if quantization is None:
        return None
    if quantization != "4bit":
        raise ValueError(f"unknown quantization {quantization!r}: only '4bit' (QLoRA NF4) is supported")
    if not torch.cuda.is_available():
        raise RuntimeError("4-bit quantization (QLoRA) needs a CUDA GPU: bitsandbytes' 4-bit kernels do not run "
                           "on this CPU-only machine; drop --quantization or train in bf16/fp32")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("4-bit quantization needs bitsandbytes: pip install 'apallm[train]'") from exc
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype if dtype != torch.float32 else torch.bfloat16)

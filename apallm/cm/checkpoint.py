"""The package's countermeasure checkpoint format, and the import of the published AASIST weights.

A checkpoint is a folder with two files:

- ``model.safetensors``: the model's state dict (parameters and batch-norm statistics), read with
  safetensors only, so loading a checkpoint never runs pickled code;
- ``config.json``: ``{"format": "apallm-cm", "format_version": 1, "name", "architecture", "model_config",
  "sample_rate", "logit_labels", "trainable_parameters", "provenance"}``. ``architecture`` and
  ``model_config`` rebuild the network; ``provenance`` records where the weights come from and, for
  imported weights, their licence notice (also written as ``LICENSE`` beside them).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from apallm.cm.aasist import (
    AASIST,
    AASIST_BASE,
    AASIST_L,
    BONAFIDE_INDEX,
    SPOOF_INDEX,
    AASISTConfig,
    count_trainable_parameters,
)

FORMAT = "apallm-cm"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

#: architecture name -> (config class, model class)
ARCHITECTURES: dict[str, tuple[type, type[nn.Module]]] = {"AASIST": (AASISTConfig, AASIST)}
#: architectures whose module (which imports transformers) is loaded on first use; importing the module
#: adds the architecture to ARCHITECTURES
LAZY_ARCHITECTURES: dict[str, str] = {"SSL-AASIST": "apallm.cm.ssl", "WPT-SSL-AASIST": "apallm.cm.wpt"}
#: named, published configurations: name -> (architecture, config)
PRESETS: dict[str, tuple[str, object]] = {"aasist": ("AASIST", AASIST_BASE), "aasist-l": ("AASIST", AASIST_L)}

#: the copyright and permission notice of the published AASIST code and weights (clovaai/aasist, LICENSE)
AASIST_MIT_NOTICE = """Copyright (c) 2021-present NAVER Corp.

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT.  IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
THE SOFTWARE.
"""


class CheckpointError(ValueError):
    """A checkpoint (package folder or published file) is missing, malformed, or does not fit its model."""


def build_cm(architecture: str, model_config: dict) -> nn.Module:
    """A freshly initialised model of ``architecture`` (e.g. ``"AASIST"``) from its ``model_config``."""
    if architecture not in ARCHITECTURES and architecture in LAZY_ARCHITECTURES:
        import importlib

        importlib.import_module(LAZY_ARCHITECTURES[architecture])
    if architecture not in ARCHITECTURES:
        raise CheckpointError(f"unknown countermeasure architecture {architecture!r} "
                              f"(known: {', '.join(sorted(set(ARCHITECTURES) | set(LAZY_ARCHITECTURES)))})")
    config_cls, model_cls = ARCHITECTURES[architecture]
    try:
        config = config_cls.from_dict(model_config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"invalid {architecture} model_config: {exc}") from exc
    return model_cls(config)


def build_preset(name: str) -> nn.Module:
    """A freshly initialised model of a named published configuration (``aasist``, ``aasist-l``)."""
    if name not in PRESETS:
        raise CheckpointError(f"unknown model name {name!r} (known: {', '.join(sorted(PRESETS))})")
    architecture, config = PRESETS[name]
    return ARCHITECTURES[architecture][1](config)


def _load_state_dict(model: nn.Module, state: dict, source: str) -> None:
    """Strictly load ``state`` into ``model``, with an error naming what does not fit."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (first: {', '.join(missing[:3])})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:3])})")
        raise CheckpointError(f"{source}: the weights do not match the model: {'; '.join(detail)}")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise CheckpointError(f"{source}: {key} has shape {tuple(tensor.shape)}, the model expects "
                                  f"{tuple(expected[key].shape)} (does the model_config fit these weights?)")
    model.load_state_dict(state)


def save_cm(model: nn.Module, directory: str | os.PathLike, *, name: str, provenance: dict,
            license_text: str | None = None) -> Path:
    """Write ``model`` as a package checkpoint into ``directory`` (created if needed); returns the folder.

    ``provenance`` is stored as given (source, licence, training run, ...). ``license_text``, when
    given, is also written as ``LICENSE`` beside the weights.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {key: tensor.detach().cpu().contiguous() for key, tensor in model.state_dict().items()}
    save_file(state, directory / WEIGHTS_FILE, metadata={"format": "pt", "name": name})
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "architecture": model.architecture,
        "model_config": model.config.to_dict(),
        "sample_rate": 16_000,
        "logit_labels": {"spoof": SPOOF_INDEX, "bonafide": BONAFIDE_INDEX},
        "trainable_parameters": count_trainable_parameters(model),
        "provenance": provenance,
    }
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if license_text is not None:
        (directory / "LICENSE").write_text(license_text, encoding="utf-8")
    return directory


def read_cm_config(directory: str | os.PathLike) -> dict:
    """The ``config.json`` of a package checkpoint, checked for format and version."""
    path = Path(directory) / CONFIG_FILE
    if not Path(directory).is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint folder")
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a countermeasure checkpoint (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an {FORMAT} checkpoint config (format = "
                              f"{config.get('format') if isinstance(config, dict) else None!r})")
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {config.get('format_version')!r} is not supported "
                              f"(this apallm reads {FORMAT_VERSION})")
    for key in ("name", "architecture", "model_config"):
        if key not in config:
            raise CheckpointError(f"{path}: missing {key!r}")
    return config


def load_cm(directory: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Load a package checkpoint (safetensors only) and return the model in eval mode on ``device``."""
    config = read_cm_config(directory)
    weights = Path(directory) / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{directory}: no {WEIGHTS_FILE}")
    model = build_cm(config["architecture"], config["model_config"])
    try:
        state = load_file(weights, device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt or truncated files
        raise CheckpointError(f"{weights}: unreadable safetensors file ({exc})") from exc
    _load_state_dict(model, state, str(weights))
    return model.to(device).eval()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_published_aasist(pth: str | os.PathLike, conf: str | os.PathLike) -> AASIST:
    """Build AASIST from a published ``.conf`` and load a published ``.pth`` state dict into it.

    The ``.pth`` is read with ``torch.load(weights_only=True)``: only tensors and plain containers are
    accepted, never arbitrary pickled objects. Returns the model in eval mode.
    """
    pth, conf = Path(pth), Path(conf)
    for path in (pth, conf):
        if not path.is_file():
            raise CheckpointError(f"{path}: no such file")
    try:
        run_config = json.loads(conf.read_text(encoding="utf-8"))
        model_config = run_config["model_config"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{conf}: not a published AASIST configuration with a 'model_config' "
                              f"({type(exc).__name__}: {exc})") from exc
    model = build_cm(model_config.get("architecture", "AASIST"), model_config)
    try:
        state = torch.load(pth, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle and zipfile raise many types; all mean "not a loadable state dict"
        raise CheckpointError(f"{pth}: cannot be read as a plain PyTorch state dict with weights_only=True "
                              f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{pth}: expected a state dict (a mapping of names to tensors), "
                              f"got {type(state).__name__}")
    _load_state_dict(model, state, str(pth))
    return model.eval()


def _preset_name(model: AASIST) -> str | None:
    return next((name for name, (_, config) in PRESETS.items() if config == model.config), None)


def import_aasist(pth: str | os.PathLike, conf: str | os.PathLike, out_dir: str | os.PathLike,
                  name: str | None = None) -> Path:
    """Convert a published AASIST / AASIST-L checkpoint (``.pth`` + ``.conf``) into a package checkpoint.

    ``name`` defaults to the published configuration the ``.conf`` matches (``aasist`` or ``aasist-l``);
    a different configuration needs an explicit name. The MIT notice of the published weights goes into
    the provenance and into ``LICENSE``; a ``LICENSE`` file beside the ``.pth``, if there is one, is
    copied instead of the built-in notice. Returns the output folder.
    """
    model = load_published_aasist(pth, conf)
    name = name or _preset_name(model)
    if name is None:
        raise CheckpointError(f"{conf}: the model_config is neither the published AASIST nor AASIST-L one; "
                              "give the checkpoint a name")
    pth = Path(pth)
    license_file = pth.parent / "LICENSE"
    license_text = license_file.read_text(encoding="utf-8") if license_file.is_file() else AASIST_MIT_NOTICE
    provenance = {
        "source": "clovaai/aasist (https://github.com/clovaai/aasist)",
        "paper": "Jung et al., AASIST: Audio Anti-Spoofing using Integrated Spectro-Temporal Graph Attention "
                 "Networks, ICASSP 2022",
        "training_data": "ASVspoof 2019 LA train",
        "imported_from": {"weights": pth.name, "weights_sha256": _sha256(pth), "config": Path(conf).name},
        "license": "MIT",
        "license_notice": license_text,
    }
    return save_cm(model, out_dir, name=name, provenance=provenance, license_text=license_text)

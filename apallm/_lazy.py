"""Lazy package exports (PEP 562): a package names its public objects without importing the modules that
define them, so `apallm --version` and other light tools do not pay for torch, transformers and librosa."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__, __all__)`` for ``package``, whose public ``name`` lives in module
    ``exports[name]`` (absolute, or relative to the package when it starts with a dot)."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        setattr(importlib.import_module(package), name, value)  # resolve once
        return value

    def __dir__():
        return sorted(set(exports) | set(vars(importlib.import_module(package))))

    return __getattr__, __dir__, sorted(exports)

"""Objects named by an import path, ``"package.module:attribute"``: detector factories, ALLM families, tiny
models and reward functions are all given this way."""

from __future__ import annotations

import importlib
from typing import Any


def resolve(spec: str) -> Any:
    """The object ``spec`` = ``"package.module:attribute"`` names (``attribute`` may be dotted, ``Class.method``).

    Raises:
        ValueError: ``spec`` is not of that form.
        ImportError: the module cannot be imported, or has no such attribute; the message names ``spec`` and
            what is missing (the module's own import error is chained).
    """
    module, sep, attr = str(spec).partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{spec!r} is not an import path of the form 'package.module:attribute'")
    try:
        value = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"cannot resolve {spec!r}: importing {module!r} failed ({exc})", name=module) from exc
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ImportError(f"cannot resolve {spec!r}: {module!r} has no attribute {attr!r}", name=module) from None
    return value

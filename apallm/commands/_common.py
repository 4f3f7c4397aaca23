"""The habits every command shares: exit statuses, per-input error records and lines, ``apallm <command>: ...``
messages on stderr, and ``KEY=VALUE`` options."""

from __future__ import annotations

import sys

from apallm.detectors import parse_pairs
from apallm.errors import error_fields

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "error_line", "error_record", "fail", "parse_pairs"]

#: every input succeeded
EXIT_OK = 0
#: the command ran, but some input failed (its error is in the output)
EXIT_FAILED = 1
#: the command could not start: bad options, or an input or model that cannot be loaded
EXIT_USAGE = 2


def error_record(path: str, exc: BaseException, **extra) -> dict:
    """The JSON record of an input that failed: ``path``, then ``extra``, then error, kind and message
    (:func:`apallm.errors.error_fields`)."""
    return {"path": path, **extra, **error_fields(exc)}


def error_line(path: str, exc: BaseException, width: int = 7) -> str:
    """The text line of an input that failed: ``error`` padded to ``width`` (the command's label column), the path,
    the error type and its message."""
    fields = error_fields(exc)
    return f"{'error':<{width}}{path}: {fields['error']}: {fields['message']}"


def fail(command: str, message: object, status: int = EXIT_USAGE) -> int:
    """Print ``apallm <command>: <message>`` on stderr and return ``status`` (a usage or load error by default)."""
    print(f"apallm {command}: {message}", file=sys.stderr)
    return status

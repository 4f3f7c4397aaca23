"""Exceptions for corpora and manifests: each names the file (and line) at fault.

All are :class:`DatasetError` (a ``ValueError``) with ``.message``, ``.source`` (a path) and ``.line``
(1-based line number, or None), so a message reads ``path:line: what is wrong``.
"""

from __future__ import annotations

import os


class DatasetError(ValueError):
    """Base class: a corpus or a manifest cannot be read as documented."""

    def __init__(self, message: str, source: str | os.PathLike | None = None, line: int | None = None):
        self.message = message
        self.source = None if source is None else str(source)
        self.line = line
        where = self.source if line is None or self.source is None else f"{self.source}:{line}"
        super().__init__(f"{where}: {message}" if where else message)


class ProtocolError(DatasetError):
    """A line of a corpus's protocol or label file does not match its published format."""


class LayoutError(DatasetError):
    """An expected protocol file or audio folder is missing; the message lists where it was looked for."""


class ManifestError(DatasetError):
    """A manifest row or a :class:`~apallm.datasets.ManifestEntry` breaks the schema.

    ``field`` names the offending field when there is one (e.g. ``"label"``).
    """

    def __init__(self, message: str, source: str | os.PathLike | None = None, line: int | None = None,
                 field: str | None = None):
        self.field = field
        super().__init__(message, source, line)

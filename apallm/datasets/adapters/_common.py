"""Helpers the adapters share: finding files in a corpus folder and reading protocol lines strictly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from apallm.audio import AUDIO_EXTENSIONS
from apallm.datasets.errors import LayoutError, ManifestError, ProtocolError
from apallm.datasets.manifest import BONAFIDE, SPOOF, ManifestEntry


def find_first(root: Path, candidates: list[str], what: str) -> Path:
    """The first of ``root/candidate`` that exists; :class:`LayoutError` listing every candidate otherwise."""
    for candidate in candidates:
        path = root / candidate
        if path.exists():
            return path
    looked = ", ".join(str(root / c) for c in candidates)
    raise LayoutError(f"cannot find {what}; looked for {looked}", source=root)


def protocol_rows(path: Path, columns: int, sep: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, cells)`` for each non-blank line of a whitespace- (or ``sep``-) separated
    protocol file, requiring exactly ``columns`` cells per line (:class:`ProtocolError` otherwise)."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            text = line.strip()
            if not text:
                continue
            cells = text.split(sep)
            if len(cells) != columns:
                raise ProtocolError(f"expected {columns} columns, found {len(cells)}: {text!r}", source=path,
                                    line=number)
            yield number, cells


def parse_key(value: str, path: Path, line: int, bonafide: str = BONAFIDE, spoof: str = SPOOF) -> str:
    """Map a protocol's key word (``bonafide``/``spoof`` unless the corpus spells them otherwise) to a label."""
    if value == bonafide:
        return BONAFIDE
    if value == spoof:
        return SPOOF
    raise ProtocolError(f"key must be {bonafide!r} or {spoof!r}, got {value!r}", source=path, line=line)


def read_asvspoof_cm_protocol(path: Path) -> Iterator[tuple[int, str, str, str | None, str]]:
    """Read an ASVspoof 2019-style CM protocol: ``SPEAKER_ID AUDIO_FILE_NAME - SYSTEM_ID KEY``.

    Yields ``(line, speaker, utterance, attack, label)``. SYSTEM_ID is ``-`` exactly for bona fide lines
    (attack ``bonafide``); a spoof line with ``-`` or a bona fide line with a system id means shifted columns
    and raises :class:`ProtocolError`.
    """
    for line, (speaker, utterance, _unused, system, key) in protocol_rows(path, 5):
        label = parse_key(key, path, line)
        if (system == "-") != (label == BONAFIDE):
            raise ProtocolError(f"SYSTEM_ID {system!r} does not fit key {key!r} (bona fide lines have '-', "
                                "spoof lines a system id)", source=path, line=line)
        yield line, speaker, utterance, (BONAFIDE if label == BONAFIDE else system), label


def make_entry(source: Path, line: int | None, /, **fields) -> ManifestEntry:
    """A :class:`ManifestEntry`, with a schema violation reported as a :class:`ProtocolError` at ``source:line``."""
    try:
        return ManifestEntry(**fields)
    except ManifestError as exc:
        raise ProtocolError(exc.message, source=source, line=line) from exc


def audio_files(folder: Path) -> list[Path]:
    """Audio files (by :data:`apallm.audio.AUDIO_EXTENSIONS`) anywhere under ``folder``, sorted."""
    found = []
    for directory, subdirs, files in os.walk(folder):
        subdirs.sort()
        found.extend(Path(directory) / name for name in sorted(files)
                     if Path(name).suffix.lower() in AUDIO_EXTENSIONS)
    return found


def relative_id(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` without its extension, with ``/`` separators: an id for folder corpora."""
    return path.relative_to(base).with_suffix("").as_posix()

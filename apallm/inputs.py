"""The inputs of a run: a folder, a list file, a table or one audio file becomes a list of :class:`Item` with
unique, stable ids. ``apallm batch``, ``apallm score``, ``apallm eval`` (keys without an id column) and
``apallm data build generic`` all name clips by these ids, so their outputs join.

Sources:

- a **folder**: every audio file below it (recursively, by :data:`apallm.audio.AUDIO_EXTENSIONS`), sorted;
- a **list file** (``.txt``/``.lst``/``.list``): one path per line; blank lines and ``#`` comments are skipped;
- a **table** (``.tsv``, ``.csv`` with a header row, or ``.jsonl``, one object a line) with a ``path`` column.
  ``id`` and ``label`` are optional; a ``label`` is normalised with :func:`apallm.verdict.canonical_label`
  (``bona fide``, ``real``, ``fake``, ... are accepted; an empty cell means unknown) and any other word is an
  error naming the row and the value. Every other column is kept in :attr:`Item.meta`;
- one **audio file**: a single item, id = its stem.

Relative paths in a list or table are relative to that file's folder.

**Ids.** An ``id`` column wins where a row has one (two rows with the same explicit id are an error naming
both lines). Otherwise the id is the file's path without its suffix, relative to the folder given (for a
folder) or to the list's or table's folder (``audio/vits-demo/wavs/ms_01_gt``): never absolute, never only the
stem, so ``a/00001.wav`` and ``b/00001.wav`` stay two clips. When some files lie outside the table's folder
(absolute paths elsewhere, ``../``), those are named relative to the deepest folder that the table's folder
shares with all of them (``/data/x/1.wav`` listed in ``/data/lists/l.txt`` is ``x/1``). Two rows that still
get the same id (the same file listed twice, ``x.wav`` beside ``x.flac``) are numbered ``x``, ``x#1``, ``x#2``
in order.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apallm.audio import AUDIO_EXTENSIONS
from apallm.datasets.errors import DatasetError
from apallm.verdict import canonical_label

__all__ = ["LIST_SUFFIXES", "TABLE_SUFFIXES", "InputError", "Item", "assign_ids", "collect_inputs", "derive_ids"]

LIST_SUFFIXES = (".txt", ".lst", ".list")
TABLE_SUFFIXES = (".tsv", ".csv", ".jsonl")
#: the columns an :class:`Item` holds itself; every other column goes to ``meta``
ITEM_COLUMNS = ("id", "path", "label")


class InputError(DatasetError):
    """A list, table or one of its rows cannot be an input: a :class:`~apallm.datasets.DatasetError` (so a
    ``ValueError``) with ``message``, ``source`` (the file) and ``line`` (1-based, or None); ``str()`` reads
    ``source:line: message``."""


@dataclass(frozen=True)
class Item:
    """One input: its unique ``id``, the audio ``path``, the ``label`` (``bonafide``/``spoof``) when the input
    gives one, and the input's other columns as ``meta``."""

    id: str
    path: str
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, hash=False)


def collect_inputs(source: str | os.PathLike, errors: list[DatasetError] | None = None) -> list[Item]:
    """The inputs of a folder, list file, table or audio file, in a stable order, with unique ids.

    A bad row (no path, an unknown label, an id used twice, a line that is not JSON) raises
    :class:`InputError` (:class:`~apallm.datasets.ManifestError` for a line that is not JSON) naming file, line
    and value; with ``errors`` a list, the error is appended to it and the row skipped instead. A source that
    does not exist raises FileNotFoundError; a table without a ``path`` column raises InputError always.
    """
    source = Path(source)
    suffix = source.suffix.lower()
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        ids = _numbered([p.relative_to(source).with_suffix("").as_posix() for p in files])
        return [Item(item_id, str(p)) for item_id, p in zip(ids, files, strict=True)]
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such folder, manifest or list file")
    if suffix in AUDIO_EXTENSIONS:
        return [Item(source.stem, str(source))]
    if suffix in LIST_SUFFIXES:
        rows = []
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip() and not line.strip().startswith("#"):
                rows.append((number, {"path": line.strip()}))
    elif suffix in TABLE_SUFFIXES:
        rows = _table_rows(source, errors)
    else:
        raise InputError(f"unknown input kind {suffix or '(no extension)'!r}: give a folder, a list file "
                         f"({', '.join(LIST_SUFFIXES)}), a table ({', '.join(TABLE_SUFFIXES)}) or an audio file",
                         source)
    return _items(rows, source, errors)


def derive_ids(paths: Sequence[str], base: str | os.PathLike) -> list[str]:
    """The ids of files a list or table in folder ``base`` names (before numbering repeats): each path
    without its suffix, relative to ``base``; a file outside ``base`` relative to the deepest folder that
    ``base`` shares with every file."""
    base_abs = Path(os.path.abspath(base))
    full = [Path(os.path.abspath(base_abs / Path(p).expanduser())) for p in paths]
    # files outside base: relative to the deepest folder base shares with all of them
    root = Path(os.path.commonpath([str(base_abs)] + [str(p.parent) for p in full]))
    return [_id_from_path(p.relative_to(base_abs if p.is_relative_to(base_abs) else root).as_posix(), number)
            for number, p in enumerate(full)]


def _id_from_path(path: str, number: int) -> str:
    text = Path(path).with_suffix("").as_posix().lstrip("/") if Path(path).name else ""
    return text if text and text != "." else f"line{number}"


def _resolve(path: str, list_file: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else list_file.parent / p


def _table_rows(source: Path, errors: list | None) -> list[tuple[int, dict]]:
    """``(line, row)`` of a JSONL, TSV or CSV table; the row keeps every column (empty cells are None)."""
    if source.suffix.lower() == ".jsonl":
        from apallm.datasets.manifest import iter_records

        return list(iter_records(source, errors))
    rows = []
    with open(source, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t" if source.suffix.lower() == ".tsv" else ",")
        header = reader.fieldnames or []
        if "path" not in header:
            raise InputError(f"the header needs a 'path' column (and may add id, label and any others); got "
                             f"{' | '.join(header) or 'an empty file'!r}", source, 1)
        for row in reader:
            if None in row:
                _fail(InputError(f"{len(row[None])} more cell(s) than header columns", source, reader.line_num),
                      errors)
                continue
            rows.append((reader.line_num, {k: (v if v not in (None, "") else None) for k, v in row.items()}))
    return rows


def _fail(error: ValueError, errors: list | None) -> None:
    if errors is None:
        raise error
    errors.append(error)


def _items(rows: list[tuple[int, dict]], source: Path, errors: list | None) -> list[Item]:
    kept: list[tuple[int, dict, str | None]] = []
    first_line: dict[str, int] = {}
    for number, row in rows:
        path = row.get("path")
        if path in (None, ""):
            _fail(InputError("the row has no 'path'", source, number), errors)
            continue
        raw = row.get("label")
        label = None
        if raw not in (None, ""):
            label = canonical_label(str(raw))
            if label is None:
                _fail(InputError(f"label {raw!r} is neither bonafide nor spoof (nor a synonym such as 'bona fide', "
                                 "'real', 'fake', 'synthetic')", source, number), errors)
                continue
        explicit = None if row.get("id") in (None, "") else str(row["id"])
        if explicit is not None:
            if explicit in first_line:
                _fail(InputError(f"id {explicit!r} is used twice: lines {first_line[explicit]} and {number}",
                                 source, number), errors)
                continue
            first_line[explicit] = number
        kept.append((number, {**row, "path": str(path), "label": label}, explicit))
    ids = assign_ids([explicit for _, _, explicit in kept], [row["path"] for _, row, _ in kept], source.parent)
    return [Item(item_id, str(_resolve(row["path"], source)), row["label"],
                 {k: v for k, v in row.items() if k not in ITEM_COLUMNS})
            for item_id, (_, row, _) in zip(ids, kept, strict=True)]


def assign_ids(explicit: Sequence[str | None], paths: Sequence[str], base: str | os.PathLike) -> list[str]:
    """The ids of the rows of a list or table in folder ``base``: the explicit id where a row gives one (they
    must already be unique), else the id :func:`derive_ids` gives its path; a derived id that repeats one
    already taken is numbered ``#1``, ``#2``, ... in row order."""
    derived = derive_ids(paths, base)
    return _numbered([given or auto for given, auto in zip(explicit, derived, strict=True)],
                     [given is not None for given in explicit])


def _numbered(ids: Sequence[str], explicit: Sequence[bool] = ()) -> list[str]:
    """Derived ids made unique: the first keeps its id, later ones get ``#1``, ``#2``; explicit ids (already
    unique) are kept as they are."""
    explicit = list(explicit) or [False] * len(ids)
    taken = {item_id for item_id, given in zip(ids, explicit, strict=True) if given}
    count: dict[str, int] = {}
    out = []
    for item_id, given in zip(ids, explicit, strict=True):
        if given:
            out.append(item_id)
            continue
        n = count.get(item_id, 0)
        candidate = item_id if n == 0 else f"{item_id}#{n}"
        while candidate in taken:
            n += 1
            candidate = f"{item_id}#{n}"
        count[item_id] = n + 1
        taken.add(candidate)
        out.append(candidate)
    return out

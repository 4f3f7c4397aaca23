"""Any corpus: a folder labelled by its folder names, or a CSV/TSV list with ``path`` and ``label`` columns.

**Folder** (``ROOT`` is a directory): every audio file gets its label from the nearest enclosing folder
(below ``ROOT``) whose name is a label word, and its split from the nearest split word, both matched
case-insensitively::

    ROOT/train/real/a.wav     -> bonafide, split train
    ROOT/eval/fake/b.flac     -> spoof, split eval
    ROOT/spoof/tts_x/c.wav    -> spoof, split null

A file with no label word above it is an error (the message names it), so nothing is guessed.

**List** (``ROOT`` is a ``.csv`` or ``.tsv`` file) with a header holding at least ``path`` and ``label``,
and optionally ``id``, ``attack``, ``speaker``, ``split``, ``language``; other columns (``system``,
``source_repo``, ``notes``, ...) are ignored::

    path,label,attack
    audio/0001.wav,bonafide,
    audio/0002.wav,fake,elevenlabs

Relative paths are relative to the list's folder. Labels are read by :func:`apallm.verdict.canonical_label`
(the folder words below and synonyms such as ``bona fide``); an unknown word is an error naming the line.

Bona fide words: bonafide, bona-fide, bona_fide, genuine, real, human. Spoof words: spoof, spoofed, fake,
deepfake, synthetic, generated. Split words: train/training, dev/val/valid/validation, eval/test/testing.
``id`` is the path below ``ROOT`` without extension; for a list, the ``id`` column, else the path relative to
the list's folder without extension (never absolute: see :mod:`apallm.inputs`);
``dataset`` is option ``dataset`` (default ``generic``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from apallm.datasets.adapters._common import audio_files, make_entry, relative_id
from apallm.datasets.errors import LayoutError, ManifestError, ProtocolError
from apallm.datasets.manifest import BONAFIDE, SPOOF, ManifestEntry

NAME = "generic"
SPLITS = ("train", "dev", "eval")
OPTIONS = {"dataset": "value of the dataset field (default generic)"}
LABEL_WORDS = {
    **dict.fromkeys(("bonafide", "bona-fide", "bona_fide", "genuine", "real", "human"), BONAFIDE),
    **dict.fromkeys(("spoof", "spoofed", "fake", "deepfake", "synthetic", "generated"), SPOOF),
}
SPLIT_WORDS = {
    **dict.fromkeys(("train", "training"), "train"),
    **dict.fromkeys(("dev", "val", "valid", "validation"), "dev"),
    **dict.fromkeys(("eval", "test", "testing"), "eval"),
}
_LIST_COLUMNS = ("path", "label", "id", "attack", "speaker", "split", "language")


def _nearest(parts: tuple[str, ...], words: dict[str, str]) -> str | None:
    for part in reversed(parts):
        if part.lower() in words:
            return words[part.lower()]
    return None


def _read_folder(root: Path, split: str | None, dataset: str) -> list[ManifestEntry]:
    entries, unlabelled = [], []
    for path in audio_files(root):
        folders = path.relative_to(root).parts[:-1]
        label = _nearest(folders, LABEL_WORDS)
        if label is None:
            unlabelled.append(path)
            continue
        file_split = _nearest(folders, SPLIT_WORDS)
        if split and file_split != split:
            continue
        entries.append(make_entry(path, None, id=relative_id(path, root), path=str(path), label=label,
                                  dataset=dataset, split=file_split))
    if unlabelled:
        raise LayoutError(f"{len(unlabelled)} audio file(s) have no label folder above them (e.g. {unlabelled[0]}); "
                          f"label folders are named {', '.join(sorted(LABEL_WORDS))}", source=root)
    return entries


def _read_list(table: Path, split: str | None, dataset: str) -> list[ManifestEntry]:
    from apallm.inputs import InputError, collect_inputs

    if table.suffix.lower() in (".csv", ".tsv"):
        with open(table, encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh, delimiter="\t" if table.suffix.lower() == ".tsv" else ","), [])
        if "path" not in header or "label" not in header:
            raise ProtocolError(f"header needs path and label, and may add {', '.join(_LIST_COLUMNS[2:])} "
                                f"(other columns are ignored); got {header!r}", source=table, line=1)
    try:
        items = collect_inputs(table)
    except InputError as exc:
        raise ProtocolError(exc.message, source=table, line=exc.line) from exc
    entries = []
    for item in items:
        if item.label is None:
            raise ProtocolError(f"{item.path} has no label", source=table)
        meta = item.meta
        row_split = meta.get("split") or None
        if row_split is not None:
            row_split = SPLIT_WORDS.get(str(row_split).lower(), str(row_split))
        if split and row_split != split:
            continue
        try:
            entries.append(ManifestEntry(id=item.id, path=item.path, label=item.label, dataset=dataset,
                                         attack=meta.get("attack") or None, speaker=meta.get("speaker") or None,
                                         split=row_split, language=meta.get("language") or None))
        except ManifestError as exc:
            raise ProtocolError(f"{item.path}: {exc.message}", source=table) from exc
    return entries


def read(root: Path, split: str | None = None, dataset: str = NAME) -> list[ManifestEntry]:
    if root.is_file():
        return _read_list(root, split, dataset)
    return _read_folder(root, split, dataset)

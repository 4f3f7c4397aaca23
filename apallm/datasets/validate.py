"""Checks of a manifest file: schema, files, duplicates and label conflicts.

Problem kinds:

``invalid_entry``      a row breaks the schema (any field but the label)
``bad_label``          the label is not ``bonafide``/``spoof``
``missing_file``       the audio file does not exist
``unreadable_file``    the file exists but its header cannot be read
``duplicate_id``       the same ``(dataset, id)`` on more than one row
``duplicate_path``     the same audio file on more than one row
``conflicting_label``  rows with the same ``(dataset, id)`` or the same file disagree on the label

Readability is checked from the header with ``soundfile.info`` (no decoding; milliseconds per file). Files
libsndfile cannot open (MP4/M4A/AAC, WebM, WMA) are decoded instead with :func:`apallm.audio.load_audio`,
which needs ``apallm[codecs]``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import soundfile as sf

from apallm.audio import load_audio
from apallm.datasets.errors import ManifestError
from apallm.datasets.manifest import ManifestEntry, iter_records, resolve_path
from apallm.errors import AudioError

KINDS = ("invalid_entry", "bad_label", "missing_file", "unreadable_file", "duplicate_id", "duplicate_path",
         "conflicting_label")
#: containers libsndfile cannot open; these are checked by decoding through PyAV
_DECODE_TO_CHECK = (".m4a", ".mp4", ".aac", ".webm", ".mka", ".wma")


@dataclass
class Problem:
    kind: str
    message: str
    line: int | None = None
    id: str | None = None
    path: str | None = None


@dataclass
class ValidationReport:
    manifest: str
    entries: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        return {kind: sum(p.kind == kind for p in self.problems) for kind in KINDS}

    def to_dict(self) -> dict:
        return {"manifest": self.manifest, "entries": self.entries, "ok": self.ok, "counts": self.counts(),
                "problems": [asdict(p) for p in self.problems]}


def check_readable(path: Path) -> str | None:
    """None when the audio file's header (or, for MP4-family containers, its stream) reads; else why not."""
    if path.suffix.lower() in _DECODE_TO_CHECK:
        try:
            load_audio(path, max_duration_s=None, min_duration_s=0.0)
        except AudioError as exc:
            return f"{type(exc).__name__}: {exc.message}"
        return None
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError) as exc:
        return f"soundfile cannot read the header ({str(exc).strip().splitlines()[-1][:160]})"
    if info.frames <= 0:
        return "the header declares zero samples"
    return None


def validate_manifest(manifest: str | os.PathLike, read_audio: bool = True, workers: int = 8) -> ValidationReport:
    """Check every row of ``manifest`` and report all problems (never stops at the first).

    ``read_audio=False`` checks that files exist but not that they read. Raises
    :class:`ManifestError` only when the file cannot be parsed at all (unknown format, broken CSV header).
    """
    report = ValidationReport(manifest=str(manifest), entries=0)
    unparsable: list[ManifestError] = []
    rows: list[tuple[int, ManifestEntry]] = []
    for line, record in iter_records(manifest, errors=unparsable):
        report.entries += 1
        try:
            rows.append((line, ManifestEntry.from_dict(record)))
        except ManifestError as exc:
            kind = "bad_label" if exc.field == "label" else "invalid_entry"
            report.problems.append(Problem(kind, exc.message, line, _text(record.get("id")), _text(record.get("path"))))

    report.entries += len(unparsable)
    report.problems += [Problem("invalid_entry", exc.message, exc.line) for exc in unparsable]

    by_id: dict[tuple[str, str], list[tuple[int, ManifestEntry]]] = defaultdict(list)
    by_path: dict[Path, list[tuple[int, ManifestEntry]]] = defaultdict(list)
    for line, entry in rows:
        by_id[(entry.dataset, entry.id)].append((line, entry))
        by_path[resolve_path(entry.path, manifest).resolve()].append((line, entry))
    for (dataset, entry_id), group in by_id.items():
        _groups(report, group, "duplicate_id", f"id {entry_id!r} of {dataset}")
    for path, group in by_path.items():
        _groups(report, group, "duplicate_path", f"file {path}")

    def check(path: Path) -> tuple[str, str] | None:
        if not path.is_file():
            return "missing_file", "no such file"
        reason = check_readable(path) if read_audio else None
        return None if reason is None else ("unreadable_file", reason)

    paths = list(by_path)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for path, result in zip(paths, pool.map(check, paths), strict=True):
            if result is not None:
                for line, entry in by_path[path]:
                    report.problems.append(Problem(result[0], result[1], line, entry.id, str(path)))
    report.problems.sort(key=lambda p: (p.line or 0, KINDS.index(p.kind)))
    return report


def _groups(report: ValidationReport, group, kind: str, what: str) -> None:
    if len(group) < 2:
        return
    lines = ", ".join(str(line) for line, _ in group)
    for line, entry in group[1:]:
        report.problems.append(Problem(kind, f"{what} also on line(s) {lines}", line, entry.id, entry.path))
    labels = {entry.label for _, entry in group}
    if len(labels) > 1:
        line, entry = group[0]
        report.problems.append(Problem("conflicting_label", f"{what} is labelled {' and '.join(sorted(labels))} "
                                       f"on lines {lines}", line, entry.id, entry.path))


def _text(value) -> str | None:
    return None if value is None else str(value)

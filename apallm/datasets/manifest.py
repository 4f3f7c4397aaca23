"""The manifest: one schema for every corpus, stored as JSONL, CSV or TSV.

One entry per audio file, with these fields (in this order in every file):

- ``id``: the corpus's own name for the utterance (``LA_T_1138215``), so it joins with keys and score files;
  unique within a corpus. Across corpora the key is ``(dataset, id)``.
- ``path``: the audio file; a relative path is relative to the manifest's folder.
- ``label``: exactly ``bonafide`` or ``spoof``.
- ``attack``: the attack or system id as the corpus names it (``A07``, ``Task1-team20``, a TTS model name);
  **always** ``bonafide`` for bona fide entries, and null for spoofs whose system is unknown. ``-`` and the
  empty string are refused: ``-`` is how protocols write "no value", and it would read as an attack named
  ``-``.
- ``speaker``: speaker id, or null.
- ``duration``: seconds, or null when not probed.
- ``sample_rate``: Hz, or null when not probed.
- ``dataset``: the adapter that made the entry (``asvspoof2019_la``, ``in_the_wild``, ...).
- ``split``: the corpus's partition (``train``/``dev``/``eval`` where it has them), or null.
- ``language``: the language code as the corpus gives it (``en``, ``de``, ``zh-cn``), or null.
- ``source``: where the entry comes from inside a corpus gathered from several places (a demo page's
  repository, one recording channel each), or null; leave-one-source-out evaluation holds one source out at a time.
- ``segments``: optional segment labels, a list of ``{"start": s, "end": s, "label": "bonafide"|"spoof"}``
  in time order and not overlapping; null when the corpus has none.

JSONL holds one JSON object per line with every field (null where unknown). CSV and TSV have a header row
with the field names; an empty cell is null and ``segments`` is a JSON list in its cell. The columns are modelled on
the uniform CSV protocol of nii-yamagishilab/AntiDeepfake (ID, Label, Duration, SampleRate, Path, Attack,
Speaker, Proportion, Language) with the labels spelled as ASVspoof spells them and segment labels added.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from apallm.datasets.errors import ManifestError
from apallm.verdict import BONAFIDE, LABELS, SPOOF

#: field order of every manifest file
FIELDS = ("id", "path", "label", "attack", "speaker", "duration", "sample_rate", "dataset", "split", "language",
          "source", "segments")
REQUIRED_FIELDS = ("id", "path", "label", "dataset")

_DELIMITERS = {".csv": ",", ".tsv": "\t"}
MANIFEST_SUFFIXES = (".jsonl", ".csv", ".tsv")


@dataclass(frozen=True)
class Segment:
    """A labelled stretch of an utterance, in seconds from its start."""

    start: float
    end: float
    label: str

    def __post_init__(self):
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ManifestError(f"segment {name} must be a finite number of seconds, got {value!r}",
                                    field="segments")
        if self.start < 0 or self.end <= self.start:
            raise ManifestError(f"segment must have 0 <= start < end, got {self.start}-{self.end}", field="segments")
        if self.label not in LABELS:
            raise ManifestError(f"segment label must be 'bonafide' or 'spoof', got {self.label!r}", field="segments")

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "label": self.label}


@dataclass(frozen=True)
class ManifestEntry:
    """One audio file of a corpus, validated on construction (raises :class:`ManifestError`).

    A bona fide entry given ``attack=None`` gets ``attack="bonafide"``; any other attack on a bona fide
    entry, or ``attack="bonafide"`` on a spoof, is refused. Segments may be given as dicts.
    """

    id: str
    path: str
    label: str
    dataset: str
    attack: str | None = None
    speaker: str | None = None
    duration: float | None = None
    sample_rate: int | None = None
    split: str | None = None
    language: str | None = None
    source: str | None = None
    segments: tuple[Segment, ...] | None = None

    def __post_init__(self):
        for name in REQUIRED_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ManifestError(f"{name} must be a non-empty string, got {value!r}", field=name)
        if self.label not in LABELS:
            raise ManifestError(f"label must be 'bonafide' or 'spoof', got {self.label!r}", field="label")
        for name in ("attack", "speaker", "split", "language", "source"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip() or value == "-"):
                raise ManifestError(f"{name} must be a non-empty string or null, got {value!r}", field=name)
        if self.label == BONAFIDE:
            if self.attack is None:
                object.__setattr__(self, "attack", BONAFIDE)
            elif self.attack != BONAFIDE:
                raise ManifestError(f"a bona fide entry has attack 'bonafide', got {self.attack!r}", field="attack")
        elif self.attack == BONAFIDE:
            raise ManifestError("a spoof entry cannot have attack 'bonafide'", field="attack")
        if self.duration is not None:
            if (isinstance(self.duration, bool) or not isinstance(self.duration, (int, float))
                    or not math.isfinite(self.duration) or self.duration < 0):
                raise ManifestError(f"duration must be seconds >= 0 or null, got {self.duration!r}", field="duration")
            object.__setattr__(self, "duration", float(self.duration))
        if self.sample_rate is not None and (isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int)
                                             or self.sample_rate <= 0):
            raise ManifestError(f"sample_rate must be a positive integer or null, got {self.sample_rate!r}",
                                field="sample_rate")
        if self.segments is not None:
            object.__setattr__(self, "segments", _segments(self.segments))
            self._check_segments()

    def _check_segments(self) -> None:
        for before, after in zip(self.segments, self.segments[1:], strict=False):
            if after.start < before.end:
                raise ManifestError(f"segments overlap or are out of order at {after.start} s", field="segments")
        labels = {s.label for s in self.segments}
        if self.label == BONAFIDE and SPOOF in labels:
            raise ManifestError("a bona fide entry cannot have spoof segments", field="segments")
        if self.label == SPOOF and self.segments and SPOOF not in labels:
            raise ManifestError("a spoof entry with segments needs at least one spoof segment", field="segments")

    def to_dict(self) -> dict:
        """JSON-ready dict in :data:`FIELDS` order."""
        record = {name: getattr(self, name) for name in FIELDS}
        if self.segments is not None:
            record["segments"] = [s.to_dict() for s in self.segments]
        return record

    @classmethod
    def from_dict(cls, record: dict) -> ManifestEntry:
        unknown = sorted(set(record) - set(FIELDS))
        if unknown:
            raise ManifestError(f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(FIELDS)}")
        missing = [name for name in REQUIRED_FIELDS if record.get(name) is None]
        if missing:
            raise ManifestError(f"missing required field(s) {', '.join(missing)}", field=missing[0])
        return cls(**{name: record.get(name) for name in FIELDS})


def _segments(value) -> tuple[Segment, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ManifestError(f"segments must be a list of {{start, end, label}}, got {value!r}", field="segments")
    out = []
    for item in value:
        if isinstance(item, Segment):
            out.append(item)
        elif isinstance(item, dict) and set(item) == {"start", "end", "label"}:
            out.append(Segment(item["start"], item["end"], item["label"]))
        else:
            raise ManifestError(f"a segment is {{start, end, label}}, got {item!r}", field="segments")
    return tuple(out)


# --------------------------------------------------------------------------------------------- files

def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in MANIFEST_SUFFIXES:
        raise ManifestError(f"unknown manifest format {suffix or '(no extension)'!r}; use "
                            f"{', '.join(MANIFEST_SUFFIXES)}", source=path)
    return suffix


def iter_records(path: str | os.PathLike, errors: list[ManifestError] | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for each row of a manifest, typed but not yet validated.

    A row that cannot be parsed (broken JSON, a non-numeric duration, a segments cell that is not JSON)
    raises :class:`ManifestError` with file and line, or, when ``errors`` is a list, is appended to it and
    skipped. An unknown format or a CSV header without the required columns always raises. Validation of
    the values is :meth:`ManifestEntry.from_dict`'s job, so a caller can report every bad row.
    """
    path = Path(path)
    suffix = _format(path)
    with open(path, encoding="utf-8", newline="") as fh:
        if suffix == ".jsonl":
            rows = ((number, line) for number, line in enumerate(fh, 1) if line.strip())
            parse = json_record
        else:
            reader = csv.DictReader(fh, delimiter=_DELIMITERS[suffix])
            header = reader.fieldnames or []
            missing = [name for name in REQUIRED_FIELDS if name not in header]
            unknown = [name for name in header if name not in FIELDS]
            if missing or unknown:
                problem = (f"missing column(s) {', '.join(missing)}" if missing else
                           f"unknown column(s) {', '.join(unknown)}")
                raise ManifestError(f"{problem}; the columns are {', '.join(FIELDS)}", source=path, line=1)
            rows = ((reader.line_num, row) for row in reader)
            parse = _typed_row
        for number, row in rows:
            try:
                yield number, parse(row, path, number)
            except ManifestError as exc:
                if errors is None:
                    raise
                errors.append(exc)


def json_record(line: str, source: str | os.PathLike, number: int) -> dict:
    """One line of a JSON-lines file (a manifest, a predictions file) as a dict; :class:`ManifestError` naming
    ``source`` and line ``number`` when it is not a JSON object."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"not valid JSON ({exc.msg} at column {exc.colno})", source=source, line=number) from exc
    if not isinstance(record, dict):
        raise ManifestError(f"expected a JSON object, got {type(record).__name__}", source=source, line=number)
    return record


def _typed_row(row: dict, path: Path, line: int) -> dict:
    if None in row:
        raise ManifestError(f"{len(row[None])} more cell(s) than header columns", source=path, line=line)
    record = {name: (value if value != "" else None) for name, value in row.items()}
    for name, kind in (("duration", float), ("sample_rate", int)):
        if record.get(name) is not None:
            try:
                record[name] = kind(record[name])
            except ValueError as exc:
                expected = "an integer" if kind is int else "a number"
                raise ManifestError(f"{name} {record[name]!r} is not {expected}", source=path, line=line,
                                    field=name) from exc
    if record.get("segments") is not None:
        try:
            record["segments"] = json.loads(record["segments"])
        except json.JSONDecodeError as exc:
            raise ManifestError(f"segments cell is not a JSON list ({exc.msg})", source=path, line=line,
                                field="segments") from exc
    return record


def read_manifest(path: str | os.PathLike) -> list[ManifestEntry]:
    """Read a ``.jsonl``, ``.csv`` or ``.tsv`` manifest; the first bad row raises :class:`ManifestError`
    naming the file and line. Paths are returned as written (see :func:`resolve_path`)."""
    entries = []
    for line, record in iter_records(path):
        try:
            entries.append(ManifestEntry.from_dict(record))
        except ManifestError as exc:
            raise ManifestError(exc.message, source=path, line=line, field=exc.field) from exc
    return entries


def write_manifest(entries: Iterable[ManifestEntry], path: str | os.PathLike) -> int:
    """Write entries as ``.jsonl``, ``.csv`` or ``.tsv`` (by extension), creating the folder; returns the count."""
    path = Path(path)
    suffix = _format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        if suffix == ".jsonl":
            for entry in entries:
                fh.write(json.dumps(entry.to_dict(), ensure_ascii=False) + "\n")
                count += 1
            return count
        writer = csv.writer(fh, delimiter=_DELIMITERS[suffix], lineterminator="\n")
        writer.writerow(FIELDS)
        for entry in entries:
            record = entry.to_dict()
            if record["segments"] is not None:
                record["segments"] = json.dumps(record["segments"], separators=(",", ":"))
            writer.writerow(["" if record[name] is None else record[name] for name in FIELDS])
            count += 1
    return count


def resolve_path(entry_path: str, manifest_path: str | os.PathLike) -> Path:
    """The audio file an entry names: absolute paths as they are, relative ones from the manifest's folder."""
    path = Path(entry_path).expanduser()
    return path if path.is_absolute() else Path(manifest_path).parent / path


def read_labelled(path: str | os.PathLike) -> list[dict]:
    """Training rows of a manifest (JSONL, CSV or TSV): every row needs ``path`` and ``label`` (bonafide or
    spoof); other fields (``id``, ``target``, ``segments``, ...) are kept. Relative paths are resolved from the
    manifest's folder. A bad row raises :class:`ManifestError` with file and line; an empty manifest too."""
    rows = []
    for number, record in iter_records(path):
        if not record.get("path") or record.get("label") not in LABELS:
            raise ManifestError("a training row needs 'path' and 'label' (bonafide|spoof)", source=path, line=number)
        rows.append({**record, "path": str(resolve_path(record["path"], path))})
    if not rows:
        raise ManifestError("no rows", source=path)
    return rows

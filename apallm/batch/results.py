"""The results file of a batch run: one JSON record per line, appended whole; reading it back (past a torn last
line), joining shard files, and the CSV table."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from apallm.errors import error_fields
from apallm.inputs import Item


def read_results(path: str | os.PathLike, repair: bool = False) -> list[dict]:
    """The complete records of a results file. A torn last line (a crash mid-write) is ignored, and with
    ``repair`` cut from the file so appends start on a fresh line."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if repair and end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(end)
    records = []
    for line in data[:end].splitlines():
        if line.strip():
            records.append(json.loads(line))
    return records


class ResultWriter:
    """Appends one JSON record per line, each with one ``write`` call on an O_APPEND descriptor."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        written = os.write(self.fd, line)
        if written != len(line):  # never seen on a local file system; say so rather than tear a line
            raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)


def verdict_record(item: Item, verdict) -> dict:
    """The verdict's fields as it gives them (label, score, rationale, detector, then any others), keyed by the
    item's id and path, with the input's label as ``true_label`` when it has one."""
    data = verdict.to_dict()
    data.pop("id", None)
    record = {"id": item.id, "path": item.path, "label": data.pop("label"), "score": data.pop("score"),
              "rationale": data.pop("rationale"), "detector": data.pop("detector", None), **data}
    return _with_true_label(record, item)


def error_record(item: Item, exc: BaseException) -> dict:
    """The item's id and path with the error's type, kind and message (:func:`apallm.errors.error_fields`)."""
    return _with_true_label({"id": item.id, "path": item.path, **error_fields(exc)}, item)


def _with_true_label(record: dict, item: Item) -> dict:
    if item.label is not None:
        record["true_label"] = item.label
    return record


def merge_results(parts: Iterable[str | os.PathLike], out: str | os.PathLike,
                  expected: Sequence[Item] | None = None) -> dict:
    """Join shard files into ``out`` in input order (when ``expected`` is given); every id exactly once.

    Raises ValueError when an id appears twice with different content, or (with ``expected``) when inputs
    are missing or unknown ids appear."""
    by_id: dict[str, dict] = {}
    for part in parts:
        for record in read_results(part):
            previous = by_id.get(record["id"])
            if previous is not None and previous != record:
                raise ValueError(f"id {record['id']!r} has two different records across the shard files")
            by_id[record["id"]] = record
    order = [item.id for item in expected] if expected is not None else sorted(by_id)
    if expected is not None:
        missing = [i for i in order if i not in by_id]
        unknown = sorted(set(by_id) - set(order))
        if missing or unknown:
            raise ValueError(f"{len(missing)} input(s) missing (e.g. {missing[:3]}), "
                             f"{len(unknown)} unknown id(s) (e.g. {unknown[:3]}): run the missing shards")
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for item_id in order:
            fh.write(json.dumps(by_id[item_id], ensure_ascii=False) + "\n")
    tmp.replace(out)
    return {"records": len(order), "errors": sum("error" in by_id[i] for i in order)}


CSV_FIELDS = ("id", "path", "label", "score", "frequency", "time", "detector", "error", "message")


def write_csv(records: Sequence[dict], path: str | os.PathLike) -> Path:
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for r in records:
            rationale = r.get("rationale") or {}
            writer.writerow({"id": r.get("id"), "path": r.get("path"), "label": r.get("label"),
                             "score": r.get("score"), "frequency": rationale.get("frequency"),
                             "time": rationale.get("time"), "detector": r.get("detector"),
                             "error": r.get("error"), "message": r.get("message")})
    return path

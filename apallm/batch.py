"""Batch explanation: thousands of clips to a JSONL of verdicts that survives crashes, with reports.

- Inputs (:mod:`apallm.inputs`): a folder (recursive, audio extensions), a table (.tsv/.csv/.jsonl with a
  ``path`` column; ``id``, ``label`` and any other columns optional) or a list file (one path per line). Every
  input gets a stable, unique id (``id`` column, else the path below the folder without suffix); a record
  carries the input's label as ``true_label``.
- Each record (a verdict, or an error record with the specific error) is one line written by a single
  ``write`` on an append-only file and flushed, so a SIGKILL loses at most the clips in flight and leaves
  no partial line; ``resume`` skips the ids already written (and drops a torn last line if one exists).
- Shards (``i/n``: every n-th input from the i-th) split the work over processes or GPUs; ``merge_results``
  joins their files and checks that every input appears exactly once.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from apallm.audio import DEFAULT_MAX_DURATION_S, load_audio
from apallm.detectors import add_arguments as add_detector_arguments
from apallm.detectors import auxiliary_from_args, explain_with, from_args
from apallm.errors import AudioError
from apallm.inputs import LIST_SUFFIXES, InputError, Item, collect_inputs  # noqa: F401  (re-exported)
from apallm.report import write_html_report

# ------------------------------------------------------------------------------------------------ inputs
# reading the inputs (folder, list file, table) and their ids: apallm.inputs


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n); ``"auto"`` takes RANK/WORLD_SIZE as set by accelerate or torchrun; None -> (0, 1)."""
    if text is None:
        return 0, 1
    if text == "auto":
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError as exc:
        raise ValueError(f"--shard takes i/n (e.g. 0/4) or auto, not {text!r}") from exc
    if not 0 <= i < n:
        raise ValueError(f"shard {i}/{n}: need 0 <= i < n")
    return i, n


def shard_items(items: Sequence[Item], index: int, count: int) -> list[Item]:
    return [item for k, item in enumerate(items) if k % count == index]


def shard_output(out: str | os.PathLike, index: int, count: int) -> Path:
    out = Path(out)
    return out if count == 1 else out.with_name(f"{out.stem}.shard{index}of{count}{out.suffix}")


# ------------------------------------------------------------------------------------------------ records

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
    record = {"id": item.id, "path": item.path, "error": type(exc).__name__,
              "message": exc.message if isinstance(exc, AudioError) else str(exc)}
    return _with_true_label(record, item)


def _with_true_label(record: dict, item: Item) -> dict:
    if item.label is not None:
        record["true_label"] = item.label
    return record


# ------------------------------------------------------------------------------------------------ running

def run_batch(items: Sequence[Item], detector, out: str | os.PathLike, *, resume: bool = False,
              batch_size: int = 8, include_evidence: bool = False, auxiliary: Sequence = (),
              max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
              progress: Callable[[int, int, int], None] | None = None) -> dict:
    """Explain every item into ``out``; return counts. ``auxiliary``: countermeasures whose scores go into each
    record's ``cm_scores``. ``progress(done, total, errors)`` after each batch."""
    out = Path(out)
    done_ids = set()
    if resume:
        done_ids = {r["id"] for r in read_results(out, repair=True)}
    elif out.exists() and out.stat().st_size > 0:
        raise FileExistsError(f"{out} exists: pass resume to continue it, or choose another output")
    todo = [item for item in items if item.id not in done_ids]
    writer = ResultWriter(out)
    counts = {"total": len(items), "skipped": len(items) - len(todo), "written": 0, "errors": 0}
    try:
        pending: list[tuple[Item, object]] = []

        def flush():
            if not pending:
                return
            for record in _explain(detector, pending, include_evidence, auxiliary):
                writer.write(record)
                counts["written"] += 1
                counts["errors"] += "error" in record
            pending.clear()

        for item in todo:
            try:
                pending.append((item, load_audio(item.path, clip_id=item.id, max_duration_s=max_duration_s)))
            except Exception as exc:  # a bad file is a record, never the end of the run
                writer.write(error_record(item, exc))
                counts["written"] += 1
                counts["errors"] += 1
            if len(pending) >= batch_size:
                flush()
            if progress:
                progress(counts["written"] + len(pending), len(todo), counts["errors"])
        flush()
        if progress:
            progress(counts["written"], len(todo), counts["errors"])
    finally:
        writer.close()
    return counts


def _explain(detector, pending, include_evidence: bool, auxiliary: Sequence = ()) -> list[dict]:
    items = [item for item, _ in pending]
    clips = [clip for _, clip in pending]
    try:
        verdicts = explain_with(detector, clips, auxiliary, include_evidence=include_evidence)
        return [verdict_record(i, v) for i, v in zip(items, verdicts, strict=True)]
    except Exception:
        # one clip broke the batch: explain one by one so only that clip gets an error record
        records = []
        for item, clip in pending:
            try:
                (verdict,) = explain_with(detector, [clip], auxiliary, include_evidence=include_evidence)
                records.append(verdict_record(item, verdict))
            except Exception as exc:
                records.append(error_record(item, exc))
        return records


class RichProgress:
    """A progress bar with clips/s and ETA on stderr (rich)."""

    def __init__(self, total: int, description: str = "explaining"):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]:.2f} clips/s"),
                                 TextColumn("errors {task.fields[errors]}"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=False)
        self.task = self.progress.add_task(description, total=total, rate=0.0, errors=0)
        self.start = time.perf_counter()

    def __enter__(self):
        self.progress.start()
        return self

    def __call__(self, done: int, total: int, errors: int) -> None:
        elapsed = max(1e-9, time.perf_counter() - self.start)
        self.progress.update(self.task, completed=done, total=total, rate=done / elapsed, errors=errors)

    def __exit__(self, *exc):
        self.progress.stop()


# ------------------------------------------------------------------------------------------------ merging

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


# ------------------------------------------------------------------------------------------------ reports

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


# ------------------------------------------------------------------------------------------------ CLI

def register(sub) -> None:
    p = sub.add_parser(
        "batch", help="explain a folder, manifest or list of clips into a resumable JSONL",
        description="Explain every input into one JSON record per line (a verdict, or an error record naming the "
                    "specific error: the run goes on past bad files). Records are appended whole, so a killed run "
                    "loses at most the clips in flight; --resume skips the ids already written. Exit status: 0 "
                    "when every input has a verdict, 1 when any input failed (its error record is in the output), "
                    "2 when the run could not start.")
    p.add_argument("input", help="a folder (recursive), a table (.tsv/.csv/.jsonl with a 'path' column; 'id', "
                                 "'label' and other columns optional) or a list file (.txt, one path a line)")
    p.add_argument("-o", "--out", required=True, type=Path, help="results JSONL")
    add_detector_arguments(p, generation=False)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--batch-size", type=int, default=8, help="clips per detector call (8)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="process every N-th input from the I-th (or 'auto' from RANK/WORLD_SIZE); the output "
                        "becomes <out>.shardIofN.jsonl; join the shards with apallm batch-merge")
    p.add_argument("--evidence", action="store_true", help="include the measured cues in each record")
    p.add_argument("--report", type=Path, help="also write a self-contained HTML report")
    p.add_argument("--csv", type=Path, help="also write a CSV table")
    p.add_argument("--no-thumbnails", action="store_true", help="HTML report without spectrogram thumbnails")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_cmd_batch)

    m = sub.add_parser("batch-merge", help="join shard result files; check every input is there exactly once",
                       description="Join the shard files of a batch run into one JSONL in input order.")
    m.add_argument("parts", nargs="+", type=Path, metavar="PART",
                   help="shard result files (<out>.shardIofN.jsonl from apallm batch --shard)")
    m.add_argument("-o", "--out", required=True, type=Path, help="merged results JSONL")
    m.add_argument("--input", help="the batch INPUT, to check that every input appears exactly once")
    m.add_argument("--report", type=Path, help="also write a self-contained HTML report")
    m.add_argument("--csv", type=Path, help="also write a CSV table")
    m.add_argument("--no-thumbnails", action="store_true", help="HTML report without spectrogram thumbnails")
    m.set_defaults(func=_cmd_merge)


def _cmd_batch(args) -> int:
    import sys

    try:
        index, count = parse_shard(args.shard)
        items = shard_items(collect_inputs(args.input), index, count)
        detector = from_args(args, batch_size=args.batch_size)
        auxiliary = auxiliary_from_args(args)
    except (OSError, ValueError, ImportError) as exc:
        print(f"apallm batch: {exc}", file=sys.stderr)
        return 2
    out = shard_output(args.out, index, count)
    try:
        if args.no_progress:
            counts = run_batch(items, detector, out, resume=args.resume, batch_size=args.batch_size,
                               include_evidence=args.evidence, auxiliary=auxiliary, max_duration_s=args.max_duration)
        else:
            with RichProgress(len(items)) as bar:
                counts = run_batch(items, detector, out, resume=args.resume, batch_size=args.batch_size,
                                   include_evidence=args.evidence, auxiliary=auxiliary,
                                   max_duration_s=args.max_duration, progress=bar)
    except FileExistsError as exc:
        print(f"apallm batch: {exc}", file=sys.stderr)
        return 2
    records = read_results(out)
    _reports(records, args)
    failed = sum("error" in r for r in records)  # with --resume, failures of the earlier run count too
    print(f"{counts['total']} inputs: {counts['written']} written now, {counts['skipped']} already done, "
          f"{failed} failed -> {out}")
    return 1 if failed else 0


def _reports(records, args) -> None:
    if args.report:
        write_html_report(records, args.report, thumbnails=not args.no_thumbnails)
    if args.csv:
        write_csv(records, args.csv)


def _cmd_merge(args) -> int:
    import sys

    try:
        expected = collect_inputs(args.input) if args.input else None
        result = merge_results(args.parts, args.out, expected)
    except (OSError, ValueError) as exc:
        print(f"apallm batch-merge: {exc}", file=sys.stderr)
        return 1
    _reports(read_results(args.out), args)
    print(f"{result['records']} records ({result['errors']} errors) -> {args.out}")
    return 0

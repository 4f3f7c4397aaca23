"""Running a batch: load each input, explain the clips in batches, append a record per input, show progress."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from apallm.audio import DEFAULT_MAX_DURATION_S, load_audio
from apallm.batch.results import ResultWriter, error_record, read_results, verdict_record
from apallm.detectors import explain_with
from apallm.inputs import Item


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

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

Modules: :mod:`~apallm.batch.shards` (splitting the inputs), :mod:`~apallm.batch.results` (the results file,
merging, CSV), :mod:`~apallm.batch.runner` (the explain loop and its progress bar). The HTML report is
:func:`apallm.report.write_html_report`; the command is :mod:`apallm.commands.batch`.
"""

from apallm.batch.results import (
    CSV_FIELDS,
    ResultWriter,
    error_record,
    merge_results,
    read_results,
    verdict_record,
    write_csv,
)
from apallm.batch.runner import RichProgress, run_batch
from apallm.batch.shards import parse_shard, shard_items, shard_output
from apallm.inputs import LIST_SUFFIXES, InputError, Item, collect_inputs
from apallm.report import write_html_report

__all__ = ["CSV_FIELDS", "LIST_SUFFIXES", "InputError", "Item", "ResultWriter", "RichProgress", "collect_inputs",
           "error_record", "merge_results", "parse_shard", "read_results", "run_batch", "shard_items",
           "shard_output", "verdict_record", "write_csv", "write_html_report"]

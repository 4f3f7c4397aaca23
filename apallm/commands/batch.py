"""``apallm batch`` and ``apallm batch-merge``: explain many clips into a resumable JSONL, join shard files."""

from __future__ import annotations

from pathlib import Path

from apallm.commands._common import EXIT_FAILED, EXIT_OK, fail


def register(sub) -> None:
    from apallm.detectors import add_arguments as add_detector_arguments

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
    from apallm.batch import RichProgress, parse_shard, read_results, run_batch, shard_items, shard_output
    from apallm.detectors import auxiliary_from_args, from_args
    from apallm.inputs import collect_inputs

    try:
        index, count = parse_shard(args.shard)
        items = shard_items(collect_inputs(args.input), index, count)
        detector = from_args(args, batch_size=args.batch_size)
        auxiliary = auxiliary_from_args(args)
    except (OSError, ValueError, ImportError) as exc:
        return fail("batch", exc)
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
        return fail("batch", exc)
    records = read_results(out)
    _reports(records, args)
    failed = sum("error" in r for r in records)  # with --resume, failures of the earlier run count too
    print(f"{counts['total']} inputs: {counts['written']} written now, {counts['skipped']} already done, "
          f"{failed} failed -> {out}")
    return EXIT_FAILED if failed else EXIT_OK


def _reports(records, args) -> None:
    from apallm.batch import write_csv
    from apallm.report import write_html_report

    if args.report:
        write_html_report(records, args.report, thumbnails=not args.no_thumbnails)
    if args.csv:
        write_csv(records, args.csv)


def _cmd_merge(args) -> int:
    from apallm.batch import merge_results, read_results
    from apallm.inputs import collect_inputs

    try:
        expected = collect_inputs(args.input) if args.input else None
        result = merge_results(args.parts, args.out, expected)
    except (OSError, ValueError) as exc:
        return fail("batch-merge", exc, EXIT_FAILED)
    _reports(read_results(args.out), args)
    print(f"{result['records']} records ({result['errors']} errors) -> {args.out}")
    return EXIT_OK

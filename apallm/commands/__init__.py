"""The command line, ``apallm <command> ...``: every parser and handler of the package, one module per command
family. Each module has ``register(subparsers)``, which adds its parser(s) and sets ``func`` (called with the
parsed arguments; it returns the exit status, see :mod:`apallm.commands._common`). The handlers are thin layers
over the library, which never imports this package."""

from __future__ import annotations

import argparse
import importlib
import logging

from apallm import __version__
from apallm.commands._common import EXIT_USAGE

#: the command modules, in the order their commands are listed by ``apallm --help``
COMMANDS: tuple[str, ...] = (
    "evidence",   # evidence
    "datasets",   # data build|stats|validate
    "eval",       # eval
    "cm",         # cm import-aasist|summary
    "train",      # train cm|sft|grpo
    "score",      # score
    "models",     # models prepare|list
    "explain",    # explain
    "adapter",    # adapter merge
    "batch",      # batch, batch-merge
    "annotate",   # annotate
    "demo",       # demo
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apallm",
        description="Explainable speech deepfake detection with audio LLMs that hear the audio and see its "
                    "structured spectrogram.",
    )
    parser.add_argument("--version", action="version", version=f"apallm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # warnings and errors of the library's loggers go to stderr; a host that configured logging keeps its own
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return int(args.func(args) or 0)

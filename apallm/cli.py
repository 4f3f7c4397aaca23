"""Command line: ``apallm <command> ...``. Each command is a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from apallm import __version__


def _evidence_parser(sub) -> None:
    p = sub.add_parser(
        "evidence",
        help="measure acoustic cues and render the structured spectrogram of audio clips",
        description="For each clip write <stem>.png (structured spectrogram) and <stem>.json (measured cues) "
                    "into --out, and print one line per clip. A clip that fails prints its specific error and "
                    "the others go on. Exit status: 0 when every clip succeeded, 1 when any failed.",
    )
    p.add_argument("clips", nargs="+", metavar="CLIP", help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument("--out", "-o", required=True, type=Path, help="output folder")
    p.add_argument("--kind", choices=("cqt", "mel", "stft"), default="cqt", help="spectrogram transform (cqt)")
    p.add_argument("--width", type=int, default=448, help="image width in px, snapped to a multiple of 28 (448)")
    p.add_argument("--height", type=int, default=448, help="image height in px, snapped to a multiple of 28 (448)")
    p.add_argument("--max-duration", type=float, default=600.0,
                   help="refuse clips longer than this many seconds (600; 0 = no limit)")
    p.add_argument("--window", type=float, default=30.0,
                   help="analysis window in seconds for long clips, as an ALLM hears them (30)")
    p.add_argument("--window-policy", choices=("sliding", "first", "center", "whole"), default="sliding",
                   help="long clips: 'sliding' writes <stem>_w00, _w01, ... covering the clip; 'first'/'center' "
                        "keep one window; 'whole' analyses the full clip at once (sliding)")
    p.add_argument("--mark-splices", action="store_true", help="draw splice candidates on the image")
    p.add_argument("--json", action="store_true", help="print one JSON record per clip instead of a text line")
    p.set_defaults(func=_cmd_evidence)


def _unique_stem(stem: str, used: set[str]) -> str:
    candidate, n = stem, 1
    while candidate in used:
        candidate = f"{stem}-{n}"
        n += 1
    used.add(candidate)
    return candidate


def _cmd_evidence(args) -> int:
    from apallm.audio import load_audio, split_windows
    from apallm.errors import AudioError
    from apallm.evidence import EvidenceConfig, SpectrogramConfig, extract_evidence

    try:
        config = EvidenceConfig(spectrogram=SpectrogramConfig(kind=args.kind, width=args.width, height=args.height),
                                mark_splices=args.mark_splices)
    except ValueError as exc:
        print(f"apallm evidence: {exc}", file=sys.stderr)
        return 2
    used: set[str] = set()
    failures = 0
    for path in args.clips:
        record: dict = {"path": path}
        try:
            clip = load_audio(path, max_duration_s=args.max_duration or None)
            windows = [clip] if args.window_policy == "whole" else split_windows(
                clip, window_s=args.window, policy=args.window_policy)
            stem = _unique_stem(Path(path).stem, used)
            outputs, notable, first = [], 0, None
            for i, win in enumerate(windows):
                ev = extract_evidence(win, config)
                first = first or ev
                name = stem if len(windows) == 1 else f"{stem}_w{i:02d}"
                png, js = ev.save(args.out, name)
                outputs.append({"png": str(png), "json": str(js), "offset_s": round(win.offset_s, 3)})
                notable += sum(c.status in ("low", "high") for c in ev.cues)
            record.update(ok=True, duration_s=round(clip.duration_s, 3), windows=len(windows), outputs=outputs,
                          flags=clip.flags, bandwidth_hz=first.cue("bandwidth_hz").value,
                          cues_out_of_range=notable)
            if args.json:
                print(json.dumps(record), flush=True)
            else:
                bw = record["bandwidth_hz"]
                bandwidth = "n/a" if bw is None else f"{bw:.0f} Hz"
                extra = f"; flags: {', '.join(clip.flags)}" if clip.flags else ""
                win = f" in {len(windows)} windows" if len(windows) > 1 else ""
                cues = f"{notable} cue{'' if notable == 1 else 's'} out of range"
                print(f"ok     {path} -> {outputs[0]['png']}{win} ({clip.duration_s:.2f} s; bandwidth {bandwidth}; "
                      f"{cues}{extra})", flush=True)
        except AudioError as exc:
            failures += 1
            record.update(ok=False, error=type(exc).__name__, kind=exc.kind, message=exc.message)
            if args.json:
                print(json.dumps(record), flush=True)
            else:
                print(f"error  {path}: {type(exc).__name__}: {exc.message}", flush=True)
        except Exception as exc:  # keep going: one clip must never end the run
            failures += 1
            record.update(ok=False, error=type(exc).__name__, kind="internal", message=str(exc))
            if args.json:
                print(json.dumps(record), flush=True)
            else:
                print(f"error  {path}: {type(exc).__name__}: {exc}", flush=True)
    return 1 if failures else 0


def train_subparsers(sub):
    """The ``apallm train <recipe>`` group, shared by every module that adds a training recipe."""
    if not hasattr(sub, "_apallm_train"):
        train = sub.add_parser("train", help="training recipes (sft, cm, ...)",
                               description="Train a detector from a YAML config: apallm train <recipe> --config X.yaml")
        sub._apallm_train = train.add_subparsers(dest="recipe", metavar="RECIPE", required=True)
    return sub._apallm_train


#: modules that add subcommands: each has ``register(subparsers)``, which adds its parser(s) and sets
#: ``func`` (called with the parsed args; returns the exit status). Imported only when the CLI starts.
COMMANDS: tuple[str, ...] = (
    "apallm.datasets.cli",
    "apallm.evaluation.cli",
    "apallm.cm.cli",
    "apallm.models_cli",
    "apallm.allm.cli",
    "apallm.batch",
    "apallm.annotate",
    "apallm.training.cli",
    "apallm.demo",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="apallm",
        description="Explainable speech deepfake detection with audio LLMs that hear the audio and see its "
                    "structured spectrogram.",
    )
    parser.add_argument("--version", action="version", version=f"apallm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _evidence_parser(sub)
    for module in COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

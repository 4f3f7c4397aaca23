"""Countermeasure commands: ``apallm cm import-aasist``, ``apallm cm summary`` and ``apallm score``.

Registered through :data:`apallm.cli.COMMANDS`; each handler returns the exit status.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

LABELS = ("bonafide", "spoof")


def register(sub) -> None:
    """Add the ``cm`` command group and the ``score`` command to the ``apallm`` subparsers."""
    cm = sub.add_parser("cm", help="classic countermeasures (AASIST, AASIST-L): import, inspect",
                        description="Classic countermeasures, the auxiliary detectors beside the audio LLM.")
    cm_sub = cm.add_subparsers(dest="cm_command", metavar="CM_COMMAND", required=True)

    p = cm_sub.add_parser(
        "import-aasist", help="convert a published AASIST checkpoint (.pth + .conf) into a package checkpoint",
        description="Read a published AASIST / AASIST-L state dict (torch.load with weights_only=True) and its "
                    ".conf, check that they fit, and write model.safetensors, config.json (architecture, "
                    "model_config, provenance with the MIT notice) and LICENSE into DIR.")
    p.add_argument("pth", type=Path, metavar="PTH", help="published state dict, e.g. AASIST.pth")
    p.add_argument("conf", type=Path, metavar="CONF", help="published configuration, e.g. AASIST.conf")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="output checkpoint folder")
    p.add_argument("--name", help="checkpoint name (default: aasist or aasist-l, from the configuration)")
    p.set_defaults(func=_cmd_import_aasist)

    p = cm_sub.add_parser(
        "summary", help="print a countermeasure's architecture and trainable-parameter count",
        description="Print the architecture of a named configuration (aasist, aasist-l) or of a checkpoint "
                    "folder; the last line is 'trainable_parameters: N'.")
    p.add_argument("name", metavar="NAME", help="aasist, aasist-l, or a checkpoint folder")
    p.set_defaults(func=_cmd_summary)

    from apallm.cli import train_subparsers

    t = train_subparsers(sub).add_parser(
        "cm", help="train a countermeasure (AASIST, AASIST-L, SSL-AASIST) from a YAML config",
        description="Train a countermeasure from a YAML config (see configs/cm/): manifest (JSON Lines with "
                    "path and label) -> random crops -> weighted cross-entropy -> Adam or SAM/ASAM, optional "
                    "RawBoost. Writes epoch-NNN/ package checkpoints, best/ (lowest dev EER) and history.jsonl "
                    "into output_dir.")
    t.add_argument("--config", required=True, type=Path)
    t.add_argument("--output-dir", default=None, help="override the config's output_dir")
    t.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    t.add_argument("--resume", action="store_true", help="continue from the newest epoch-NNN in output_dir")
    t.set_defaults(func=_cmd_train_cm)

    p = sub.add_parser(
        "score", help="score a folder or manifest of clips with a countermeasure and write an ASVspoof score file",
        description="Score every clip of INPUT with the countermeasure checkpoint --cm and write an ASVspoof "
                    "score TSV (header 'filename<TAB>cm-score'; the score is the bona fide logit, higher = "
                    "more bona fide). INPUT is read as apallm batch reads it: a folder (recursive), a list file, "
                    "or a table (.tsv/.csv/.jsonl) with 'path' (relative to the table's folder), optional "
                    "'label' (bonafide/spoof or a synonym) and optional 'id'; other columns are ignored. The "
                    "filename column is the clip's id: the 'id' column, else the path relative to the folder "
                    "without suffix (the ids apallm batch and apallm eval use). "
                    "Clips are decoded and resampled to 16 kHz mono; the first 64600 samples are scored, "
                    "repeat-padded when shorter. A row or clip that fails is reported on stderr and skipped. "
                    "When both labels occur, the EER is printed. Exit status: 0 when every entry was scored, "
                    "1 when any was skipped, 2 when the run could not start.")
    p.add_argument("manifest", type=Path, metavar="INPUT",
                   help="clips to score: a folder, a list file or a table (.tsv/.csv/.jsonl)")
    p.add_argument("--cm", required=True, type=Path, metavar="CKPT", help="countermeasure checkpoint folder")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="TSV", help="score file to write")
    p.add_argument("--batch-size", type=int, default=16, help="clips per forward pass (16)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--resampler", choices=("soxr", "torchaudio"), default="soxr",
                   help="resampler for clips not at 16 kHz (soxr; torchaudio reproduces the AASIST recipes)")
    p.set_defaults(func=_cmd_score)


def _cmd_import_aasist(args) -> int:
    from apallm.cm.checkpoint import CheckpointError, import_aasist, read_cm_config

    try:
        out = import_aasist(args.pth, args.conf, args.out, name=args.name)
    except CheckpointError as exc:
        print(f"apallm cm import-aasist: {exc}", file=sys.stderr)
        return 1
    config = read_cm_config(out)
    print(f"wrote {out} ({config['name']}: {config['architecture']}, "
          f"{config['trainable_parameters']} trainable parameters)")
    return 0


def _cmd_summary(args) -> int:
    from apallm.cm.aasist import count_trainable_parameters
    from apallm.cm.checkpoint import PRESETS, CheckpointError, build_preset, load_cm, read_cm_config

    try:
        if args.name in PRESETS:
            model = build_preset(args.name)
            title = f"{args.name}: {PRESETS[args.name][0]} architecture, published configuration"
        else:
            config = read_cm_config(args.name)
            model, title = load_cm(args.name), f"{config['name']}: {config['architecture']} checkpoint {args.name}"
    except CheckpointError as exc:
        print(f"apallm cm summary: {exc}", file=sys.stderr)
        return 2
    print(title)
    print(f"model_config: {json.dumps(model.config.to_dict())}")
    print(f"{'module':<22}{'type':<30}{'parameters':>12}")
    for name, param in model.named_parameters(recurse=False):
        print(f"{name:<22}{'Parameter ' + str(tuple(param.shape)):<30}{param.numel():>12,}")
    for name, child in model.named_children():
        print(f"{name:<22}{type(child).__name__:<30}{count_trainable_parameters(child):>12,}")
    print(f"trainable_parameters: {count_trainable_parameters(model)}")
    return 0


def _cmd_train_cm(args) -> int:
    from apallm.cm.train import CMTrainConfig, train_cm

    overrides: dict = {}
    if args.output_dir:
        overrides["output_dir"] = args.output_dir
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.resume:
        overrides["resume"] = True
    try:
        cfg = CMTrainConfig.from_yaml(args.config, overrides)
    except (OSError, ValueError, TypeError) as exc:
        print(f"apallm train cm: {exc}", file=sys.stderr)
        return 2
    best = train_cm(cfg)
    print(f"best checkpoint: {best}")
    return 0


def _cmd_score(args) -> int:
    import numpy as np
    import torch

    from apallm.audio import load_audio
    from apallm.cm.checkpoint import CheckpointError
    from apallm.cm.detector import CMDetector
    from apallm.errors import AudioError
    from apallm.inputs import collect_inputs
    from apallm.metrics import compute_eer

    if not args.manifest.exists():
        print(f"apallm score: {args.manifest}: no such manifest", file=sys.stderr)
        return 2
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    bad_rows: list[ValueError] = []
    try:
        items = collect_inputs(args.manifest, errors=bad_rows)
        detector = CMDetector(args.cm, batch_size=args.batch_size)
    except (CheckpointError, OSError, ValueError) as exc:
        print(f"apallm score: {exc}", file=sys.stderr)
        return 2

    skipped = scored = 0

    def skip(where: str, why: str) -> None:
        nonlocal skipped
        skipped += 1
        print(f"skip {where}: {why}", file=sys.stderr, flush=True)

    for error in bad_rows:  # rows that name no clip (no path, unknown label, a repeated id, broken JSON)
        skip(f"{error.source}:{error.line}", error.message)
    scores: dict[str, list[float]] = {label: [] for label in LABELS}
    pending: list[tuple[str, str | None, object]] = []

    def flush(out) -> None:
        nonlocal scored
        logits = detector.bonafide_logits([clip for _, _, clip in pending])
        for (key, label, _), value in zip(pending, logits, strict=True):
            out.write(f"{key}\t{np.format_float_positional(value, unique=True, trim='-')}\n")
            if label in scores:
                scores[label].append(float(value))
        scored += len(pending)
        pending.clear()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write("filename\tcm-score\n")
        for item in items:
            try:
                clip = load_audio(item.path, clip_id=item.id, resampler=args.resampler)
            except AudioError as exc:
                skip(f"{item.id} ({item.path})", f"{type(exc).__name__}: {exc.message}")
                continue
            pending.append((item.id, item.label, clip))
            if len(pending) == args.batch_size:
                flush(out)
        if pending:
            flush(out)

    summary = f"scored {scored} clip{'' if scored == 1 else 's'} with {detector.name}"
    summary += f", skipped {skipped}" if skipped else ""
    if all(scores.values()):
        eer, _ = compute_eer(scores["bonafide"], scores["spoof"])
        summary += (f"; EER {100 * eer:.1f} % ({len(scores['bonafide'])} bona fide, "
                    f"{len(scores['spoof'])} spoof)")
    print(f"{summary} -> {args.out}")
    return 1 if skipped else 0

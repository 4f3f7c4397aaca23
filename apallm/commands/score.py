"""``apallm score``: an ASVspoof score file from a countermeasure checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

from apallm.commands._common import EXIT_FAILED, EXIT_OK, fail


def register(sub) -> None:
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


def _cmd_score(args) -> int:
    import numpy as np
    import torch

    from apallm.audio import load_audio
    from apallm.cm.checkpoint import CheckpointError
    from apallm.cm.detector import CMDetector
    from apallm.datasets.manifest import LABELS
    from apallm.errors import AudioError, error_fields
    from apallm.inputs import collect_inputs
    from apallm.metrics import compute_eer

    if not args.manifest.exists():
        return fail("score", f"{args.manifest}: no such manifest")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    bad_rows: list[ValueError] = []
    try:
        items = collect_inputs(args.manifest, errors=bad_rows)
        detector = CMDetector(args.cm, batch_size=args.batch_size)
    except (CheckpointError, OSError, ValueError) as exc:
        return fail("score", exc)

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
                failure = error_fields(exc)
                skip(f"{item.id} ({item.path})", f"{failure['error']}: {failure['message']}")
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
    return EXIT_FAILED if skipped else EXIT_OK

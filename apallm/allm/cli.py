"""``apallm explain``, ``apallm train sft`` and ``apallm adapter merge``."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def register(sub) -> None:
    from apallm.cli import train_subparsers
    from apallm.detectors import add_arguments

    p = sub.add_parser(
        "explain", help="label, score and rationale for audio clips",
        description="Explain each clip: label (bonafide/spoof), score = P(spoof) and a rationale citing frequency- "
                    "and time-domain evidence. With --model/--adapter an ALLM answers; without them the small "
                    "detector shipped in the package scores the clip and the rationale is phrased from the measured "
                    "cues that support its label. A clip without enough speech gets 'no speech' and no score; a "
                    "score inside the uncertain band is shown as uncertain. One line (or JSON record) per clip; a "
                    "clip that fails prints its error and the others go on. Exit status 1 when any clip failed, 2 "
                    "when the detector could not be loaded.")
    p.add_argument("clips", nargs="+", metavar="CLIP")
    add_arguments(p)
    p.add_argument("--json", action="store_true", help="one JSON verdict per line")
    p.add_argument("--evidence", action="store_true", help="include the measured evidence in JSON verdicts")
    p.add_argument("--batch-size", type=int, default=4, help="clips per ALLM call (4)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="longest ALLM answer in tokens")
    p.set_defaults(func=_cmd_explain)

    t = train_subparsers(sub).add_parser(
        "sft", help="supervised fine-tuning of an ALLM (LoRA/DoRA/QLoRA, DeepSpeed ZeRO-2/3)",
        description="Fine-tune an ALLM detector from a YAML config (see configs/sft/).")
    t.add_argument("--config", required=True, type=Path)
    t.add_argument("--output-dir", default=None, help="override the config's output_dir")
    t.add_argument("--resume", nargs="?", const=True, default=None,
                   help="resume from the last checkpoint in output_dir, or from the given checkpoint folder")
    t.set_defaults(func=_cmd_train_sft)

    a = sub.add_parser("adapter", help="work with fine-tuned adapter folders")
    asub = a.add_subparsers(dest="adapter_command", metavar="ACTION", required=True)
    m = asub.add_parser("merge", help="merge a LoRA/DoRA adapter into its base model and save the full model",
                        description="Load the base model and the adapter, merge the adapter weights into the base "
                                    "and save a standalone model folder loadable with --model.")
    m.add_argument("adapter", help="adapter folder written by 'apallm train sft' or 'apallm train grpo'")
    m.add_argument("-o", "--output", required=True, type=Path, help="folder for the merged model")
    m.add_argument("--model", default=None, help="base model, if not the one recorded in the adapter folder")
    m.set_defaults(func=_cmd_merge)


def _cmd_explain(args) -> int:
    from apallm.audio import load_audio
    from apallm.detectors import auxiliary_from_args, explain_with, from_args
    from apallm.errors import AudioError

    try:
        detector = from_args(args, batch_size=args.batch_size)
        auxiliary = auxiliary_from_args(args)
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        print(f"apallm explain: cannot load the model: {exc}", file=sys.stderr)
        return 2
    failures = 0
    for path in args.clips:
        try:
            clip = load_audio(path, max_duration_s=args.max_duration)
            (verdict,) = explain_with(detector, [clip], auxiliary, include_evidence=args.evidence)
            if args.json:
                print(json.dumps({"path": path, **verdict.to_dict()}, ensure_ascii=False), flush=True)
            else:
                print(format_verdict(verdict, path), flush=True)
        except AudioError as exc:
            failures += 1
            _print_error(args, path, type(exc).__name__, exc.message)
        except Exception as exc:  # one clip never ends the run
            failures += 1
            _print_error(args, path, type(exc).__name__, str(exc))
    return 1 if failures else 0


def format_verdict(verdict, path: str) -> str:
    """The text form of a verdict: label (uncertain / no speech), score, path, flags, rationale, CM scores."""
    score = "  -  " if verdict.score is None else f"{verdict.score:.3f}"
    flags = f"  [{', '.join(verdict.flags)}]" if verdict.flags else ""
    lines = [f"{verdict.display_label:17s} {score}  {path}{flags}",
             f"  Frequency: {verdict.rationale.frequency}", f"  Time: {verdict.rationale.time}"]
    if verdict.cm_scores:
        lines.append("  Countermeasures: " + ", ".join(f"{k} {v:.3f}" for k, v in verdict.cm_scores.items()))
    return "\n".join(lines)


def _print_error(args, path: str, error: str, message: str) -> None:
    if args.json:
        print(json.dumps({"path": path, "error": error, "message": message}), flush=True)
    else:
        print(f"error    {path}: {error}: {message}", flush=True)


def _cmd_train_sft(args) -> int:
    from apallm.training.sft import SFTConfig, train_sft

    overrides = {}
    if args.output_dir:
        overrides["output_dir"] = args.output_dir
    if args.resume is not None:
        overrides["resume_from_checkpoint"] = args.resume
    cfg = SFTConfig.from_yaml(args.config, overrides)
    out = train_sft(cfg)
    print(f"adapter folder: {out}")
    return 0


def _cmd_merge(args) -> int:
    from apallm.allm import load_allm

    detector = load_allm(args.model, adapter=args.adapter, device="cpu")
    merged = detector.model.merge_and_unload()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    detector.save_extra(out)
    with detector.published_layout(merged) as plain:
        plain.save_pretrained(str(out), safe_serialization=True)
    detector.processor.save_pretrained(str(out))
    detector.save_config(out, merged_from=str(Path(args.adapter).resolve()))
    print(f"merged model: {out}")
    return 0

"""``apallm explain``, ``apallm train sft`` and ``apallm adapter merge``."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def register(sub) -> None:
    from apallm.cli import train_subparsers

    p = sub.add_parser(
        "explain", help="label, score and rationale for audio clips",
        description="Explain each clip: label (bonafide/spoof), score = P(spoof) and a rationale citing frequency- "
                    "and time-domain evidence. With --model/--adapter an ALLM answers; without them the small "
                    "detector shipped in the package scores the clip and the rationale is phrased from the measured "
                    "cues that support its label. One line (or JSON record) per clip; a clip that fails prints its "
                    "error and the others go on. Exit status 1 when any clip failed.")
    p.add_argument("clips", nargs="+", metavar="CLIP")
    p.add_argument("--model", help="hub id (Qwen/Qwen2.5-Omni-3B), local checkpoint, or tiny-qwen2_5-omni")
    p.add_argument("--adapter", help="folder written by 'apallm train sft' (base model read from it unless --model)")
    p.add_argument("--detector", default="default",
                   help="without --model/--adapter: the detector to use (registered name or 'module:factory'; "
                        "default: the one shipped in the package)")
    p.add_argument("--inputs", default=None,
                   help="what the model is given: audio, audio+spectrogram (default), ...+cues, ...+cm")
    p.add_argument("--json", action="store_true", help="one JSON verdict per line")
    p.add_argument("--evidence", action="store_true", help="include the measured evidence in JSON verdicts")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--quantization", choices=("4bit",), default=None, help="load the base in 4-bit (GPU)")
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
    m.add_argument("adapter")
    m.add_argument("-o", "--output", required=True, type=Path)
    m.add_argument("--model", default=None, help="base model, if not the one recorded in the adapter folder")
    m.set_defaults(func=_cmd_merge)


def _load(args):
    from apallm.allm import PromptOptions, load_allm

    kwargs = {"batch_size": args.batch_size}
    if args.inputs:
        kwargs["options"] = PromptOptions.parse(args.inputs)
    if args.max_new_tokens:
        kwargs["max_new_tokens"] = args.max_new_tokens
    return load_allm(args.model, adapter=args.adapter, device=args.device, quantization=args.quantization, **kwargs)


def _cmd_explain(args) -> int:
    from apallm.audio import load_audio
    from apallm.errors import AudioError

    try:
        if args.model or args.adapter:
            detector = _load(args)
        else:
            from apallm.detectors import load_detector

            detector = load_detector(args.detector)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"apallm explain: cannot load the model: {exc}", file=sys.stderr)
        return 2
    failures = 0
    for path in args.clips:
        try:
            clip = load_audio(path)
            (verdict,) = detector.explain([clip], include_evidence=args.evidence)
            record = {"path": path, **verdict.to_dict()}
            if args.json:
                print(json.dumps(record, ensure_ascii=False), flush=True)
            else:
                print(f"{verdict.label:8s} {verdict.score:.3f}  {path}\n  Frequency: {verdict.rationale.frequency}"
                      f"\n  Time: {verdict.rationale.time}", flush=True)
        except AudioError as exc:
            failures += 1
            _print_error(args, path, type(exc).__name__, exc.message)
        except Exception as exc:  # one clip never ends the run
            failures += 1
            _print_error(args, path, type(exc).__name__, str(exc))
    return 1 if failures else 0


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

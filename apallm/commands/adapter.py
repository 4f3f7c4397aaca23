"""``apallm adapter merge``: a fine-tuned LoRA/DoRA adapter merged into its base model."""

from __future__ import annotations

from pathlib import Path

from apallm.commands._common import EXIT_OK


def register(sub) -> None:
    a = sub.add_parser("adapter", help="work with fine-tuned adapter folders")
    asub = a.add_subparsers(dest="adapter_command", metavar="ACTION", required=True)
    m = asub.add_parser("merge", help="merge a LoRA/DoRA adapter into its base model and save the full model",
                        description="Load the base model and the adapter, merge the adapter weights into the base "
                                    "and save a standalone model folder loadable with --model.")
    m.add_argument("adapter", help="adapter folder written by 'apallm train sft' or 'apallm train grpo'")
    m.add_argument("-o", "--output", required=True, type=Path, help="folder for the merged model")
    m.add_argument("--model", default=None, help="base model, if not the one recorded in the adapter folder")
    m.set_defaults(func=_cmd_merge)


def _cmd_merge(args) -> int:
    from apallm.allm.merge import merge_adapter

    out = merge_adapter(args.adapter, args.output, model=args.model)
    print(f"merged model: {out}")
    return EXIT_OK

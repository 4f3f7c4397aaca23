"""``apallm train cm|sft|grpo``: train a detector from a YAML config.

Each recipe's handler gathers its overrides, and :func:`_train` loads the config and runs the recipe: a config
that cannot be read or holds a bad value, or a missing input file, is ``apallm train <recipe>: <message>`` and
exit status 2.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from apallm.commands._common import EXIT_OK, fail


def register(sub) -> None:
    train = sub.add_parser("train", help="training recipes (sft, cm, ...)",
                           description="Train a detector from a YAML config: apallm train <recipe> --config X.yaml")
    recipes = train.add_subparsers(dest="recipe", metavar="RECIPE", required=True)

    t = recipes.add_parser(
        "cm", help="train a countermeasure (AASIST, AASIST-L, SSL-AASIST) from a YAML config",
        description="Train a countermeasure from a YAML config (see configs/cm/): manifest (JSON Lines with "
                    "path and label) -> random crops -> weighted cross-entropy -> Adam or SAM/ASAM, optional "
                    "RawBoost. Writes epoch-NNN/ package checkpoints, best/ (lowest dev EER) and history.jsonl "
                    "into output_dir.")
    t.add_argument("--config", required=True, type=Path)
    t.add_argument("--output-dir", default=None, help="override the config's output_dir")
    t.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    t.add_argument("--resume", action="store_true", help="continue from the newest epoch-NNN in output_dir")
    _add_set(t)
    t.set_defaults(func=_cmd_cm)

    t = recipes.add_parser(
        "sft", help="supervised fine-tuning of an ALLM (LoRA/DoRA/QLoRA, DeepSpeed ZeRO-2/3)",
        description="Fine-tune an ALLM detector from a YAML config (see configs/sft/).")
    t.add_argument("--config", required=True, type=Path)
    t.add_argument("--output-dir", default=None, help="override the config's output_dir")
    t.add_argument("--resume", nargs="?", const=True, default=None,
                   help="resume from the last checkpoint in output_dir, or from the given checkpoint folder")
    _add_set(t)
    t.set_defaults(func=_cmd_sft)

    t = recipes.add_parser(
        "grpo", help="GRPO from an SFT adapter: sampled answers rewarded for label, format and grounding",
        description="Go on training an SFT adapter with GRPO (see configs/grpo/): K sampled answers per clip, "
                    "rewarded for the correct label, a valid answer format and rationale claims grounded in the "
                    "clip's measured cues; group-normalised advantages; DeepSpeed ZeRO-2. Writes an adapter "
                    "folder that apallm explain/batch --adapter take.")
    t.add_argument("--config", required=True, type=Path)
    t.add_argument("--output-dir", default=None, help="override the config's output_dir")
    t.add_argument("--adapter", default=None, help="override the config's SFT adapter folder")
    t.add_argument("--resume", nargs="?", const=True, default=None,
                   help="resume from the last checkpoint in output_dir, or from the given checkpoint folder")
    _add_set(t)
    t.set_defaults(func=_cmd_grpo)


def _add_set(parser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (YAML value; dotted for a nested key such as "
                             "training.max_steps=2 or peft.r=8); repeatable; the flags above win over it")


def _cmd_cm(args) -> int:
    from apallm.cm.train import CMTrainConfig, train_cm

    return _train("cm", lambda: CMTrainConfig.from_yaml(args.config, _overrides(
        args.set, output_dir=args.output_dir or None, epochs=args.epochs, resume=args.resume or None)),
        train_cm, "best checkpoint")


def _cmd_sft(args) -> int:
    from apallm.training.sft import SFTConfig, train_sft

    return _train("sft", lambda: SFTConfig.from_yaml(args.config, _overrides(
        args.set, output_dir=args.output_dir or None, resume_from_checkpoint=args.resume)),
        train_sft, "adapter folder")


def _cmd_grpo(args) -> int:
    from apallm.training.grpo import GRPOConfig, train_grpo

    return _train("grpo", lambda: GRPOConfig.from_yaml(args.config, _overrides(
        args.set, output_dir=args.output_dir, adapter=args.adapter, resume_from_checkpoint=args.resume)),
        train_grpo, "adapter folder")


def _overrides(items: list[str], **flags) -> dict:
    """``--set KEY=VALUE`` overrides (dotted keys, YAML values), then the recipe's own flags that were given."""
    from apallm.config import parse_override

    out = dict(parse_override(item) for item in items)
    out.update({key: value for key, value in flags.items() if value is not None})
    return out


def _train(recipe: str, load_config: Callable, train: Callable, result: str) -> int:
    """Load the config, train, print ``<result>: <what train returned>``."""
    import yaml

    try:
        config = load_config()
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        return fail(f"train {recipe}", exc)
    try:
        out = train(config)
    except FileNotFoundError as exc:
        return fail(f"train {recipe}", exc)
    print(f"{result}: {out}")
    return EXIT_OK

"""``apallm train grpo``: GRPO from an SFT adapter (see :mod:`apallm.training.grpo`)."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    from apallm.cli import train_subparsers

    t = train_subparsers(sub).add_parser(
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
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (YAML value; KEY.SUB for one key of a mapping such as "
                        "training.max_steps=2); repeatable")
    t.set_defaults(func=_cmd_train_grpo)


def parse_overrides(items: list[str]) -> dict:
    """``["a=1", "training.max_steps=2"]`` -> ``{"a": 1, "training": {"max_steps": 2}}`` (values read as YAML)."""
    import yaml

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set takes KEY=VALUE, not {item!r}")
        parts = key.strip().split(".")
        if len(parts) > 2:
            raise ValueError(f"--set {key}: at most one level of nesting (KEY or KEY.SUB)")
        parsed = yaml.safe_load(value) if value.strip() else None
        if len(parts) == 1:
            out[parts[0]] = parsed
        else:
            out.setdefault(parts[0], {})[parts[1]] = parsed
    return out


def _cmd_train_grpo(args) -> int:
    import yaml

    from apallm.training.grpo import GRPOConfig, train_grpo

    try:
        overrides = parse_overrides(args.set)
        data = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
        for key, value in list(overrides.items()):
            if isinstance(value, dict) and isinstance(data.get(key), dict):  # KEY.SUB: merge into the mapping
                overrides[key] = {**data[key], **value}
        for key, value in (("output_dir", args.output_dir), ("adapter", args.adapter),
                           ("resume_from_checkpoint", args.resume)):
            if value is not None:
                overrides[key] = value
        cfg = GRPOConfig.from_yaml(args.config, overrides)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"apallm train grpo: {exc}", file=sys.stderr)
        return 2
    try:
        out = train_grpo(cfg)
    except FileNotFoundError as exc:
        print(f"apallm train grpo: {exc}", file=sys.stderr)
        return 2
    print(f"adapter folder: {out}")
    return 0

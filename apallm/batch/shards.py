"""Shards (``i/n``: every n-th input from the i-th) split a batch run over processes or GPUs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from apallm.inputs import Item


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n); ``"auto"`` takes RANK/WORLD_SIZE as set by accelerate or torchrun; None -> (0, 1)."""
    if text is None:
        return 0, 1
    if text == "auto":
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError as exc:
        raise ValueError(f"--shard takes i/n (e.g. 0/4) or auto, not {text!r}") from exc
    if not 0 <= i < n:
        raise ValueError(f"shard {i}/{n}: need 0 <= i < n")
    return i, n


def shard_items(items: Sequence[Item], index: int, count: int) -> list[Item]:
    return [item for k, item in enumerate(items) if k % count == index]


def shard_output(out: str | os.PathLike, index: int, count: int) -> Path:
    out = Path(out)
    return out if count == 1 else out.with_name(f"{out.stem}.shard{index}of{count}{out.suffix}")

"""Reading ../shared/data/realworld-dev: the manifest, decoded clips, and a clean skip when it is absent."""

from __future__ import annotations

import csv
import os
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "realworld-dev"


def realworld_root(root: str | os.PathLike | None = None) -> Path | None:
    """The realworld-dev folder (argument, $APALLM_REALWORLD_DEV, or ../shared/data/realworld-dev); None if absent."""
    path = Path(root or os.environ.get("APALLM_REALWORLD_DEV") or DEFAULT_ROOT)
    return path if (path / "manifest.tsv").is_file() else None


def read_manifest(root: Path) -> list[dict]:
    with open(root / "manifest.tsv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    for row in rows:
        row["abspath"] = str(root / row["path"])
    return rows

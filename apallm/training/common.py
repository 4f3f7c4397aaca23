"""What the training recipes (SFT, GRPO, countermeasure) share: the toy data a tiny config trains on, and the
process facts of a distributed run."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["ToyData", "ensure_toy_data", "is_main_process", "single_process_distributed_env"]


@dataclass
class ToyData:
    """A config's ``toy_data`` section: :func:`apallm.synth.make_toy_set`'s two-class set (full-band vs
    band-limited speech-like audio) of ``n`` clips of ``seconds`` each, drawn from ``seed``."""

    n: int = 16
    seed: int = 0
    seconds: float = 2.0
    cutoff_hz: float = 3000.0


def ensure_toy_data(toy_data: ToyData | None, manifests: Sequence[str | os.PathLike | None], *,
                    targets: bool) -> None:
    """Write the toy set at every manifest of ``manifests`` that does not exist yet (the i-th drawn from
    ``toy_data.seed + i``, so a dev set differs from its training set); nothing when ``toy_data`` is ``None``.
    ``targets``: rows carry an answer text (for the ALLM recipes)."""
    if toy_data is None:
        return
    from apallm.synth import make_toy_set

    for offset, manifest in enumerate(manifests):
        if manifest is None or Path(manifest).exists():
            continue
        made = make_toy_set(Path(manifest).parent, n=toy_data.n, seed=toy_data.seed + offset,
                            seconds=toy_data.seconds, cutoff_hz=toy_data.cutoff_hz, targets=targets)
        if made.resolve() != Path(manifest).resolve():
            made.rename(manifest)
        log.info("generated toy data: %s", manifest)


def is_main_process() -> bool:
    """Rank 0 of a distributed run (or the only process): the one that writes shared files."""
    return int(os.environ.get("RANK", "0")) == 0


def single_process_distributed_env() -> None:
    """The environment of a one-process "distributed" run: DeepSpeed wants a process group even for one
    process (CPU: gloo). Values already set (by ``accelerate launch``, ``torchrun``) are kept."""
    for key, value in (("MASTER_ADDR", "127.0.0.1"), ("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):
        os.environ.setdefault(key, value)
    if "MASTER_PORT" not in os.environ:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])

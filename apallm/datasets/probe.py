"""Duration and sampling rate from the audio header (soundfile.info: no decoding), for many files at once."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import soundfile as sf

from apallm.datasets.manifest import ManifestEntry

#: a header claiming more than this many seconds is treated as unknown length (some containers report 2**63-1)
_MAX_PLAUSIBLE_S = 10 * 24 * 3600.0


def probe_audio(path: str | os.PathLike) -> tuple[float | None, int | None]:
    """``(duration_s, sample_rate)`` read from the file's header, or ``(None, None)`` when the file is
    missing or its header cannot be read (``apallm data validate`` reports why)."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError):  # sf.LibsndfileError is a RuntimeError
        return None, None
    if info.samplerate <= 0 or info.frames <= 0 or info.frames / info.samplerate > _MAX_PLAUSIBLE_S:
        return None, int(info.samplerate) if info.samplerate > 0 else None
    return round(info.frames / info.samplerate, 6), int(info.samplerate)


def probe_entries(entries: Sequence[ManifestEntry], workers: int = 8) -> list[ManifestEntry]:
    """Copies of ``entries`` with ``duration`` and ``sample_rate`` filled from each file's header.

    Entries whose file is missing or unreadable keep their values (null from the adapters). Header reads
    are I/O-bound, so ``workers`` threads overlap them.
    """
    def probe(entry: ManifestEntry) -> ManifestEntry:
        duration, rate = probe_audio(entry.path)
        if duration is None and rate is None:
            return entry
        return dataclasses.replace(entry, duration=duration if duration is not None else entry.duration,
                                   sample_rate=rate)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(probe, entries))

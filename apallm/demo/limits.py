"""What one request may ask of the demo's server, and the uploaded clip checked against it."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from apallm.audio import Clip


@dataclass(frozen=True)
class DemoLimits:
    """What one request may ask of the server.

    ``max_upload_mb``: largest upload (gradio refuses bigger files before they reach the app).
    ``max_duration_s``: longest clip analysed. ``concurrency``: requests that run at once (the rest queue).
    ``queue_size``: requests that may wait; more are refused with "queue is full".
    ``chat_max_new_tokens``: longest ALLM chat answer. ``cache_minutes``: uploads and rendered images in
    gradio's cache are deleted this long after they were made, and all of them when the server stops.
    """

    max_upload_mb: float = 20.0
    max_duration_s: float = 60.0
    concurrency: int = 1
    queue_size: int = 16
    chat_max_new_tokens: int = 200
    cache_minutes: float = 60.0

    def __post_init__(self):
        for name in ("max_upload_mb", "max_duration_s", "cache_minutes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("concurrency", "queue_size", "chat_max_new_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class DemoError(Exception):
    """A request the demo refuses, with the message the user sees."""


def load_clip(path: str | os.PathLike, limits: DemoLimits) -> Clip:
    """The uploaded or recorded file as a clip, or a :class:`DemoError` that says what is wrong with it."""
    from apallm.audio import load_audio
    from apallm.errors import AudioError

    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DemoError(f"{name}: the upload is gone ({exc.strerror}); upload it again") from exc
    if size > limits.max_upload_bytes:
        raise DemoError(f"{name} is {size / 2**20:.1f} MB; this demo takes files up to {limits.max_upload_mb:g} MB "
                        f"(--max-upload-mb)")
    try:
        return load_audio(path, max_duration_s=limits.max_duration_s, clip_id=name)
    except AudioError as exc:
        message = exc.message
        if exc.kind == "too_long":
            message = f"{message.split(' (raise')[0]} (--max-duration): cut it and try again"
        raise DemoError(f"{name}: {message}") from exc

"""Exceptions for bad audio input: one type per failure, all under :class:`AudioError`.

Every error carries the offending source (a path, or a short description of bytes/arrays)
so a batch can report which input failed and go on with the rest.
"""

from __future__ import annotations


class AudioError(ValueError):
    """Base class: this input cannot be analysed. ``source`` names the input."""

    kind = "audio_error"

    def __init__(self, message: str, source: str | None = None):
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}" if source else message)


class UnreadableAudioError(AudioError):
    """The input claims to be audio (or was asked to be) but cannot be decoded: corrupt, truncated, missing."""

    kind = "unreadable"


class UnsupportedFormatError(AudioError):
    """The input is not in a format we can decode (e.g. an image, text, or a codec without a decoder)."""

    kind = "unsupported_format"


class EmptyAudioError(AudioError):
    """The input holds no samples (zero bytes, zero frames, or an empty array)."""

    kind = "empty"


class NonFiniteAudioError(AudioError):
    """The samples contain NaN or infinity."""

    kind = "non_finite"


class AudioTooLongError(AudioError):
    """The audio is longer than the configured hard limit."""

    kind = "too_long"


class AudioTooShortError(AudioError):
    """The audio is too short for its acoustic evidence to mean anything."""

    kind = "too_short"


def error_fields(exc: BaseException) -> dict[str, str]:
    """How a failed input is reported: ``{"error": type name, "kind", "message"}``. An :class:`AudioError` gives its
    own kind and message; any other exception is kind ``internal`` with ``str(exc)`` as the message."""
    if isinstance(exc, AudioError):
        return {"error": type(exc).__name__, "kind": exc.kind, "message": exc.message}
    return {"error": type(exc).__name__, "kind": "internal", "message": str(exc)}

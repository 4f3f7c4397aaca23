"""apallm: explainable speech deepfake detection with audio large language models.

The spine every detector shares: audio intake (:func:`load_audio`), acoustic evidence
(:func:`extract_evidence`: a structured spectrogram image plus measured cues) and the
:class:`Verdict` a detector answers with.
"""

__version__ = "0.1.0"

from apallm.audio import Clip, load_audio, split_windows  # noqa: E402
from apallm.errors import (  # noqa: E402
    AudioError,
    AudioTooLongError,
    AudioTooShortError,
    EmptyAudioError,
    NonFiniteAudioError,
    UnreadableAudioError,
    UnsupportedFormatError,
)
from apallm.evidence import Evidence, EvidenceConfig, extract_evidence  # noqa: E402
from apallm.verdict import ParsedAnswer, Rationale, Verdict, format_answer, parse_answer  # noqa: E402

__all__ = [
    "__version__",
    "AudioError",
    "AudioTooLongError",
    "AudioTooShortError",
    "EmptyAudioError",
    "NonFiniteAudioError",
    "UnreadableAudioError",
    "UnsupportedFormatError",
    "Clip",
    "load_audio",
    "split_windows",
    "Evidence",
    "EvidenceConfig",
    "extract_evidence",
    "ParsedAnswer",
    "Rationale",
    "Verdict",
    "format_answer",
    "parse_answer",
]

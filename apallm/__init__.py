"""apallm: explainable speech deepfake detection with audio large language models.

The spine every detector shares: audio intake (:func:`load_audio`), acoustic evidence
(:func:`extract_evidence`: a structured spectrogram image plus measured cues) and the
:class:`Verdict` a detector answers with.
"""

__version__ = "0.1.0"

from apallm import _torchaudio_guard  # noqa: E402
from apallm._lazy import lazy_exports  # noqa: E402  (after __version__, which the build reads)

_torchaudio_guard.install()

__getattr__, __dir__, _names = lazy_exports(__name__, {
    "AudioError": "apallm.errors",
    "AudioTooLongError": "apallm.errors",
    "AudioTooShortError": "apallm.errors",
    "EmptyAudioError": "apallm.errors",
    "NonFiniteAudioError": "apallm.errors",
    "UnreadableAudioError": "apallm.errors",
    "UnsupportedFormatError": "apallm.errors",
    "Clip": "apallm.audio",
    "load_audio": "apallm.audio",
    "split_windows": "apallm.audio",
    "Evidence": "apallm.evidence",
    "EvidenceConfig": "apallm.evidence",
    "extract_evidence": "apallm.evidence",
    "ParsedAnswer": "apallm.verdict",
    "Rationale": "apallm.verdict",
    "Verdict": "apallm.verdict",
    "format_answer": "apallm.verdict",
    "parse_answer": "apallm.verdict",
})
__all__ = ["__version__", *_names]

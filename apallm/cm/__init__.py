"""Classic countermeasures (CMs): auxiliary spoofing detectors beside the audio LLM.

- :mod:`apallm.cm.aasist`: AASIST and AASIST-L on the raw 16 kHz waveform;
- :mod:`apallm.cm.checkpoint`: the package checkpoint format (safetensors + config.json), :func:`load_cm`,
  and :func:`import_aasist` for the published weights;
- :mod:`apallm.cm.detector`: :class:`CMDetector`, registered as the detectors ``aasist`` and ``aasist-l``;
- :mod:`apallm.cm.rawboost`: RawBoost data augmentation;
- :mod:`apallm.cm.ssl`: an SSL front-end (wav2vec 2.0 / XLS-R, HuBERT, WavLM) with the AASIST back-end;
- :mod:`apallm.cm.wpt`: wavelet prompt tuning of a frozen SSL encoder.

The SSL and WPT names are exported lazily (they import transformers on first use).

Importing this package registers the detectors with :func:`apallm.detectors.load_detector`.
"""

from apallm.cm.aasist import AASIST, AASIST_BASE, AASIST_L, AASISTConfig, count_trainable_parameters
from apallm.cm.checkpoint import (
    CheckpointError,
    build_cm,
    build_preset,
    import_aasist,
    load_cm,
    load_published_aasist,
    read_cm_config,
    save_cm,
)
from apallm.cm.detector import CMDetector, fixed_crop

#: lazily exported name -> module
_LAZY = {
    "SSLAASIST": "apallm.cm.ssl",
    "SSLAASISTConfig": "apallm.cm.ssl",
    "build_ssl_aasist": "apallm.cm.ssl",
    "WPTConfig": "apallm.cm.wpt",
    "WPTSSLAASIST": "apallm.cm.wpt",
    "trainable_parameter_ratio": "apallm.cm.wpt",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AASIST",
    "AASIST_BASE",
    "AASIST_L",
    "AASISTConfig",
    "CMDetector",
    "CheckpointError",
    "SSLAASIST",
    "SSLAASISTConfig",
    "WPTConfig",
    "WPTSSLAASIST",
    "build_cm",
    "build_preset",
    "build_ssl_aasist",
    "count_trainable_parameters",
    "fixed_crop",
    "import_aasist",
    "load_cm",
    "load_published_aasist",
    "read_cm_config",
    "save_cm",
    "trainable_parameter_ratio",
]

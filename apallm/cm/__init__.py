"""Classic countermeasures (CMs): auxiliary spoofing detectors beside the audio LLM.

- :mod:`apallm.cm.aasist`: AASIST and AASIST-L on the raw 16 kHz waveform;
- :mod:`apallm.cm.checkpoint`: the package checkpoint format (safetensors + config.json), :func:`load_cm`,
  and :func:`import_aasist` for the published weights;
- :mod:`apallm.cm.detector`: :class:`CMDetector`, registered as the detectors ``aasist`` and ``aasist-l``;
- :mod:`apallm.cm.rawboost`: RawBoost data augmentation;
- :mod:`apallm.cm.ssl`: an SSL front-end (wav2vec 2.0 / XLS-R, HuBERT, WavLM) with the AASIST back-end;
- :mod:`apallm.cm.wpt`: wavelet prompt tuning of a frozen SSL encoder.

Every name is exported lazily: torch and transformers load on first use.

Importing :mod:`apallm.cm.detector` registers the detectors with :func:`apallm.detectors.load_detector`.
"""

from apallm._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "AASIST": "apallm.cm.aasist",
    "AASIST_BASE": "apallm.cm.aasist",
    "AASIST_L": "apallm.cm.aasist",
    "AASISTConfig": "apallm.cm.aasist",
    "count_trainable_parameters": "apallm.cm.aasist",
    "CheckpointError": "apallm.cm.checkpoint",
    "build_cm": "apallm.cm.checkpoint",
    "build_preset": "apallm.cm.checkpoint",
    "import_aasist": "apallm.cm.checkpoint",
    "load_cm": "apallm.cm.checkpoint",
    "load_published_aasist": "apallm.cm.checkpoint",
    "read_cm_config": "apallm.cm.checkpoint",
    "save_cm": "apallm.cm.checkpoint",
    "CMDetector": "apallm.cm.detector",
    "fixed_crop": "apallm.cm.detector",
    "SSLAASIST": "apallm.cm.ssl",
    "SSLAASISTConfig": "apallm.cm.ssl",
    "build_ssl_aasist": "apallm.cm.ssl",
    "WPTConfig": "apallm.cm.wpt",
    "WPTSSLAASIST": "apallm.cm.wpt",
    "trainable_parameter_ratio": "apallm.cm.wpt",
})

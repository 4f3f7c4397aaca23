"""Classic countermeasures (CMs): auxiliary spoofing detectors beside the audio LLM.

- :mod:`apallm.cm.aasist`: AASIST and AASIST-L on the raw 16 kHz waveform;
- :mod:`apallm.cm.checkpoint`: the package checkpoint format (safetensors + config.json), :func:`load_cm`,
  and :func:`import_aasist` for the published weights;
- :mod:`apallm.cm.detector`: :class:`CMDetector`, registered as the detectors ``aasist`` and ``aasist-l``;
- :mod:`apallm.cm.rawboost`: RawBoost data augmentation.

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

__all__ = [
    "AASIST",
    "AASIST_BASE",
    "AASIST_L",
    "AASISTConfig",
    "CMDetector",
    "CheckpointError",
    "build_cm",
    "build_preset",
    "count_trainable_parameters",
    "fixed_crop",
    "import_aasist",
    "load_cm",
    "load_published_aasist",
    "read_cm_config",
    "save_cm",
]

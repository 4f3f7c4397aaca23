"""The countermeasure a config's ``model`` section describes."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from apallm.cm.checkpoint import PRESETS, build_cm
from apallm.cm.train.config import ModelSpec
from apallm.config import config_from_dict


def build_model(spec: ModelSpec | Mapping, crop_samples: int | None = None) -> nn.Module:
    """The model of the config's ``model`` section (fresh, or with pretrained SSL weights);
    ``crop_samples`` overrides its ``nb_samp``."""
    spec = config_from_dict(ModelSpec, spec)
    overrides = dict(spec.model_config)
    if crop_samples:
        overrides["nb_samp"] = int(crop_samples)
    if spec.architecture == "AASIST":
        base = PRESETS[spec.preset][1].to_dict() if spec.preset else {}
        return build_cm("AASIST", {**base, **overrides})
    if spec.architecture in ("SSL-AASIST", "WPT-SSL-AASIST"):
        from apallm.cm.ssl import SSLAASIST, build_ssl_aasist

        model_class = SSLAASIST
        if spec.architecture == "WPT-SSL-AASIST":
            from apallm.cm.wpt import WPTSSLAASIST as model_class
        return build_ssl_aasist(spec.pretrained_ssl, model_class=model_class, **overrides)
    return build_cm(spec.architecture, overrides)

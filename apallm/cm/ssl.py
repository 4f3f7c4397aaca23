"""SSL front-end + AASIST back-end: a self-supervised speech encoder (wav2vec 2.0 / XLS-R, HuBERT, WavLM)
feeding the graph-attention back-end of AASIST.

The design follows Tak, Todisco, Wang, Jung, Yamagishi and Evans, "Automatic speaker verification spoofing
and deepfake detection using wav2vec 2.0 and data augmentation", Odyssey 2022 (the XLS-R + AASIST model of
``TakHemlata/SSL_Anti-spoofing``). This is an independent implementation; the SSL encoder is a
``transformers`` model (``Wav2Vec2Model``, ``HubertModel``, ``WavLMModel``), not fairseq. For a batch of
16 kHz waveforms ``(B, L)``:

1. the SSL encoder gives frame features ``(B, T, D)`` (one frame per 20 ms); :attr:`SSLAASISTConfig.layer`
   picks which: ``"last"`` (the encoder output), a hidden-state index (``0`` = the transformer's input,
   ``i`` = the output of transformer layer ``i``), or ``"weighted"``, a learned softmax-weighted sum of
   all hidden states;
2. a linear projection to ``proj_dim`` (128) makes a ``(B, 1, proj_dim, T)`` "spectro-temporal" map, which
   is max-pooled by 3 in both axes, batch-normalised and SELU-activated;
3. six residual blocks, without the time pooling of the raw-waveform AASIST, then batch norm and SELU;
4. a (1 x 1)-convolution attention map gives the spectral nodes (softmax-weighted sum over time, plus a
   positional embedding) and the temporal nodes (softmax-weighted sum over the feature axis);
5. graph attention, graph pooling and the two heterogeneous graph branches of AASIST
   (:mod:`apallm.cm.aasist`), and a linear readout to two logits: index 0 = spoof, index 1 = bona fide.

The model is saved with :func:`apallm.cm.save_cm` like AASIST: ``model_config`` holds the SSL encoder's
full ``transformers`` configuration, so :func:`apallm.cm.load_cm` rebuilds it offline (the weights are in
``model.safetensors``). :func:`build_ssl_aasist` starts a model from pretrained SSL weights
(``facebook/wav2vec2-xls-r-300m``, or a local folder) for training.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from apallm.cm.aasist import GraphBackEnd, ResidualBlock

#: the SSL model types the front-end accepts (``model_type`` of their ``transformers`` configuration)
SSL_MODEL_TYPES = ("wav2vec2", "hubert", "wavlm")

#: a tiny random wav2vec 2.0 configuration (tests, toy runs): hidden size 32, 2 layers, and a 4-layer
#: convolution stack with the 320-sample (20 ms) frame hop of the real models
TINY_WAV2VEC2 = {
    "model_type": "wav2vec2", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 64, "conv_dim": [16, 16, 16, 16], "conv_stride": [5, 4, 4, 4],
    "conv_kernel": [10, 8, 4, 4], "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
    "feat_extract_norm": "group", "do_stable_layer_norm": False, "vocab_size": 4, "layerdrop": 0.0,
}

#: the architecture of facebook/wav2vec2-xls-r-300m (about 315 M parameters), for random-weight benchmarks;
#: real runs read the configuration from the checkpoint
XLSR_300M_WAV2VEC2 = {
    "model_type": "wav2vec2", "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
    "intermediate_size": 4096, "conv_dim": [512] * 7, "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2], "conv_bias": True, "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16, "feat_extract_norm": "layer", "do_stable_layer_norm": True,
    "feat_extract_activation": "gelu", "hidden_act": "gelu", "layerdrop": 0.0, "vocab_size": 32,
}


def ssl_config_from_dict(ssl_config: dict):
    """A ``transformers`` configuration object from its dict (``model_type`` + fields)."""
    from transformers import AutoConfig

    config = dict(ssl_config)
    model_type = config.pop("model_type", None)
    if model_type not in SSL_MODEL_TYPES:
        raise ValueError(f"ssl_config model_type must be one of {', '.join(SSL_MODEL_TYPES)}, got {model_type!r}")
    for key in ("architectures", "transformers_version", "_name_or_path"):
        config.pop(key, None)
    return AutoConfig.for_model(model_type, **config)


@dataclass(frozen=True)
class SSLAASISTConfig:
    """Configuration of :class:`SSLAASIST` (defaults: the published XLS-R + AASIST back-end).

    Attributes:
        ssl_config: the SSL encoder's ``transformers`` configuration as a dict (``model_type`` one of
            :data:`SSL_MODEL_TYPES`); the default is :data:`TINY_WAV2VEC2`.
        ssl_source: where the SSL weights came from (hub id or path); a record only, never downloaded.
        layer: ``"last"``, an ``int`` hidden-state index (``0 .. num_hidden_layers``, negative from the
            end), or ``"weighted"`` (learned softmax weights over all ``num_hidden_layers + 1`` states).
        proj_dim: size of the linear projection of the SSL features (128; the spectral axis of the map).
        filts: ``[in, out]`` channels of residual blocks 1, 2, 3 and 4 to 6.
        gat_dims, pool_ratios, temperatures: as in :class:`apallm.cm.aasist.AASISTConfig` (published
            SSL values: pools all 0.5; temperatures 2, 2, 100, 100).
        nb_samp: the crop length used for training and scoring (64600 samples, about 4 s).
    """

    ssl_config: dict = field(default_factory=lambda: dict(TINY_WAV2VEC2))
    ssl_source: str | None = None
    layer: Any = "last"
    proj_dim: int = 128
    filts: tuple = ((1, 32), (32, 32), (32, 64), (64, 64))
    gat_dims: tuple = (64, 32)
    pool_ratios: tuple = (0.5, 0.5, 0.5, 0.5)
    temperatures: tuple = (2.0, 2.0, 100.0, 100.0)
    nb_samp: int = 64600

    architecture = "SSL-AASIST"

    def __post_init__(self) -> None:
        if self.ssl_config.get("model_type") not in SSL_MODEL_TYPES:
            raise ValueError(f"ssl_config model_type must be one of {', '.join(SSL_MODEL_TYPES)}, "
                             f"got {self.ssl_config.get('model_type')!r}")
        n_states = int(self.ssl_config.get("num_hidden_layers", 12)) + 1
        if isinstance(self.layer, bool) or not (self.layer in ("last", "weighted") or isinstance(self.layer, int)):
            raise ValueError(f"layer must be 'last', 'weighted' or an int, got {self.layer!r}")
        if isinstance(self.layer, int) and not -n_states <= self.layer < n_states:
            raise ValueError(f"layer {self.layer} is out of range: the encoder has {n_states} hidden states "
                             f"(0 .. {n_states - 1})")
        if len(self.filts) != 4 or any(len(f) != 2 for f in self.filts) or self.filts[0][0] != 1 \
                or self.filts[3][0] != self.filts[3][1]:
            raise ValueError(f"filts must be [[1, c1], [c1, c2], [c2, c3], [c4, c4]], got {self.filts!r}")
        if len(self.gat_dims) != 2 or len(self.pool_ratios) != 4 or len(self.temperatures) != 4:
            raise ValueError("gat_dims needs 2 values, pool_ratios and temperatures 4 each")
        if not all(0.0 < r <= 1.0 for r in self.pool_ratios):
            raise ValueError(f"pool_ratios must lie in (0, 1], got {self.pool_ratios!r}")
        if self.proj_dim < 6:
            raise ValueError(f"proj_dim must be at least 6, got {self.proj_dim}")

    @classmethod
    def _check_keys(cls, config: dict) -> dict:
        config = dict(config)
        architecture = config.pop("architecture", cls.architecture)
        if architecture != cls.architecture:
            raise ValueError(f"model_config is for architecture {architecture!r}, not {cls.architecture!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown {cls.architecture} model_config keys: {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        if "filts" in config:
            config["filts"] = tuple(tuple(int(c) for c in f) for f in config["filts"])
        for key in ("gat_dims", "pool_ratios", "temperatures"):
            if key in config:
                config[key] = tuple(config[key])
        return config

    @classmethod
    def from_dict(cls, model_config: dict) -> SSLAASISTConfig:
        """Build from :meth:`to_dict` output; unknown keys are refused."""
        return cls(**cls._check_keys(model_config))

    def to_dict(self) -> dict:
        out = {"architecture": self.architecture}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "filts":
                value = [list(v) for v in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @property
    def spectral_nodes(self) -> int:
        return self.proj_dim // 3


class _UnpooledResidualBlock(ResidualBlock):
    """The AASIST residual block without the time max-pooling (the SSL back-end keeps every frame)."""

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(F.selu(self.bn2(self.conv1(x)), inplace=True))
        return out + (x if self.conv_downsample is None else self.conv_downsample(x))


class SSLAASIST(GraphBackEnd):
    """SSL encoder + AASIST back-end: ``forward(waveform)`` maps ``(B, L)`` 16 kHz audio to ``(B, 2)``
    logits ``[spoof, bona fide]``. See the module docstring for the pipeline.

    ``ssl_model`` is built from ``config.ssl_config`` with random weights; :func:`build_ssl_aasist` (or
    :meth:`load_ssl_weights`) loads pretrained ones.
    """

    architecture = "SSL-AASIST"

    def __init__(self, config: SSLAASISTConfig | None = None):
        super().__init__()
        from transformers import AutoModel

        config = config or SSLAASISTConfig()
        self.config = config
        self.ssl_model = AutoModel.from_config(ssl_config_from_dict(config.ssl_config))
        self.ssl_model.config.layerdrop = float(config.ssl_config.get("layerdrop", 0.0))
        hidden = self.ssl_model.config.hidden_size
        self.n_states = self.ssl_model.config.num_hidden_layers + 1
        if config.layer == "weighted":
            self.layer_weights = nn.Parameter(torch.zeros(self.n_states))
        self.LL = nn.Linear(hidden, config.proj_dim)

        blocks = config.filts
        channels = blocks[3][1]
        self.first_bn = nn.BatchNorm2d(1)
        specs = [blocks[0], blocks[1], blocks[2], blocks[3], blocks[3], blocks[3]]
        self.encoder = nn.Sequential(*(nn.Sequential(_UnpooledResidualBlock(c_in, c_out, first=i == 0))
                                       for i, (c_in, c_out) in enumerate(specs)))
        self.first_bn1 = nn.BatchNorm2d(channels)
        self.attention = nn.Sequential(nn.Conv2d(channels, 2 * channels, kernel_size=1), nn.SELU(),
                                       nn.BatchNorm2d(2 * channels), nn.Conv2d(2 * channels, channels, kernel_size=1))

        self._build_back_end(channels, config.spectral_nodes, config.gat_dims, config.pool_ratios,
                             config.temperatures)

    # ------------------------------------------------------------------ front-end
    def load_ssl_weights(self, source: str) -> None:
        """Load pretrained SSL weights (hub id or local folder, via ``AutoModel.from_pretrained``); the
        checkpoint's configuration must match ``config.ssl_config`` in architecture."""
        from transformers import AutoModel

        pretrained = AutoModel.from_pretrained(source)
        missing, unexpected = self.ssl_model.load_state_dict(pretrained.state_dict(), strict=False)
        if missing:
            raise ValueError(f"{source}: the pretrained SSL weights lack {len(missing)} tensors "
                             f"(first: {', '.join(missing[:3])})")

    def ssl_features(self, waveform: Tensor) -> Tensor:
        """``(B, T, hidden)`` frame features of the chosen layer (or the weighted sum)."""
        layer = self.config.layer
        if layer == "last":
            return self.ssl_model(waveform).last_hidden_state
        states = self.ssl_model(waveform, output_hidden_states=True).hidden_states
        if layer == "weighted":
            weights = torch.softmax(self.layer_weights, dim=0)
            return torch.einsum("l,lbtd->btd", weights, torch.stack(states))
        return states[layer]

    def forward(self, waveform: Tensor, freq_mask_rng=None) -> Tensor:  # noqa: ARG002 (AASIST's signature)
        if waveform.ndim != 2:
            raise ValueError(f"SSL-AASIST takes a (batch, samples) waveform, got shape {tuple(waveform.shape)}")
        x = self.LL(self.ssl_features(waveform))  # (B, T, proj_dim)
        if x.shape[1] < 3:
            raise ValueError(f"SSL-AASIST needs at least 3 SSL frames (about 60 ms); got {x.shape[1]} from "
                             f"{waveform.shape[1]} samples")
        x = F.max_pool2d(x.transpose(1, 2).unsqueeze(1), kernel_size=3)  # (B, 1, proj_dim / 3, T / 3)
        x = F.selu(self.first_bn(x))
        x = F.selu(self.first_bn1(self.encoder(x)))  # (B, C, F, T)
        w = self.attention(x)
        spectral = torch.sum(x * torch.softmax(w, dim=-1), dim=-1).transpose(1, 2)  # (B, F, C)
        temporal = torch.sum(x * torch.softmax(w, dim=-2), dim=-2).transpose(1, 2)  # (B, T, C)
        return self.out_layer(self.drop(self.read_graph(spectral, temporal)))


def pretrained_ssl_config(source: str) -> dict:
    """The ``transformers`` configuration dict of a pretrained SSL checkpoint (hub id or local folder)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source).to_dict()
    for key in ("architectures", "transformers_version", "_name_or_path"):
        config.pop(key, None)
    return config


def build_ssl_aasist(pretrained: str | None = None, model_class: type[SSLAASIST] = SSLAASIST,
                     **model_config) -> SSLAASIST:
    """An SSL + AASIST model for training. With ``pretrained`` (hub id such as
    ``facebook/wav2vec2-xls-r-300m``, or a local folder), the SSL configuration and weights come from it
    and ``ssl_source`` records it; otherwise ``model_config["ssl_config"]`` (default
    :data:`TINY_WAV2VEC2`) is built with random weights. Other keys go to the config class."""
    config_cls = model_class.config_class
    if pretrained is not None:
        ssl_config = pretrained_ssl_config(pretrained)
        ssl_config["layerdrop"] = float(model_config.pop("layerdrop", 0.0))
        model_config = {**model_config, "ssl_config": ssl_config, "ssl_source": str(pretrained)}
    model = model_class(config_cls.from_dict(model_config))
    if pretrained is not None:
        model.load_ssl_weights(pretrained)
    return model


SSLAASIST.config_class = SSLAASISTConfig


def _register() -> None:
    from apallm.cm.checkpoint import ARCHITECTURES

    ARCHITECTURES.setdefault(SSLAASIST.architecture, (SSLAASISTConfig, SSLAASIST))


_register()

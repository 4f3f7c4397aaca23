"""Front ends over the countermeasures' existing encoders, and the AASIST graph back end over any front end.

- :class:`SSLFrontEnd`: a ``transformers`` wav2vec 2.0 / XLS-R, HuBERT or WavLM model (``from_pretrained`` of a
  hub id or folder, or a configuration with random weights), every hidden state ``(B, T, hidden)`` at 50 Hz;
- :class:`AASISTFrontEnd`: the sinc + residual encoder of an :class:`apallm.cm.aasist.AASIST` model, its
  ``(B, C, F, T)`` maps read as ``T`` frames of ``C * F`` values;
- :class:`GraphHead`: a front end followed by the SSL-AASIST graph-attention back end (projection, residual
  blocks, spectral/temporal attention, heterogeneous graphs), two logits ``[spoof, bona fide]``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from apallm.frontends.base import FrontEnd


class SSLFrontEnd(FrontEnd):
    frame_rate = 50.0

    def __init__(self, model, name: str = "ssl"):
        super().__init__()
        self.model = model.eval()
        self.name = name
        self.dim = model.config.hidden_size
        self.num_layers = model.config.num_hidden_layers + 1

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, **kwargs) -> SSLFrontEnd:
        """A wav2vec 2.0 / HuBERT / WavLM checkpoint (hub id or folder); ``kwargs`` go to ``from_pretrained``."""
        from transformers import AutoModel

        from apallm.cm.ssl import SSL_MODEL_TYPES

        model = AutoModel.from_pretrained(str(source), **kwargs)
        if model.config.model_type not in SSL_MODEL_TYPES:
            raise ValueError(f"{source}: a {model.config.model_type} model, not one of {SSL_MODEL_TYPES}")
        return cls(model, name=str(source))

    @classmethod
    def from_config(cls, ssl_config: dict) -> SSLFrontEnd:
        """Random weights of a configuration dict (``model_type`` + fields), e.g.
        :data:`apallm.cm.ssl.TINY_WAV2VEC2`."""
        from transformers import AutoModel

        from apallm.cm.ssl import ssl_config_from_dict

        return cls(AutoModel.from_config(ssl_config_from_dict(ssl_config)), name=ssl_config["model_type"])

    def hidden_states(self, waveform: Tensor) -> list[Tensor]:
        return list(self.model(waveform, output_hidden_states=True).hidden_states)


class AASISTFrontEnd(FrontEnd):
    """AASIST's encoder as frames: ``(B, T', C * F)``."""

    def __init__(self, model, name: str = "aasist"):
        super().__init__()
        self.model = model.eval()
        self.name = name
        with torch.no_grad():  # channels x spectral rows of the maps, and their frame rate, from one crop
            _, c, f, t = model.encode(torch.zeros(1, model.config.nb_samp)).shape
        self.dim = c * f
        self.frame_rate = t * 16000 / model.config.nb_samp

    @classmethod
    def from_checkpoint(cls, directory: str | os.PathLike) -> AASISTFrontEnd:
        from apallm.cm.checkpoint import load_cm

        return cls(load_cm(directory), name=str(directory))

    def hidden_states(self, waveform: Tensor) -> list[Tensor]:
        maps = self.model.encode(waveform)  # (B, C, F, T)
        b, c, f, t = maps.shape
        return [maps.permute(0, 3, 1, 2).reshape(b, t, c * f)]


class GraphHead(nn.Module):
    """``front end -> linear projection -> SSL-AASIST back end -> (B, 2)`` logits (index 0 = spoof). ``layer``:
    which hidden state (``-1`` = the last; ``"weighted"`` = a learned softmax-weighted sum)."""

    def __init__(self, frontend: FrontEnd, layer: int | str = -1, proj_dim: int = 128, freeze_frontend: bool = True):
        super().__init__()
        from apallm.cm.ssl import SSLAASIST, SSLAASISTConfig

        self.frontend, self.layer = frontend, layer
        if freeze_frontend:
            frontend.requires_grad_(False)
        if layer == "weighted":
            self.layer_weights = nn.Parameter(torch.zeros(frontend.num_layers))
        # the back end is SSL-AASIST's: build one on a tiny SSL stub and keep every part but the stub
        backend = SSLAASIST(SSLAASISTConfig(proj_dim=proj_dim))
        del backend.ssl_model
        backend.LL = nn.Linear(frontend.dim, proj_dim)
        self.backend = backend

    def frames(self, waveform: Tensor) -> Tensor:
        states = self.frontend.hidden_states(waveform)
        if self.layer == "weighted":
            return torch.einsum("l,lbtd->btd", torch.softmax(self.layer_weights, 0), torch.stack(states))
        return states[self.layer]

    def forward(self, waveform: Tensor) -> Tensor:
        b = self.backend
        x = b.LL(self.frames(waveform))
        if x.shape[1] < 3:
            raise ValueError(f"the graph back end needs at least 3 frames, got {x.shape[1]}")
        x = F.selu(b.first_bn(F.max_pool2d(x.transpose(1, 2).unsqueeze(1), kernel_size=3)))
        x = F.selu(b.first_bn1(b.encoder(x)))
        w = b.attention(x)
        spectral = torch.sum(x * torch.softmax(w, dim=-1), dim=-1).transpose(1, 2)
        temporal = torch.sum(x * torch.softmax(w, dim=-2), dim=-2).transpose(1, 2)
        return b.out_layer(b.drop(b.read_graph(spectral, temporal)))

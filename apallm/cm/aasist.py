"""AASIST and AASIST-L: spectro-temporal graph attention networks on the raw waveform.

Jung, Heo, Tak, Shim, Chung, Lee, Yu and Evans, "AASIST: Audio Anti-Spoofing using Integrated
Spectro-Temporal Graph Attention Networks", ICASSP 2022. This is an independent implementation of the
architecture published in ``clovaai/aasist`` (``models/AASIST.py``, MIT licence, NAVER Corp.): the module
and parameter names are the published ones, so the released checkpoints load as they are, and the
computation follows the published code, including two details that the paper does not describe and the
released weights depend on (see :class:`ResidualBlock` and :class:`AASISTConfig.pool_ratios`).

Pipeline for a batch of 16 kHz waveforms ``(B, L)``:

1. a fixed (not learned) bank of mel-spaced sinc band-pass filters (:class:`SincFilterbank`) turns the
   waveform into a 2-D spectro-temporal map, max-pooled by 3 in both axes;
2. six residual blocks (:class:`ResidualBlock`) encode it to ``(B, C, F, T)``;
3. a spectral graph (``F`` nodes, max over time, plus a learned positional embedding) and a temporal graph
   (``T`` nodes, max over frequency) each go through a graph attention layer and graph pooling;
4. two parallel branches of heterogeneous graph attention (:class:`HeterogeneousGraphAttention`) combine
   the two graphs with a learned stack (master) node; the branches are merged by an element-wise maximum;
5. the readout concatenates max-of-magnitude and mean of both node sets with the master node, and a linear
   layer gives two logits: index 0 = spoof, index 1 = bona fide (the published label convention).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: logit index of each class in the model output (the published convention: 1 = bona fide)
SPOOF_INDEX, BONAFIDE_INDEX = 0, 1
#: number of residual blocks in the encoder, each max-pooling the time axis by 3
NUM_RESIDUAL_BLOCKS = 6


@dataclass(frozen=True)
class AASISTConfig:
    """The published ``model_config`` of AASIST (the defaults) and AASIST-L (:data:`AASIST_L`).

    Attributes:
        nb_samp: waveform length the model was trained and evaluated on (64600 samples, about 4 s at
            16 kHz). The network accepts other lengths; this is the crop the scoring code uses.
        first_conv: sinc filter length; an even value is raised by one so the filters are symmetric
            (128 -> 129 taps), as in the published code.
        filts: ``[number of sinc filters, [in, out] of residual block 1, ... of block 2, ... of block 3,
            ... of blocks 4 to 6]``.
        gat_dims: node dimensions of the first graph attention layers and of the heterogeneous layers.
        pool_ratios: fraction of nodes kept by graph pooling: ``[spectral, temporal, heterogeneous]``;
            the fourth value is part of the published configuration but not used by the published model
            (all four pools after the heterogeneous layers use the third), so it is not used here either.
        temperatures: softmax temperatures of the spectral, temporal and (the third, shared by all four)
            heterogeneous attention layers; the fourth value is likewise unused in the published model.
    """

    nb_samp: int = 64600
    first_conv: int = 128
    filts: tuple = (70, (1, 32), (32, 32), (32, 64), (64, 64))
    gat_dims: tuple = (64, 32)
    pool_ratios: tuple = (0.5, 0.7, 0.5, 0.5)
    temperatures: tuple = (2.0, 2.0, 100.0, 100.0)

    def __post_init__(self) -> None:
        filts = self.filts
        if len(filts) != 5 or not isinstance(filts[0], int) or any(len(f) != 2 for f in filts[1:]):
            raise ValueError(f"filts must be [n_sinc, [in, out] x 4], got {filts!r}")
        if filts[1][0] != 1:
            raise ValueError(f"the first residual block takes 1 input channel, got filts[1] = {filts[1]!r}")
        if filts[4][0] != filts[4][1]:
            raise ValueError(f"filts[4] is used by three blocks in a row, so in == out; got {filts[4]!r}")
        if len(self.gat_dims) != 2 or len(self.pool_ratios) != 4 or len(self.temperatures) != 4:
            raise ValueError("gat_dims needs 2 values, pool_ratios and temperatures 4 each")
        if not all(0.0 < r <= 1.0 for r in self.pool_ratios):
            raise ValueError(f"pool_ratios must lie in (0, 1], got {self.pool_ratios!r}")
        if self.nb_samp < self.min_samples:
            raise ValueError(f"nb_samp = {self.nb_samp} is shorter than the {self.min_samples} samples the "
                             "network needs")

    @classmethod
    def from_dict(cls, model_config: dict) -> AASISTConfig:
        """Build from a published ``model_config`` (or :meth:`to_dict`); ``architecture`` is checked, other
        unknown keys are refused so a typo cannot silently fall back to a default."""
        config = dict(model_config)
        architecture = config.pop("architecture", "AASIST")
        if architecture != "AASIST":
            raise ValueError(f"model_config is for architecture {architecture!r}, not 'AASIST'")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown AASIST model_config keys: {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        if "filts" in config:
            filts = config["filts"]
            config["filts"] = (int(filts[0]), *(tuple(int(c) for c in f) for f in filts[1:]))
        for key in ("gat_dims", "pool_ratios", "temperatures"):
            if key in config:
                config[key] = tuple(config[key])
        return cls(**config)

    def to_dict(self) -> dict:
        """The published ``model_config`` layout (JSON-ready)."""
        return {
            "architecture": "AASIST",
            "nb_samp": self.nb_samp,
            "first_conv": self.first_conv,
            "filts": [self.filts[0], *(list(f) for f in self.filts[1:])],
            "gat_dims": list(self.gat_dims),
            "pool_ratios": list(self.pool_ratios),
            "temperatures": list(self.temperatures),
        }

    @property
    def sinc_kernel_size(self) -> int:
        return self.first_conv + 1 if self.first_conv % 2 == 0 else self.first_conv

    @property
    def min_samples(self) -> int:
        """Shortest waveform the network takes: the time axis must survive 7 poolings by 3."""
        return 3 ** (NUM_RESIDUAL_BLOCKS + 1) + self.sinc_kernel_size - 1


#: the published AASIST configuration (297,866 trainable parameters)
AASIST_BASE = AASISTConfig()
#: the published AASIST-L configuration (85,306 trainable parameters)
AASIST_L = AASISTConfig(filts=(70, (1, 32), (32, 32), (32, 24), (24, 24)), gat_dims=(24, 32),
                        pool_ratios=(0.4, 0.5, 0.7, 0.5))


def _mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


class SincFilterbank(nn.Module):
    """Fixed band-pass sinc filters with mel-spaced, contiguous bands from 0 Hz to Nyquist.

    Band ``i`` spans ``[edge_i, edge_{i+1}]``, where the ``out_channels + 1`` edges are equally spaced on
    the mel scale between the lowest and highest bin of a 512-point FFT. Each filter is the difference of
    two ideal low-pass sinc responses, Hamming-windowed. The filters are a non-persistent buffer: they are
    not trained and not stored in checkpoints (the published state dicts do not hold them).

    ``forward(x, mask_rng)`` convolves ``(B, 1, L)`` to ``(B, out_channels, L - kernel_size + 1)``. With a
    ``numpy.random.Generator`` it applies the published frequency-band masking augmentation ("Freq_aug"):
    a random run of ``0 .. max_masked - 1`` adjacent filters is zeroed for the whole batch.
    """

    def __init__(self, out_channels: int, kernel_size: int, sample_rate: int = 16_000, max_masked: int = 20):
        super().__init__()
        if kernel_size % 2 == 0:
            kernel_size += 1
        self.out_channels, self.kernel_size, self.max_masked = out_channels, kernel_size, max_masked
        fft_freqs = (sample_rate // 2) * np.linspace(0.0, 1.0, 512 // 2 + 1)
        fft_mels = _mel(fft_freqs)
        edges = _hz(np.linspace(fft_mels.min(), fft_mels.max(), out_channels + 1))
        taps = np.arange(kernel_size) - (kernel_size - 1) / 2
        window = np.hamming(kernel_size)
        bank = np.empty((out_channels, kernel_size))
        for i, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            ideal = (2 * high / sample_rate) * np.sinc(2 * high * taps / sample_rate) \
                - (2 * low / sample_rate) * np.sinc(2 * low * taps / sample_rate)
            bank[i] = window * ideal
        self.register_buffer("filters", torch.tensor(bank, dtype=torch.float32).unsqueeze(1), persistent=False)

    def forward(self, x: Tensor, mask_rng: np.random.Generator | None = None) -> Tensor:
        filters = self.filters
        if mask_rng is not None:
            width = int(mask_rng.integers(0, self.max_masked))
            start = int(mask_rng.integers(0, self.out_channels - width + 1))
            filters = filters.clone()
            filters[start:start + width] = 0.0
        return F.conv1d(x, filters)


class ResidualBlock(nn.Module):
    """Two (2 x 3) convolutions with a residual connection, then max-pooling by 3 along time.

    As in the published model, ``conv1`` is applied to the block's *raw* input: the published code
    computes ``SELU(bn1(x))`` and then discards it. The released weights were trained that way, so the
    computation is the same here: ``bn1`` (absent in the first block) keeps its parameters, which are part
    of the checkpoints and of the published parameter counts, but it does not affect the output.
    The first convolution pads the frequency axis by one and the second removes it again, so the
    frequency axis keeps its size; a (1 x 3) convolution matches the channels of the shortcut.
    """

    def __init__(self, in_channels: int, out_channels: int, first: bool = False):
        super().__init__()
        if not first:
            self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=(2, 3), padding=(0, 1))
        if in_channels != out_channels:
            self.conv_downsample = nn.Conv2d(in_channels, out_channels, kernel_size=(1, 3), padding=(0, 1))
        else:
            self.conv_downsample = None

    def forward(self, x: Tensor) -> Tensor:
        # in-place SELU and sum: these maps are the largest tensors of the network
        out = self.conv2(F.selu(self.bn2(self.conv1(x)), inplace=True))
        out += x if self.conv_downsample is None else self.conv_downsample(x)
        return F.max_pool2d(out, kernel_size=(1, 3))


def _node_batch_norm(bn: nn.BatchNorm1d, x: Tensor) -> Tensor:
    """Batch-normalise the feature axis of ``(B, N, D)`` node embeddings over all nodes of the batch."""
    return bn(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class GraphAttention(nn.Module):
    """Graph attention over a fully connected graph of ``(B, N, in_dim)`` nodes.

    The attention logit of the edge ``(i, j)`` is ``w . tanh(W (x_i * x_j)) / temperature`` (element-wise
    product of the two nodes), normalised by a softmax over the neighbours ``j``. Each node becomes
    ``proj_with_att(sum_j a_ij x_j) + proj_without_att(x_i)``, then batch norm and SELU.
    Input dropout 0.2 during training.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float = 1.0):
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = nn.Parameter(nn.init.xavier_normal_(torch.empty(out_dim, 1)))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.temperature = temperature

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_drop(x)
        pairs = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))  # (B, N, N, out_dim)
        attention = torch.softmax((pairs @ self.att_weight) / self.temperature, dim=-2)  # over j
        x = self.proj_with_att(attention.squeeze(-1) @ x) + self.proj_without_att(x)
        return F.selu(_node_batch_norm(self.bn, x))


class HeterogeneousGraphAttention(nn.Module):
    """Heterogeneous stacking graph attention (HS-GAL) over two node types and a master (stack) node.

    The two node sets (temporal ``x1``, spectral ``x2``) are projected to a common space and joined into
    one graph. Edge attention is computed as in :class:`GraphAttention`, with one weight vector per edge
    type: within type 1 (``att_weight11``), within type 2 (``att_weight22``), and across types
    (``att_weight12``, shared by both directions). The master node attends to every node
    (``att_weightM`` on ``tanh(W_M (x_i * master))``) and is updated with its own projections; it is
    neither normalised nor activated. Returns the updated ``x1``, ``x2`` and master node.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float = 1.0):
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        self.att_weight11 = nn.Parameter(nn.init.xavier_normal_(torch.empty(out_dim, 1)))
        self.att_weight22 = nn.Parameter(nn.init.xavier_normal_(torch.empty(out_dim, 1)))
        self.att_weight12 = nn.Parameter(nn.init.xavier_normal_(torch.empty(out_dim, 1)))
        self.att_weightM = nn.Parameter(nn.init.xavier_normal_(torch.empty(out_dim, 1)))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.temperature = temperature

    def forward(self, x1: Tensor, x2: Tensor, master: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n1 = x1.shape[1]
        x = self.input_drop(torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1))

        pairs = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))  # (B, N, N, out_dim)
        top = torch.cat([pairs[:, :n1, :n1] @ self.att_weight11, pairs[:, :n1, n1:] @ self.att_weight12], dim=2)
        bottom = torch.cat([pairs[:, n1:, :n1] @ self.att_weight12, pairs[:, n1:, n1:] @ self.att_weight22], dim=2)
        attention = torch.softmax(torch.cat([top, bottom], dim=1) / self.temperature, dim=-2)

        master_scores = torch.tanh(self.att_projM(x * master)) @ self.att_weightM  # (B, N, 1)
        master_attention = torch.softmax(master_scores / self.temperature, dim=-2)
        master = self.proj_with_attM(master_attention.transpose(1, 2) @ x) + self.proj_without_attM(master)

        x = self.proj_with_att(attention.squeeze(-1) @ x) + self.proj_without_att(x)
        x = F.selu(_node_batch_norm(self.bn, x))
        return x[:, :n1], x[:, n1:], master


class GraphPool(nn.Module):
    """Keep the ``max(1, int(ratio * N))`` nodes with the highest learned sigmoid score, each scaled by its
    score (graph pooling, Gao and Ji 2019). Dropout 0.3 on the scoring input during training."""

    def __init__(self, ratio: float, in_dim: int, dropout: float = 0.3):
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(in_dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        scores = torch.sigmoid(self.proj(self.drop(h)))  # (B, N, 1)
        keep = max(int(h.shape[1] * self.ratio), 1)
        _, index = torch.topk(scores, keep, dim=1)
        return torch.gather(h * scores, 1, index.expand(-1, -1, h.shape[-1]))


class GraphBackEnd(nn.Module):
    """AASIST's graph-attention back end, shared by :class:`AASIST` and the SSL front-end model
    (:class:`apallm.cm.ssl.SSLAASIST`). Its layers are attributes of the model itself, so the state-dict
    names stay the published ones (``GAT_layer_S``, ``HtrgGAT_layer_ST11``, ``pool_hS1``, ``out_layer``, ...)."""

    def _build_back_end(self, channels: int, spectral_nodes: int, gat_dims: tuple, pools: tuple,
                        temps: tuple) -> None:
        self.pos_S = nn.Parameter(torch.randn(1, spectral_nodes, channels))
        self.master1 = nn.Parameter(torch.randn(1, 1, gat_dims[0]))
        self.master2 = nn.Parameter(torch.randn(1, 1, gat_dims[0]))

        self.GAT_layer_S = GraphAttention(channels, gat_dims[0], temperature=temps[0])
        self.GAT_layer_T = GraphAttention(channels, gat_dims[0], temperature=temps[1])
        self.HtrgGAT_layer_ST11 = HeterogeneousGraphAttention(gat_dims[0], gat_dims[1], temperature=temps[2])
        self.HtrgGAT_layer_ST12 = HeterogeneousGraphAttention(gat_dims[1], gat_dims[1], temperature=temps[2])
        self.HtrgGAT_layer_ST21 = HeterogeneousGraphAttention(gat_dims[0], gat_dims[1], temperature=temps[2])
        self.HtrgGAT_layer_ST22 = HeterogeneousGraphAttention(gat_dims[1], gat_dims[1], temperature=temps[2])

        self.pool_S = GraphPool(pools[0], gat_dims[0])
        self.pool_T = GraphPool(pools[1], gat_dims[0])
        self.pool_hS1 = GraphPool(pools[2], gat_dims[1])
        self.pool_hT1 = GraphPool(pools[2], gat_dims[1])
        self.pool_hS2 = GraphPool(pools[2], gat_dims[1])
        self.pool_hT2 = GraphPool(pools[2], gat_dims[1])

        self.drop_way = nn.Dropout(0.2)
        self.drop = nn.Dropout(0.5)
        self.out_layer = nn.Linear(5 * gat_dims[1], 2)

    def read_graph(self, spectral: Tensor, temporal: Tensor) -> Tensor:
        """The ``(batch, 5 * gat_dims[1])`` utterance embedding from the spectral ``(B, F, C)`` and temporal
        ``(B, T, C)`` node sequences: max and mean of the temporal and spectral graph nodes after the two
        heterogeneous branches, and the master node."""
        spectral = self.pool_S(self.GAT_layer_S(spectral + self.pos_S))
        temporal = self.pool_T(self.GAT_layer_T(temporal))

        batch = spectral.shape[0]
        t1, s1, m1 = self._branch(temporal, spectral, self.master1.expand(batch, -1, -1),
                                  self.HtrgGAT_layer_ST11, self.HtrgGAT_layer_ST12, self.pool_hT1, self.pool_hS1)
        t2, s2, m2 = self._branch(temporal, spectral, self.master2.expand(batch, -1, -1),
                                  self.HtrgGAT_layer_ST21, self.HtrgGAT_layer_ST22, self.pool_hT2, self.pool_hS2)
        temporal = torch.maximum(self.drop_way(t1), self.drop_way(t2))
        spectral = torch.maximum(self.drop_way(s1), self.drop_way(s2))
        master = torch.maximum(self.drop_way(m1), self.drop_way(m2))

        return torch.cat([temporal.abs().amax(dim=1), temporal.mean(dim=1),
                          spectral.abs().amax(dim=1), spectral.mean(dim=1), master.squeeze(1)], dim=1)

    @staticmethod
    def _branch(temporal: Tensor, spectral: Tensor, master: Tensor, first: HeterogeneousGraphAttention,
                second: HeterogeneousGraphAttention, pool_t: GraphPool, pool_s: GraphPool
                ) -> tuple[Tensor, Tensor, Tensor]:
        """One inference branch: HS-GAL, graph pooling, then a second HS-GAL added as a residual."""
        temporal, spectral, master = first(temporal, spectral, master)
        temporal, spectral = pool_t(temporal), pool_s(spectral)
        t_aug, s_aug, m_aug = second(temporal, spectral, master)
        return temporal + t_aug, spectral + s_aug, master + m_aug


class AASIST(GraphBackEnd):
    """AASIST countermeasure: ``forward(waveform)`` maps ``(B, L)`` 16 kHz audio to ``(B, 2)`` logits
    ``[spoof, bona fide]``. ``L`` may be any length of at least ``config.min_samples`` (2315 samples);
    the published models were trained on 64600-sample crops (``config.nb_samp``).

    ``forward(waveform, freq_mask_rng=rng)`` applies the published frequency-band masking of the sinc
    filters (a training augmentation), drawn from the given ``numpy.random.Generator``.
    """

    architecture = "AASIST"

    def __init__(self, config: AASISTConfig = AASIST_BASE):
        super().__init__()
        self.config = config
        n_sinc, *blocks = config.filts
        gat_dims, pools, temps = config.gat_dims, config.pool_ratios, config.temperatures
        channels = blocks[-1][1]

        self.conv_time = SincFilterbank(n_sinc, config.first_conv)
        self.first_bn = nn.BatchNorm2d(1)
        # Each block sits in its own nn.Sequential so that the parameter names are the published
        # ones (encoder.<i>.0.<layer>) and the released checkpoints load unchanged.
        specs = [blocks[0], blocks[1], blocks[2], blocks[3], blocks[3], blocks[3]]
        self.encoder = nn.Sequential(*(nn.Sequential(ResidualBlock(c_in, c_out, first=i == 0))
                                       for i, (c_in, c_out) in enumerate(specs)))
        # spectral nodes: one per sinc band after the first 3 x 3 max-pool (70 // 3 = 23 for both models)
        self._build_back_end(channels, n_sinc // 3, gat_dims, pools, temps)

    def forward(self, waveform: Tensor, freq_mask_rng: np.random.Generator | None = None) -> Tensor:
        return self.out_layer(self.drop(self.embed(waveform, freq_mask_rng)))

    def embed(self, waveform: Tensor, freq_mask_rng: np.random.Generator | None = None) -> Tensor:
        """The ``(batch, 5 * gat_dims[1])`` utterance embedding the output layer reads (before dropout):
        max and mean of the temporal and spectral graph nodes, and the master node."""
        return self.graph_embed(self.encode(waveform, freq_mask_rng))

    def encode(self, waveform: Tensor, freq_mask_rng: np.random.Generator | None = None) -> Tensor:
        """The front end and residual encoder: ``(batch, channels, freq, time)`` feature maps, which the graph
        attention back end (:meth:`graph_embed`) reads. Splitting here lets a recipe cache the maps and train
        the back end alone."""
        if waveform.ndim != 2:
            raise ValueError(f"AASIST takes a (batch, samples) waveform, got shape {tuple(waveform.shape)}")
        if waveform.shape[1] < self.config.min_samples:
            raise ValueError(f"AASIST needs at least {self.config.min_samples} samples "
                             f"({self.config.min_samples / 16000:.3f} s at 16 kHz), got {waveform.shape[1]}")
        x = self.conv_time(waveform.unsqueeze(1), freq_mask_rng).unsqueeze(1)  # (B, 1, n_sinc, L')
        x = F.selu(self.first_bn(F.max_pool2d(x.abs(), kernel_size=3)))
        return self.encoder(x).abs()  # (B, C, F, T)

    def graph_embed(self, e: Tensor) -> Tensor:
        """The utterance embedding (see :meth:`embed`) from the encoder's feature maps."""
        return self.read_graph(e.amax(dim=3).transpose(1, 2), e.amax(dim=2).transpose(1, 2))


def count_trainable_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (``requires_grad``), as the published counts are made."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

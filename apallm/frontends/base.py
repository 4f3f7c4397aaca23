"""The front-end interface: a batch of 16 kHz waveforms in, frame features out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

SAMPLE_RATE = 16_000


class MissingExtraError(ImportError):
    """A front end needs a package of an optional extra that is not installed. The message names the extra
    and the command that installs it."""

    def __init__(self, what: str, package: str, extra: str = "pretrained"):
        self.extra, self.package = extra, package
        super().__init__(f"{what} needs the {package!r} package of the {extra!r} extra, which is not installed: "
                         f"pip install 'apallm[{extra}]'")


def require(module: str, what: str, package: str | None = None, extra: str = "pretrained"):
    """Import ``module`` or raise :class:`MissingExtraError` (never a bare traceback) naming ``extra``."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(what, package or module, extra) from exc
    if mod is None:  # sys.modules[name] = None also means "not importable"
        raise MissingExtraError(what, package or module, extra)
    return mod


class FrontEnd(nn.Module, ABC):
    """Waveform to frame features. Subclasses set :attr:`dim` (feature size), :attr:`frame_rate` (frames per
    second) and :attr:`num_layers` (how many hidden states :meth:`hidden_states` returns; 1 when only the
    output is meaningful)."""

    dim: int
    frame_rate: float
    num_layers: int = 1
    name: str = "frontend"

    def forward(self, waveform: Tensor) -> Tensor:
        """``(B, L)`` 16 kHz waveforms (equal lengths) -> ``(B, T, dim)`` frame features (the last state)."""
        return self.hidden_states(waveform)[-1]

    @abstractmethod
    def hidden_states(self, waveform: Tensor) -> list[Tensor]:
        """Every hidden state ``(B, T, dim)``, the front end's input to its transformer first when it has one."""

    def state_indices(self, layers: str | Sequence[int] = "all") -> list[int]:
        """The hidden states ``layers`` names: ``"all"``, ``"last"`` or a list of indices."""
        if layers == "all":
            return list(range(self.num_layers))
        if layers == "last":
            return [self.num_layers - 1]
        if isinstance(layers, str) or not all(-self.num_layers <= int(i) < self.num_layers for i in layers):
            raise ValueError(f"layers must be 'all', 'last' or indices below {self.num_layers}, got {layers!r}")
        return [int(i) % self.num_layers for i in layers]

    def pooled(self, waveforms: Sequence[np.ndarray], layers: str | Sequence[int] = "all") -> np.ndarray:
        """``(len(waveforms), n_states * 2 * dim)`` utterance vectors: mean and standard deviation over time of
        the hidden states ``layers`` names (:meth:`state_indices`), one clip at a time (its own length, no
        padding)."""
        rows = [pool_states(self.frame_states(np.asarray(w, dtype=np.float32)[None], layers)[0]) for w in waveforms]
        return torch.stack(rows).float().numpy() if rows else np.zeros((0, 0), dtype=np.float32)

    def pooled_windows(self, waveform: np.ndarray, window: int, hop: int | None = None,
                       layers: str | Sequence[int] = "all") -> np.ndarray:
        """``(K, n_states * 2 * dim)``: :meth:`pooled`'s vector of each window of ``window`` frames
        (:func:`window_weights`) of one clip, all from one encoder pass."""
        states = self.frame_states(np.asarray(waveform, dtype=np.float32)[None], layers)[0]
        return pool_states(states, window_weights(states[0].shape[0], window, hop)).numpy()

    def frame_states(self, waveforms, layers: str | Sequence[int] = "all") -> list[list[Tensor]]:
        """For ``(B, L)`` equal-length 16 kHz waveforms (one encoder pass), each one's ``(T, dim)`` hidden states
        that ``layers`` names (:meth:`state_indices`), as float32 on the CPU."""
        keep = self.state_indices(layers)
        batch = torch.as_tensor(np.asarray(waveforms, dtype=np.float32))
        batch = batch.reshape(-1, batch.shape[-1]).to(next(self.parameters()).device)
        with torch.inference_mode():
            states = self.hidden_states(batch)
        return [[states[i][b].float().cpu() for i in keep] for b in range(batch.shape[0])]


def window_weights(n_frames: int, window: int, hop: int | None = None) -> Tensor:
    """``(K, n_frames)`` 0/1 frame weights for :func:`pool_states`, one row per window of ``window`` frames:
    windows start every ``hop`` frames (default half a window) and one more ends at the last frame when the
    others miss the tail; a clip no longer than a window is one window, the whole clip."""
    if window < 1 or n_frames < 1:
        raise ValueError(f"windows need window >= 1 and n_frames >= 1, got window={window}, n_frames={n_frames}")
    hop = hop or max(1, window // 2)
    if hop < 1:
        raise ValueError(f"hop must be >= 1, got {hop}")
    starts = list(range(0, max(1, n_frames - window + 1), hop))
    if starts[-1] + window < n_frames:
        starts.append(n_frames - window)
    w = torch.zeros(len(starts), n_frames, dtype=torch.float64)
    for k, s in enumerate(starts):
        w[k, s:s + window] = 1
    return w


def pool_states(states: Sequence[Tensor], weights=None) -> Tensor:
    """The utterance vector of :meth:`FrontEnd.pooled` from one clip's ``(T, dim)`` hidden states: mean and
    standard deviation over time of each state, concatenated. ``weights`` weigh the frames (``(T,)``, >= 0, or
    ``(K, T)`` for K weightings at once, giving ``(K, features)``): a frame of weight 0 is left out of the
    pooling, which is how :mod:`apallm.attribution` occludes time spans without another encoder pass."""
    if weights is None:
        weights = torch.ones(states[0].shape[0], dtype=torch.float64)
    w = torch.as_tensor(weights, dtype=torch.float64)
    single = w.ndim == 1
    w = w.reshape(-1, w.shape[-1])
    w = w / w.sum(1, keepdim=True)
    parts = []
    for h in states:
        h = h.double()
        mean = w @ h
        parts += [mean.float(), (w @ (h * h) - mean * mean).clamp_min(0).sqrt().float()]
    out = torch.cat(parts, dim=1)
    return out[0] if single else out

"""Spectrogram tokens: the structured spectrogram image cut into 28 x 28 px patches, each projected to one token
embedding of a language model. Families without a vision tower (Qwen2-Audio, the composite) write these
embeddings at placeholder tokens of their prompt."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

PATCH = 28


class SpectrogramProjector(nn.Module):
    """RGB patches of the spectrogram image -> token embeddings of the LLM's hidden size."""

    def __init__(self, hidden_size: int, patch: int = PATCH, max_grid: int = 64):
        super().__init__()
        self.patch = patch
        self.proj = nn.Sequential(nn.Linear(3 * patch * patch, hidden_size), nn.GELU(),
                                  nn.Linear(hidden_size, hidden_size))
        self.row = nn.Embedding(max_grid, hidden_size)
        self.col = nn.Embedding(max_grid, hidden_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: (batch, 3, H, W) in [-1, 1] -> (batch, H/patch * W/patch, hidden), row-major patches."""
        b, c, h, w = pixels.shape
        p = self.patch
        gh, gw = h // p, w // p
        patches = pixels.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c * p * p)
        rows = torch.arange(gh, device=pixels.device).repeat_interleave(gw)
        cols = torch.arange(gw, device=pixels.device).repeat(gh)
        return self.proj(patches) + self.row(rows) + self.col(cols)


def image_to_pixels(image) -> torch.Tensor:
    """A PIL image -> (3, H, W) float pixels in [-1, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)

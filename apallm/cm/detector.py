"""Countermeasure checkpoints as :class:`~apallm.detectors.Detector`s, and the evaluation crop.

Scoring follows the reference evaluation of AASIST: each clip (16 kHz mono, as
:func:`apallm.load_audio` gives it) is cut to its first ``nb_samp`` samples (64600, about 4 s), or
repeated end to end until it has that many when it is shorter; the crops go through the network in batches.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from apallm.audio import TARGET_SAMPLE_RATE, Clip, as_clips
from apallm.cm.aasist import BONAFIDE_INDEX, SPOOF_INDEX
from apallm.cm.checkpoint import CheckpointError, load_cm, read_cm_config
from apallm.detectors import Detector, register_detector


def fixed_crop(waveform: np.ndarray, num_samples: int) -> np.ndarray:
    """The first ``num_samples`` samples of ``waveform``; a shorter waveform is repeated end to end
    (tiled) and cut to length, as the reference ``pad`` of AASIST's data loader does."""
    if len(waveform) == 0:
        raise ValueError("cannot crop an empty waveform")
    if len(waveform) >= num_samples:
        return waveform[:num_samples]
    return np.tile(waveform, -(-num_samples // len(waveform)))[:num_samples]


def require_sample_rate(clips: Sequence[Clip], who: str) -> None:
    """Raise ``ValueError`` naming the first clip that is not at 16 kHz (``who``: e.g. "countermeasures take")."""
    for clip in clips:
        if clip.sample_rate != TARGET_SAMPLE_RATE:
            raise ValueError(f"{clip.id}: {who} {TARGET_SAMPLE_RATE} Hz audio, got {clip.sample_rate} Hz "
                             "(load it with apallm.load_audio)")


class CMDetector(Detector):
    """A countermeasure checkpoint (see :func:`apallm.cm.load_cm`) that scores clips.

    Args:
        checkpoint: package checkpoint folder.
        batch_size: crops per forward pass.
        device: torch device to run on.

    :meth:`score` gives P(spoof) (softmax over the two logits), as every apallm detector does;
    :meth:`bonafide_logits` gives the raw bona fide logit, the score AASIST's evaluation writes
    (higher = more bona fide), and :meth:`logits` both logits (the log-odds of bona fide against spoof
    is their difference, ``logits[:, 1] - logits[:, 0]``).
    """

    def __init__(self, checkpoint: str | os.PathLike, *, batch_size: int = 16,
                 device: str | torch.device = "cpu"):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.config = read_cm_config(checkpoint)
        self.name = self.config["name"]
        # channels-last convolution weights let oneDNN skip a layout conversion per layer: about a third
        # faster on CPU, the same results up to float32 rounding
        self.model = load_cm(checkpoint, device=device).to(memory_format=torch.channels_last)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.crop_samples = int(self.model.config.nb_samp)

    def logits(self, clips: Sequence[Clip]) -> np.ndarray:
        """``(len(clips), 2)`` float array of logits, column 0 = spoof, column 1 = bona fide."""
        clips = as_clips(clips)
        require_sample_rate(clips, "countermeasures take")
        out = np.empty((len(clips), 2), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(clips), self.batch_size):
                batch = np.stack([fixed_crop(c.waveform, self.crop_samples)
                                  for c in clips[start:start + self.batch_size]])
                out[start:start + len(batch)] = self.model(torch.from_numpy(batch).to(self.device)).cpu().numpy()
        return out

    def bonafide_logits(self, clips: Sequence[Clip]) -> np.ndarray:
        """The bona fide logit per clip (higher = more bona fide): the ASVspoof score of the reference."""
        return self.logits(clips)[:, BONAFIDE_INDEX]

    def score(self, clips: Sequence[Clip]) -> np.ndarray:
        """P(spoof) per clip: the softmax of the two logits."""
        return torch.softmax(torch.from_numpy(self.logits(clips)), dim=1)[:, SPOOF_INDEX].numpy().astype(np.float64)


def _named_factory(name: str):
    def factory(checkpoint: str | os.PathLike, **kwargs) -> CMDetector:
        detector = CMDetector(checkpoint, **kwargs)
        if detector.name != name:
            raise CheckpointError(f"{checkpoint} holds a {detector.name!r} model, not {name!r}: "
                                  f"load it as load_detector({detector.name!r}, checkpoint=...)")
        return detector

    factory.__doc__ = f"The {name!r} countermeasure from a package checkpoint folder (see CMDetector)."
    return factory


aasist = register_detector("aasist")(_named_factory("aasist"))
aasist_l = register_detector("aasist-l")(_named_factory("aasist-l"))

"""DNSMOS P.835 (Reddy, Gopal and Cutler, ICASSP 2022; ONNX models MIT, from the ``speechmos`` package) as a
side feature: SIG, BAK and OVRL predicted quality of a clip, run with ``onnxruntime`` from the prepared
cache (``apallm models prepare dnsmos``). The input is Whisper-free: the model reads 9.01-s segments of the
16 kHz waveform (shorter clips are tiled) and its own features; scores are averaged over hops of 1 s."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from apallm.frontends.base import require

SEGMENT = int(9.01 * 16000)


class DNSMOS:
    def __init__(self, folder: str | os.PathLike):
        ort = require("onnxruntime", "DNSMOS")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(Path(folder) / "sig_bak_ovr.onnx"), options,
                                            providers=["CPUExecutionProvider"])

    def score(self, waveform: np.ndarray) -> np.ndarray:
        """``(3,)`` raw SIG, BAK, OVRL model outputs of a 16 kHz waveform (before the P.835 polynomial fit)."""
        w = np.asarray(waveform, dtype=np.float32)
        while len(w) < SEGMENT:
            w = np.concatenate([w, w])
        starts = range(0, max(1, int((len(w) - SEGMENT) / 16000) + 1))
        batch = np.stack([w[s * 16000:s * 16000 + SEGMENT] for s in starts][:10])
        name = self.session.get_inputs()[0].name
        return self.session.run(None, {name: batch})[0].mean(axis=0).astype(np.float32)

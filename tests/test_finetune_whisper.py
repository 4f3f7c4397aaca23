"""The partial fine-tuning experiment (experiments/finetune_whisper.py): its cached frozen pass and trainable last
layer give exactly the features the default detector pools, and its folds hold out whole sources."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_WHISPER

from apallm.frontends.base import pool_states
from apallm.synth import speech_like

ROOT = Path(__file__).resolve().parents[1]
@pytest.fixture(scope="module")
def fw():
    spec = importlib.util.spec_from_file_location("finetune_whisper", ROOT / "experiments" / "finetune_whisper.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["finetune_whisper"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def frontend():
    from transformers import WhisperConfig, WhisperModel

    from apallm.frontends.whisper import WhisperFrontEnd

    torch.manual_seed(0)
    return WhisperFrontEnd(WhisperModel(WhisperConfig(**dict(TINY_WHISPER, encoder_layers=3))).get_encoder())


@pytest.mark.parametrize("seconds", [2.0, 33.0])  # one piece, and two (the encoder reads 30 s at a time)
def test_cached_pass_and_last_layer_give_the_detectors_pooled_features(fw, frontend, seconds):
    wave = speech_like(seconds, seed=1)
    pieces, frozen_states = fw.frozen_pass(frontend, wave)
    assert len(pieces) == (2 if seconds > 30 else 1) and all(p.dtype == np.float16 for p in pieces)
    reference = pool_states(frontend.frame_states(wave[None])[0])  # what the shipped detector pools
    frozen = pool_states(frozen_states)
    np.testing.assert_allclose(frozen.numpy(), reference[:len(frozen)].numpy(), rtol=1e-4, atol=1e-5)
    with torch.inference_mode():
        last = fw.LastLayer(frontend)([torch.from_numpy(p.astype(np.float32)) for p in pieces])
    # the last layer reads a float16 copy of its input: close to the float32 pass, not bit-equal
    np.testing.assert_allclose(last.numpy(), reference[len(frozen):].numpy(), rtol=0, atol=2e-2)


def test_lora_starts_as_the_frozen_layer_and_trains_only_its_adapters(fw, frontend):
    pieces = [torch.randn(40, 16)]
    base, lora = fw.LastLayer(frontend), fw.LastLayer(frontend, lora=4)
    with torch.inference_mode():
        torch.testing.assert_close(lora(pieces), base(pieces))
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert all(p.requires_grad for p in base.parameters())  # without LoRA the whole layer trains
    lora(pieces).sum().backward()
    assert frontend.encoder.layers[-1].fc1.weight.grad is None  # the detector's own encoder is never touched


def test_folds_hold_out_whole_sources_and_realworld_dev_sources_alone(fw):
    groups = ["rw-a", "rw-b", "t1", "t2", "t3", "t4", "t5", "t1", "rw-a"]
    corpus = [fw.REALWORLD, fw.REALWORLD] + [fw.CORPUS] * 6 + [fw.REALWORLD]
    meta = [{"id": str(k), "label": "bonafide", "group": g, "corpus": c}
            for k, (g, c) in enumerate(zip(groups, corpus, strict=True))]
    folds = fw.source_folds(fw.fold_items(meta), 2)
    assert folds[:2] == [["rw-a"], ["rw-b"]]
    flat = [s for f in folds for s in f]
    assert sorted(flat) == sorted(set(groups)) and len(flat) == len(set(flat))
    assert len(folds) == 4

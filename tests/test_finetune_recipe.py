"""The full fine-tuning recipe (train/finetune_aasist.py): what it packs for the GPU machine is what the default
detector scores, and a held-out source never reaches training."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from apallm.cm.codecs import CodecConfig, random_round_trip
from apallm.cm.default import clip_crops
from apallm.synth import speech_like

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fa():
    spec = importlib.util.spec_from_file_location("finetune_aasist", ROOT / "train" / "finetune_aasist.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["finetune_aasist"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seconds", [1.5, 6.0, 11.0])
def test_the_stored_span_gives_the_same_crops_as_the_whole_clip(fa, seconds):
    wave = speech_like(seconds, seed=3)
    span = fa.stored_span(wave)
    assert len(span) <= 2 * fa.CROP
    np.testing.assert_array_equal(fa.crops_of(span), clip_crops(wave, fa.CROP, "windows", 2))


def test_pack_round_trip_remakes_the_recipes_codec_copies_and_holds_out_whole_sources(fa, tmp_path):
    waves = [speech_like(s, seed=k) for k, s in enumerate([1.2, 9.5, 2.0, 3.0])]
    meta = [{"id": "rw/a1", "label": "bonafide", "group": "A", "original": True, "local": False, "codec_seeds": [7]},
            {"id": "rw/a2", "label": "spoof", "group": "A", "original": True, "local": False, "codec_seeds": [8]},
            {"id": "rw/b1", "label": "bonafide", "group": "B", "original": True, "local": False, "codec_seeds": [9]},
            {"id": "tts/x", "label": "spoof", "group": "local-tts", "original": False, "local": True,
             "codec_seeds": [10]}]
    fa.write_pack(list(zip(meta, waves, strict=True)), tmp_path / "pack.npz")
    got_meta, got = fa.load_pack(tmp_path / "pack.npz", workers=1)

    assert [m["id"] for m in got_meta] == ["rw/a1", "rw/a2", "rw/b1", "tts/x", "rw/a1#0", "rw/a2#0", "rw/b1#0",
                                           "tts/x#0"]
    for k, wave in enumerate(waves):  # lossless up to 16-bit rounding
        assert np.abs(got[k] - fa.stored_span(wave)).max() <= 1 / 32767
    copy = random_round_trip(got[1], np.random.default_rng(8), CodecConfig())[0]
    np.testing.assert_array_equal(got[5], copy)
    assert not got_meta[5]["original"] and got_meta[5]["copy"]

    v = fa.Variant("v")
    train, labels = fa.training_set(got_meta, got, v, held_out="A")
    assert len(train) == 4 and labels == [1, 0, 1, 0]  # B, the local spoof and their copies (1 = bona fide)
    train, _ = fa.training_set(got_meta, got, fa.Variant("v", local=False, codec=False), held_out="A")
    assert len(train) == 1 and train[0] is got[2]

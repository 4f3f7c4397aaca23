"""The full fine-tuning experiment (experiments/finetune_aasist.py): what it packs for the GPU machine is what the
default detector scores, taken from the default detector recipe's clip list, and a held-out source never reaches
training."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from apallm.cm.codecs import CodecConfig, random_round_trip
from apallm.cm.default import clip_crops
from apallm.synth import speech_like

ROOT = Path(__file__).resolve().parents[1]


def load_script(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fa():
    return load_script("finetune_aasist", ROOT / "experiments" / "finetune_aasist.py")


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


def test_pack_takes_realworld_dev_and_the_local_spoofs_from_the_recipes_clip_list(fa, tmp_path):
    dd = load_script("default_detector_recipe_for_pack", ROOT / "train" / "default_detector.py")
    paths = []
    for k in range(4):
        paths.append(tmp_path / f"clip{k}.wav")
        sf.write(paths[-1], speech_like(1.0, seed=k), 16000)
    items = [dd.Item("rw/audio/a.wav", str(paths[0]), "bonafide", "A", "bonafide"),
             dd.Item("tc/audio/b.wav", str(paths[1]), "spoof", "B", "vits", corpus=dd.CORPUS),
             dd.Item("tts/v/s00", str(paths[2]), "spoof", dd.LOCAL, "v", original=False, corpus=dd.LOCAL),
             dd.Item("voc/griffin-lim/rw/audio/a.wav", str(paths[3]), "spoof", "A", "griffin-lim", original=False)]
    work = tmp_path / "work"
    work.mkdir()
    dd.write_items(work / "items.jsonl", items)
    fa.pack(SimpleNamespace(work=work, out=tmp_path / "pack.npz", codec_copies=1, seed=0))
    meta, waves = fa.load_pack(tmp_path / "pack.npz", workers=1)
    packed = [m for m in meta if not m["copy"]]
    assert [m["id"] for m in packed] == ["rw/audio/a.wav", "tts/v/s00", "voc/griffin-lim/rw/audio/a.wav"]
    assert [(m["group"], m["original"], m["local"]) for m in packed] == [("A", True, False), ("local-tts", False, True),
                                                                        ("A", False, False)]
    assert len(waves) == 6  # three clips and one codec copy of each
    with pytest.raises(SystemExit, match="items.jsonl not found"):
        fa.pack(SimpleNamespace(work=tmp_path / "elsewhere", out=tmp_path / "p.npz", codec_copies=1, seed=0))

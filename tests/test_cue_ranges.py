"""eval/cue_ranges.py's per-cue table: natural ranges from bona fide clips only, AUCs judged on held-out sources."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cr():
    spec = importlib.util.spec_from_file_location("cue_ranges", ROOT / "eval" / "cue_ranges.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cue_table_cites_a_cue_that_separates_on_unseen_sources_and_not_one_that_flips(cr):
    rng = np.random.default_rng(0)
    groups = np.repeat(["a", "b", "c", "d"], 50)
    spoof = np.tile(np.r_[np.zeros(25, bool), np.ones(25, bool)], 4)
    separates = rng.normal(size=200) + 3.0 * spoof  # higher for spoof in every source
    # higher for spoof in sources a and b, lower in c and d: pooled it looks useful, on unseen sources it is not
    flips = rng.normal(size=200) + np.where(np.isin(groups, ["a", "b"]), 3.0, -3.0) * spoof
    noise = rng.normal(size=200)
    noise[:5] = np.nan  # an unmeasured value is left out, not counted
    args = SimpleNamespace(low=5.0, high=95.0, min_auc=0.65)
    table = cr.cue_table(["separates", "flips", "noise"], np.c_[separates, flips, noise], spoof, groups, args)
    assert table["separates"]["cite"] and table["separates"]["loso_auc"] > 0.95
    assert table["separates"]["direction"] == "higher for spoof"
    lo, hi = table["separates"]["natural_range"]
    assert (lo, hi) == pytest.approx(tuple(np.percentile(separates[~spoof], [5, 95])))
    assert not table["flips"]["cite"] and table["flips"]["loso_auc"] < 0.5
    assert not table["noise"]["cite"] and table["noise"]["n"] == 195


def test_write_yaml_writes_region_ranges_and_flags_and_a_rerun_changes_nothing(cr, tmp_path):
    import yaml

    path = tmp_path / "cues.yaml"
    shipped = (ROOT / "prompts" / "cues.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(line for line in shipped if not line.startswith("  region_")), encoding="utf-8")
    specs = yaml.safe_load(path.read_text(encoding="utf-8"))
    whole = {n: {"natural_range": s["range"], "cite": bool(s.get("cite", True)), "loso_auc": 0.6}
             for n, s in specs.items()}
    region = {"hf_phase_spread": {"natural_range": [0.9412, 2.3767], "cite": False, "loso_auc": 0.64},
              "pause_ratio": {"natural_range": [0.0, 0.6667], "cite": True, "loso_auc": 0.7}}
    results = {"cues": whole, "cues_in_region": {"cues": region}}
    cr.write_yaml(results, path)
    after = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert after["hf_phase_spread"]["region_range"] == [0.941, 2.377]  # in the cue's own format
    assert after["hf_phase_spread"]["region_cite"] is False and after["pause_ratio"]["region_cite"] is True
    rest = {k: v for k, v in after["hf_phase_spread"].items() if not k.startswith("region_")}
    assert rest == specs["hf_phase_spread"]
    assert "region_range" not in after["bandwidth_hz"]  # no in-region figure: nothing written
    assert cr.write_yaml(results, path) == 0  # the same results again: the same file
    region["pause_ratio"]["cite"] = False
    assert cr.write_yaml(results, path) == 1
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["pause_ratio"]["region_cite"] is False


def test_informativeness_ceiling_takes_cues_that_flag_spoofs_and_stops_at_the_bona_fide_limit(cr):
    rng = np.random.default_rng(1)
    spoof = np.r_[np.zeros(500, bool), np.ones(500, bool)]
    strong = np.where(spoof, rng.random(1000) < 0.6, rng.random(1000) < 0.1)  # flags 60 % of spoofs, 10 % of bona fide
    useless = rng.random(1000) < 0.1  # flags both alike: never worth its bona fide cost
    loud = np.where(spoof, rng.random(1000) < 0.9, rng.random(1000) < 0.5)  # would break the bona fide limit
    outside = np.c_[useless, strong, loud]
    ceiling = cr.informativeness_ceiling(["useless", "strong", "loud"], outside, spoof, max_bonafide=0.3)
    assert [s["cue"] for s in ceiling["steps"]] == ["strong"]
    assert ceiling["spoof"] == pytest.approx(strong[spoof].mean())
    assert ceiling["bonafide"] == pytest.approx(strong[~spoof].mean()) and ceiling["bonafide"] <= 0.3
    table = {"a": {"natural_range": [0.0, 1.0]}}
    assert cr.outside_matrix(["a"], np.array([[-1.0], [0.5], [2.0], [np.nan]]), table)[:, 0].tolist() == [
        True, False, True, False]

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

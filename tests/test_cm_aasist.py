"""AASIST / AASIST-L architecture: parameter counts, shapes, published names, frequency masking."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from apallm.cm.aasist import AASIST, AASIST_BASE, AASIST_L, AASISTConfig, count_trainable_parameters

OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "models" / "aasist-official"


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {"aasist": AASIST(AASIST_BASE).eval(), "aasist-l": AASIST(AASIST_L).eval()}


def test_trainable_parameter_counts_are_the_published_ones(models):
    assert count_trainable_parameters(models["aasist"]) == 297_866
    assert count_trainable_parameters(models["aasist-l"]) == 85_306


@pytest.mark.parametrize("name", ["aasist", "aasist-l"])
@pytest.mark.parametrize("length", [AASIST_BASE.min_samples, 16_000, 64_600])
def test_logits_shape_for_several_input_lengths(models, name, length):
    batch = 2 if length < 64_600 else 1
    with torch.inference_mode():
        out = models[name](torch.randn(batch, length) * 0.1)
    assert out.shape == (batch, 2)
    assert torch.isfinite(out).all()


def test_minimum_length_and_input_rank_are_checked(models):
    model = models["aasist-l"]
    assert AASIST_BASE.min_samples == 2315
    with pytest.raises(ValueError, match="at least 2315 samples"):
        model(torch.zeros(1, 2314))
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        model(torch.zeros(16_000))


def test_batch_items_are_scored_independently_in_eval_mode(models):
    x = torch.randn(3, 8000) * 0.1
    with torch.inference_mode():
        together = models["aasist"](x)
        alone = models["aasist"](x[1:2])
    torch.testing.assert_close(together[1:2], alone, rtol=1e-4, atol=1e-5)


def test_sinc_filters_are_fixed_band_passes_and_not_in_the_state_dict(models):
    bank = models["aasist"].conv_time
    assert bank.filters.shape == (70, 1, 129)  # first_conv 128 is raised to an odd length
    assert not any("filters" in key for key in models["aasist"].state_dict())
    assert not bank.filters.requires_grad and not list(bank.parameters())
    torch.testing.assert_close(bank.filters, bank.filters.flip(-1))  # symmetric: linear phase
    # contiguous bands from 0 Hz to Nyquist: the band-passes telescope to the windowed all-pass (an impulse)
    impulse = torch.zeros(129)
    impulse[64] = 1.0
    torch.testing.assert_close(bank.filters.sum(dim=0)[0], impulse, rtol=0, atol=1e-5)


def test_frequency_band_masking_is_seeded_and_changes_the_output(models):
    model = models["aasist-l"]
    x = torch.randn(1, 8000) * 0.1
    with torch.inference_mode():
        plain = model(x)
        a = model(x, freq_mask_rng=np.random.default_rng(3))
        b = model(x, freq_mask_rng=np.random.default_rng(3))
        masked = [model(x, freq_mask_rng=np.random.default_rng(seed)) for seed in range(4)]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.allclose(m, plain) for m in masked)


def test_config_round_trip_and_errors():
    assert AASISTConfig.from_dict(AASIST_L.to_dict()) == AASIST_L
    assert json.loads(json.dumps(AASIST_BASE.to_dict()))["filts"] == [70, [1, 32], [32, 32], [32, 64], [64, 64]]
    with pytest.raises(ValueError, match="unknown AASIST model_config keys: nb_samps"):
        AASISTConfig.from_dict({"nb_samps": 64600})
    with pytest.raises(ValueError, match="not 'AASIST'"):
        AASISTConfig.from_dict({"architecture": "RawNet2"})
    with pytest.raises(ValueError, match="pool_ratios"):
        AASISTConfig(pool_ratios=(0.5, 0.0, 0.5, 0.5))


@pytest.mark.skipif(not OFFICIAL.is_dir(), reason="../shared/models/aasist-official is absent")
@pytest.mark.parametrize("stem, preset", [("AASIST", AASIST_BASE), ("AASIST-L", AASIST_L)])
def test_published_conf_and_state_dict_names_match(stem, preset):
    conf = json.loads((OFFICIAL / f"{stem}.conf").read_text())["model_config"]
    assert AASISTConfig.from_dict(conf) == preset
    state = torch.load(OFFICIAL / f"{stem}.pth", map_location="cpu", weights_only=True)
    model_state = AASIST(preset).state_dict()
    assert list(model_state) == list(state)
    assert all(model_state[k].shape == v.shape for k, v in state.items())

"""SSL front-end + AASIST back-end, and wavelet prompt tuning: shapes, layer choice, checkpoints, freezing."""

import json

import pytest
import torch

from apallm.cm import CMDetector, load_cm, save_cm
from apallm.cm.ssl import SSLAASIST, TINY_WAV2VEC2, XLSR_300M_WAV2VEC2, SSLAASISTConfig
from apallm.cm.wpt import WPTSSLAASIST, WPTConfig, haar_dwt, trainable_parameter_ratio

#: a small back-end keeps these tests fast; the SSL encoder is TINY_WAV2VEC2 (2 layers, hidden 32)
SMALL = {"proj_dim": 24, "filts": ((1, 8), (8, 8), (8, 16), (16, 16)), "gat_dims": (16, 8)}


def _randomise_batch_norm(model):
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize("layer", ["last", 0, 1, -1, "weighted"])
def test_output_shapes_for_each_layer_choice(layer):
    torch.manual_seed(0)
    model = SSLAASIST(SSLAASISTConfig(layer=layer, **SMALL)).eval()
    for length in (3200, 16000, 64600):
        assert model(torch.randn(3, length) * 0.1).shape == (3, 2)
    assert hasattr(model, "layer_weights") == (layer == "weighted")


def test_layer_choice_selects_different_features():
    torch.manual_seed(0)
    model = SSLAASIST(SSLAASISTConfig(layer="last", **SMALL)).eval()
    x = torch.randn(2, 16000) * 0.1
    with torch.no_grad():
        states = model.ssl_model(x, output_hidden_states=True).hidden_states
        assert len(states) == TINY_WAV2VEC2["num_hidden_layers"] + 1
        for layer in (0, 1, -1):
            object.__setattr__(model.config, "layer", layer)
            assert torch.equal(model.ssl_features(x), states[layer])
        object.__setattr__(model.config, "layer", "last")
        assert torch.equal(model.ssl_features(x), model.ssl_model(x).last_hidden_state)


def test_weighted_layers_are_a_softmax_mixture():
    torch.manual_seed(0)
    model = SSLAASIST(SSLAASISTConfig(layer="weighted", **SMALL)).eval()
    x = torch.randn(2, 16000) * 0.1
    with torch.no_grad():
        model.layer_weights.copy_(torch.tensor([0.0, 1.0, 2.0]))
        states = model.ssl_model(x, output_hidden_states=True).hidden_states
        w = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), dim=0)
        expected = sum(wi * s for wi, s in zip(w, states, strict=True))
        assert torch.allclose(model.ssl_features(x), expected, atol=1e-6)


def test_invalid_configs_are_refused():
    with pytest.raises(ValueError, match="out of range"):
        SSLAASISTConfig(layer=3)
    with pytest.raises(ValueError, match="layer must be"):
        SSLAASISTConfig(layer="first")
    with pytest.raises(ValueError, match="model_type"):
        SSLAASISTConfig(ssl_config={"model_type": "bert"})
    with pytest.raises(ValueError, match="unknown"):
        SSLAASISTConfig.from_dict({"architecture": "SSL-AASIST", "layers": 1})
    with pytest.raises(ValueError, match="even"):
        WPTConfig(wavelet_tokens=3)


@pytest.mark.parametrize("cls,config", [(SSLAASIST, SSLAASISTConfig(layer="weighted", **SMALL)),
                                        (WPTSSLAASIST, WPTConfig(layer=1, **SMALL))])
def test_save_load_round_trip_gives_identical_logits(tmp_path, cls, config):
    torch.manual_seed(0)
    model = cls(config).eval()
    _randomise_batch_norm(model)
    if isinstance(model, WPTSSLAASIST):
        with torch.no_grad():
            model.prompts.normal_()
    folder = save_cm(model, tmp_path / "ckpt", name="tiny-ssl", provenance={"source": "test"})
    stored = json.loads((folder / "config.json").read_text())
    assert stored["architecture"] == cls.architecture
    assert stored["model_config"]["ssl_config"]["hidden_size"] == TINY_WAV2VEC2["hidden_size"]
    torch.manual_seed(1)  # a different random init: the loaded weights must replace all of it
    loaded = load_cm(folder)
    assert type(loaded) is cls and loaded.config == model.config
    x = torch.randn(2, 16000) * 0.1
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    # the detector path (fixed crop of nb_samp samples) takes the SSL model as it takes AASIST
    from apallm.audio import load_audio

    clip = load_audio(x[0].numpy(), sample_rate=16000, clip_id="c")
    scores = CMDetector(folder).score([clip])
    assert scores.shape == (1,) and 0.0 <= scores[0] <= 1.0


def test_haar_dwt_is_orthonormal():
    p = torch.randn(3, 4, 5)
    low, high = haar_dwt(p)
    assert low.shape == high.shape == (3, 2, 5)
    assert torch.allclose(low[:, 0], (p[:, 0] + p[:, 1]) / 2 ** 0.5)
    assert torch.allclose(high[:, 1], (p[:, 2] - p[:, 3]) / 2 ** 0.5)
    assert torch.allclose(low.pow(2).sum() + high.pow(2).sum(), p.pow(2).sum(), atol=1e-5)


def test_prompts_reach_every_layer():
    torch.manual_seed(0)
    model = WPTSSLAASIST(WPTConfig(layer="last", **SMALL)).eval()
    x = torch.randn(2, 16000) * 0.1
    with torch.no_grad():
        before = model.ssl_features(x)
        assert before.shape[1] == int(model.ssl_model._get_feat_extract_output_lengths(16000))
        model.wavelet_prompts[-1].add_(1.0)  # only the last layer's prompts
        assert not torch.allclose(model.ssl_features(x), before)


def test_wpt_training_leaves_the_encoder_untouched():
    torch.manual_seed(0)
    model = WPTSSLAASIST(WPTConfig(layer="weighted", **SMALL))
    encoder = {k: v.clone() for k, v in model.ssl_model.state_dict().items()}
    prompts, wavelet = model.prompts.detach().clone(), model.wavelet_prompts.detach().clone()
    head = model.out_layer.weight.detach().clone()
    assert all(not p.requires_grad for p in model.ssl_model.parameters())
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    assert not model.ssl_model.training
    x, y = torch.randn(4, 16000) * 0.1, torch.tensor([0, 1, 0, 1])
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    assert all(torch.equal(encoder[k], v) for k, v in model.ssl_model.state_dict().items())
    assert not torch.equal(prompts, model.prompts) and not torch.equal(wavelet, model.wavelet_prompts)
    assert not torch.equal(head, model.out_layer.weight)


def test_trainable_ratio_is_correct_and_small():
    torch.manual_seed(0)
    model = WPTSSLAASIST(WPTConfig(**SMALL))
    encoder = sum(p.numel() for p in model.ssl_model.parameters())
    backend = sum(p.numel() for n, p in model.named_parameters()
                  if not n.startswith("ssl_model.") and n not in ("prompts", "wavelet_prompts"))
    prompts = TINY_WAV2VEC2["num_hidden_layers"] * 10 * TINY_WAV2VEC2["hidden_size"]
    ratio = trainable_parameter_ratio(model)
    assert ratio["trainable"] == backend + prompts
    assert ratio["full_finetune"] == encoder + backend
    assert ratio["ratio"] == pytest.approx((backend + prompts) / (encoder + backend))
    # the XLS-R 300M architecture with the published back-end, on the meta device (no memory, no download):
    # about 0.2 % of full fine-tuning, the order of the paper's "458x fewer"
    with torch.device("meta"):
        big = WPTSSLAASIST(WPTConfig(ssl_config=XLSR_300M_WAV2VEC2))
    ratio = trainable_parameter_ratio(big)
    assert 300e6 < ratio["full_finetune"] < 330e6
    assert ratio["ratio"] < 0.005 and ratio["fewer_x"] > 200

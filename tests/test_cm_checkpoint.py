"""Package checkpoints: published .pth -> safetensors -> load gives the same model; errors are specific."""

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from apallm.cm import (
    AASIST,
    AASIST_L,
    CheckpointError,
    import_aasist,
    load_cm,
    load_published_aasist,
    read_cm_config,
    save_cm,
)

OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "models" / "aasist-official"


def _published_style(tmp_path, config=AASIST_L, seed=0):
    """A random AASIST-L saved the way the published files are: a plain state dict and a .conf."""
    torch.manual_seed(seed)
    model = AASIST(config).eval()
    for module in model.modules():  # non-trivial batch-norm statistics, so they must round-trip too
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    pth, conf = tmp_path / "AASIST-L.pth", tmp_path / "AASIST-L.conf"
    torch.save(model.state_dict(), pth)
    conf.write_text(json.dumps({"batch_size": 24, "model_config": config.to_dict()}))
    return model, pth, conf


def _assert_same_outputs(a, b):
    x = torch.randn(2, 8000) * 0.1
    with torch.inference_mode():
        assert torch.equal(a(x), b(x))


def test_import_round_trip_gives_identical_outputs(tmp_path):
    original, pth, conf = _published_style(tmp_path)
    out = import_aasist(pth, conf, tmp_path / "ckpt")
    assert sorted(p.name for p in out.iterdir()) == ["LICENSE", "config.json", "model.safetensors"]
    loaded = load_cm(out)
    assert not loaded.training
    direct = AASIST(AASIST_L).eval()
    direct.load_state_dict(torch.load(pth, map_location="cpu", weights_only=True))
    _assert_same_outputs(direct, loaded)
    _assert_same_outputs(original, loaded)
    for key, tensor in load_file(out / "model.safetensors").items():
        assert torch.equal(tensor, original.state_dict()[key])

    config = read_cm_config(out)
    assert config["name"] == "aasist-l" and config["architecture"] == "AASIST"
    assert config["trainable_parameters"] == 85_306
    assert config["logit_labels"] == {"spoof": 0, "bonafide": 1}
    provenance = config["provenance"]
    assert provenance["license"] == "MIT" and "NAVER Corp." in provenance["license_notice"]
    assert "Permission is hereby granted" in (out / "LICENSE").read_text()
    assert provenance["imported_from"]["weights"] == "AASIST-L.pth"
    assert len(provenance["imported_from"]["weights_sha256"]) == 64


@pytest.mark.skipif(not OFFICIAL.is_dir(), reason="../shared/models/aasist-official is absent")
@pytest.mark.parametrize("stem, name", [("AASIST", "aasist"), ("AASIST-L", "aasist-l")])
def test_import_of_the_published_weights(tmp_path, stem, name):
    out = import_aasist(OFFICIAL / f"{stem}.pth", OFFICIAL / f"{stem}.conf", tmp_path / name)
    assert read_cm_config(out)["name"] == name
    assert (out / "LICENSE").read_text() == (OFFICIAL / "LICENSE").read_text()
    _assert_same_outputs(load_published_aasist(OFFICIAL / f"{stem}.pth", OFFICIAL / f"{stem}.conf"), load_cm(out))


def test_pickled_objects_are_refused(tmp_path):
    _, pth, conf = _published_style(tmp_path)
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as fh:  # a pickle that would call a function when fully unpickled
        pickle.dump({"weights": Path("/tmp")}, fh, protocol=2)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        import_aasist(evil, conf, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_mismatched_weights_and_config_are_refused(tmp_path):
    _, pth, _ = _published_style(tmp_path)
    base_conf = tmp_path / "AASIST.conf"
    base_conf.write_text(json.dumps({"model_config": AASIST().config.to_dict()}))
    with pytest.raises(CheckpointError, match="has shape"):
        import_aasist(pth, base_conf, tmp_path / "out")
    partial = tmp_path / "partial.pth"
    state = torch.load(pth, weights_only=True)
    del state["out_layer.bias"]
    torch.save(state, partial)
    with pytest.raises(CheckpointError, match="1 missing .*out_layer.bias"):
        load_published_aasist(partial, tmp_path / "AASIST-L.conf")
    custom = tmp_path / "custom.conf"
    custom.write_text(json.dumps({"model_config": {**AASIST_L.to_dict(), "nb_samp": 32000}}))
    with pytest.raises(CheckpointError, match="give the checkpoint a name"):
        import_aasist(pth, custom, tmp_path / "out")
    assert read_cm_config(import_aasist(pth, custom, tmp_path / "out", name="aasist-l-2s"))["name"] == "aasist-l-2s"


def test_load_cm_errors_are_specific(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        load_cm(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="no config.json"):
        load_cm(tmp_path)
    model = AASIST(AASIST_L)
    out = save_cm(model, tmp_path / "ckpt", name="aasist-l", provenance={"source": "test"})
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_cm(out)
    (out / "config.json").write_text(json.dumps({**config, "architecture": "RawNet2"}))
    with pytest.raises(CheckpointError, match="unknown countermeasure architecture 'RawNet2'"):
        load_cm(out)
    (out / "config.json").write_text(json.dumps(config))
    (out / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="unreadable safetensors"):
        load_cm(out)

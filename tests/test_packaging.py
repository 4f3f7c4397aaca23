"""The installed package must carry every subpackage and its data files."""

from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_installation():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "apallm").rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert "apallm.prompts" in listed


def test_prompt_data_ships_with_the_package():
    from importlib import resources

    names = {p.name for p in resources.files("apallm.prompts").iterdir()}
    assert {"cues.yaml", "allm.yaml"} <= names


def test_torch_trio_is_pinned_exactly_and_the_installed_trio_matches_and_loads():
    """torch, torchaudio and torchvision load only as a matching trio (torchaudio 2.11.1 fails beside torch
    2.11.0): pyproject pins each exactly, and the environment under test has exactly those and imports them."""
    import importlib
    import re
    from importlib.metadata import version

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        m = re.match(r"(torchaudio|torchvision|torch)\s*(.*)$", dep)
        if m:
            assert re.fullmatch(r"==\d+\.\d+\.\d+", m.group(2).strip()), f"pin {dep!r} exactly (==X.Y.Z)"
            pins[m.group(1)] = m.group(2).strip()[2:]
    assert set(pins) == {"torch", "torchaudio", "torchvision"}
    for name, pinned in pins.items():
        assert version(name).split("+")[0] == pinned, f"{name} {version(name)} installed, {pinned} pinned"
        importlib.import_module(name)
    import torchaudio.functional  # noqa: F401  (loads libtorchaudio, which breaks first on a mismatch)


@pytest.mark.slow
def test_a_torchaudio_that_does_not_load_breaks_only_the_torchaudio_resampler(tmp_path):
    """As torchaudio 2.11.1 beside torch 2.11.0 does: importing it raises 'undefined symbol'."""
    import os
    import subprocess
    import sys

    fake = tmp_path / "torchaudio"
    fake.mkdir()
    (fake / "__init__.py").write_text('raise OSError("libtorchaudio.so: undefined symbol: torch_exception_get_what")\n')
    code = (
        "import numpy as np, warnings\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    import apallm.training.grpo, transformers.audio_utils\n"
        "assert any('torchaudio does not load' in str(w.message) for w in seen), [str(w.message) for w in seen]\n"
        "from apallm.audio import load_audio\n"
        "load_audio(np.full(22050, 0.1, np.float32), sample_rate=22050)\n"
        "try:\n"
        "    load_audio(np.full(22050, 0.1, np.float32), sample_rate=22050, resampler='torchaudio')\n"
        "except RuntimeError as exc:\n"
        "    assert 'undefined symbol' in str(exc) and 'pip install' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('the torchaudio resampler should refuse')\n"
        "print('ok')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]

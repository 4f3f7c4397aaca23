"""The installed package must carry every subpackage and its data files."""

from pathlib import Path

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

"""Files shipped with apallm: the example clip used by the README quick start."""

from importlib import resources
from pathlib import Path


def example_path() -> Path:
    """Path of the bundled example: espeak-ng speech made by this project (true label: spoof)."""
    return Path(str(resources.files("apallm.data").joinpath("example_espeak.flac")))

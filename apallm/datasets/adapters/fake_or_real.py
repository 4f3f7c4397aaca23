"""Fake-or-Real (FoR; Reimao and Tzerpos, 2019), labelled by its folders.

Expected layout: ``ROOT`` is one version folder, or the folder holding several versions (``for-norm``,
``for-2sec``/``for-2seconds``, ``for-rerec``/``for-rerecorded``, ``for-original``)::

    <version>/training/real/*.wav      <version>/training/fake/*.wav
    <version>/validation/real/...      <version>/validation/fake/...
    <version>/testing/real/...         <version>/testing/fake/...

``training``/``validation``/``testing`` become ``split`` ``train``/``dev``/``eval``; ``real``/``fake`` the label.
Every audio file below a ``real``/``fake`` folder counts (for-original mixes .wav and .mp3). The corpus
names no TTS system per file, so ``attack`` is null for spoofs. ``id`` is the path below ``ROOT`` without
extension. Option ``version`` keeps one version folder.
"""

from __future__ import annotations

from pathlib import Path

from apallm.datasets.adapters._common import audio_files, make_entry, relative_id
from apallm.datasets.errors import LayoutError
from apallm.datasets.manifest import BONAFIDE, SPOOF, ManifestEntry

NAME = "fake_or_real"
SPLITS = ("train", "dev", "eval")
OPTIONS = {"version": "keep one version folder, e.g. for-norm"}
_SPLIT_FOLDERS = {"training": "train", "validation": "dev", "testing": "eval"}
_LABEL_FOLDERS = {"real": BONAFIDE, "fake": SPOOF}


def _is_version(folder: Path) -> bool:
    return any((folder / name).is_dir() for name in _SPLIT_FOLDERS)


def read(root: Path, split: str | None = None, version: str | None = None) -> list[ManifestEntry]:
    if version is not None:
        candidates = [root / version]
    elif _is_version(root):
        candidates = [root]
    else:
        candidates = sorted(p for p in root.iterdir() if p.is_dir())
    versions = [folder for folder in candidates if _is_version(folder)]
    if not versions:
        raise LayoutError(f"no Fake-or-Real version folder (with training/validation/testing) found in {root}"
                          + (f" named {version!r}" if version else ""), source=root)
    entries = []
    for folder in versions:
        for split_folder, split_name in _SPLIT_FOLDERS.items():
            if split and split_name != split:
                continue
            for label_folder, label in _LABEL_FOLDERS.items():
                for path in audio_files(folder / split_folder / label_folder):
                    entries.append(make_entry(path, None, id=relative_id(path, root), path=str(path), label=label,
                                              dataset=NAME, split=split_name, language="en"))
    return entries

"""Codecfake (Xie et al., 2024; xieyuankun/Codecfake), from its label files.

Expected layout (the repository README's "Data preparing" tree)::

    label/train.txt, label/dev.txt, label/C1.txt ... label/C7.txt, label/A1.txt ... label/A3.txt
    train/*.wav, dev/*.wav
    test/C1/*.wav ... test/C7/*.wav, test/A1/*.wav ... test/A3/*.wav   (or C1/ ... at ROOT)

Each label line is ``FILE LABEL INDEX``, whitespace-separated, with LABEL ``real`` or ``fake`` and INDEX the
codec number (0 for real speech), as the repository's ``raw_dataset.py`` reads it::

    SSB13650058.wav real 0
    F01_SSB13650058.wav fake 1

``split`` is the subset name (``train``, ``dev``, ``C1``...``C7`` codec test sets, ``A1``...``A3`` ALM test
sets). ``attack`` is ``F<INDEX>`` (``F01``...) in train/dev, where the index names the codec, and the
subset name in the test sets, each of which is one codec or audio language model. ``id`` is
``<subset>/<file stem>``, as test sets re-use file names.
"""

from __future__ import annotations

from pathlib import Path

from apallm.datasets.adapters._common import make_entry, parse_key, protocol_rows
from apallm.datasets.errors import LayoutError, ProtocolError
from apallm.datasets.manifest import SPOOF, ManifestEntry

NAME = "codecfake"
SPLITS = ("train", "dev", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "A1", "A2", "A3")


def _audio_folder(root: Path, subset: str) -> Path:
    if subset in ("train", "dev"):
        return root / subset
    top = root / subset
    return top if top.is_dir() else root / "test" / subset


def read(root: Path, split: str | None = None) -> list[ManifestEntry]:
    """Entries of one subset, or of every subset whose label file is present when ``split`` is None."""
    wanted = [split] if split else list(SPLITS)
    labels = {s: root / "label" / f"{s}.txt" for s in wanted if (root / "label" / f"{s}.txt").is_file()}
    if not labels or (split and split not in labels):
        raise LayoutError(f"no label file found; looked for {root / 'label'}/{{{','.join(wanted)}}}.txt",
                          source=root)
    entries = []
    for subset, label_file in labels.items():
        audio = _audio_folder(root, subset)
        for line, (name, key, index) in protocol_rows(label_file, 3):
            label = parse_key(key, label_file, line, bonafide="real", spoof="fake")
            if not index.isdigit():
                raise ProtocolError(f"codec index must be a number, got {index!r}", source=label_file, line=line)
            attack = None
            if label == SPOOF:
                attack = f"F{int(index):02d}" if subset in ("train", "dev") else subset
            entries.append(make_entry(label_file, line, id=f"{subset}/{Path(name).stem}", path=str(audio / name),
                                      label=label, dataset=NAME, attack=attack, split=subset))
    return entries

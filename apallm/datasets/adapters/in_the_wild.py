"""In-the-Wild (Müller et al., Interspeech 2022), from ``meta.csv``.

Expected layout (``ROOT`` is ``release_in_the_wild`` or the folder holding it)::

    release_in_the_wild/meta.csv
    release_in_the_wild/<file>            (0.wav, 1.wav, ...)

``meta.csv`` is comma-separated with the header ``file,speaker,label``; labels are ``bona-fide`` or ``spoof``::

    file,speaker,label
    0.wav,Alec Guinness,spoof
    2.wav,Barack Obama,bona-fide

The corpus names no attack systems and has no official split (it is used as an evaluation set), so
spoofs get ``attack`` null and every entry ``split`` null. ``id`` is the file name without extension.
"""

from __future__ import annotations

import csv
from pathlib import Path

from apallm.datasets.adapters._common import find_first, make_entry, parse_key
from apallm.datasets.errors import ProtocolError
from apallm.datasets.manifest import ManifestEntry

NAME = "in_the_wild"
HEADER = ["file", "speaker", "label"]


def read(root: Path, split: str | None = None) -> list[ManifestEntry]:
    meta = find_first(root, ["meta.csv", "release_in_the_wild/meta.csv"], "In-the-Wild meta.csv")
    entries = []
    with open(meta, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != HEADER:
            raise ProtocolError(f"header must be {','.join(HEADER)}, got {header!r}", source=meta, line=1)
        for cells in reader:
            line = reader.line_num
            if not cells:
                continue
            if len(cells) != 3:
                raise ProtocolError(f"expected 3 columns, found {len(cells)}: {cells!r}", source=meta, line=line)
            name, speaker, key = cells
            label = parse_key(key, meta, line, bonafide="bona-fide", spoof="spoof")
            entries.append(make_entry(meta, line, id=Path(name).stem, path=str(meta.parent / name), label=label,
                                      dataset=NAME, speaker=speaker or None, language="en"))
    return entries

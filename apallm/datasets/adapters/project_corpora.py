"""The project's two corpora of real speech and real deepfakes: ``realworld-dev`` and ``train-corpus``.

Both were gathered from public TTS, vocoder and voice-conversion demo pages and sample folders on GitHub (each
folder's README tells which and how) and share one layout::

    manifest.tsv
    audio/<source folder>/<file>          (wav, flac or mp3; 8 to 48 kHz; mono or stereo)
    provenance/<source folder>.md

``manifest.tsv`` is tab-separated with a header. The adapter reads ``path`` (relative to ROOT), ``label``
(``bonafide``/``spoof``), ``system`` (``ground_truth``, or the system that made the clip) and ``source_repo``
(the repository the clip was read from), and leaves the other columns (``license``, ``duration_s``,
``sample_rate``, ``channels``, ``notes``, ``source_commit``) alone::

    path    label    system    source_repo    license    duration_s    ...
    audio/vits-demo/wavs/ms_01_gt.wav    bonafide    ground_truth    jaywalnut310/vits-demo    ...
    audio/vits-demo/wavs/ms_01_ghf.wav    spoof    glow-tts+hifigan(finetuned)    jaywalnut310/vits-demo    ...

``id`` is the manifest's ``path`` (unique in a corpus), ``attack`` a spoof's ``system``, ``source`` the
``source_repo``: every source has its own channel, so leave-one-source-out evaluation holds one out at a time.
The corpora have no splits. Their licences allow no copy into a repository or a release: they are read where
they lie, by default ``shared/data/<name>`` beside the checkout, or the folder ``$APALLM_REALWORLD_DEV`` /
``$APALLM_TRAIN_CORPUS`` names (:func:`corpus_root`).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from apallm.datasets.adapters._common import find_first, make_entry, parse_key
from apallm.datasets.errors import DatasetError, ProtocolError
from apallm.datasets.manifest import BONAFIDE, ManifestEntry

REALWORLD_DEV, TRAIN_CORPUS = "realworld-dev", "train-corpus"
#: the environment variable that names each corpus's folder
ENVIRONMENT = {REALWORLD_DEV: "APALLM_REALWORLD_DEV", TRAIN_CORPUS: "APALLM_TRAIN_CORPUS"}
#: where the project keeps them: ``shared/data`` beside the checkout
SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
COLUMNS = ("path", "label", "system", "source_repo")


def corpus_root(name: str, root: str | os.PathLike | None = None) -> Path | None:
    """The folder of corpus ``name``: ``root`` when given, else the one its environment variable names, else
    :data:`SHARED_DATA` ``/ name``; None when that folder holds no ``manifest.tsv`` (the corpus is absent)."""
    if name not in ENVIRONMENT:
        raise DatasetError(f"unknown project corpus {name!r}; they are {', '.join(ENVIRONMENT)}")
    path = Path(root or os.environ.get(ENVIRONMENT[name]) or SHARED_DATA / name).expanduser()
    return path if (path / "manifest.tsv").is_file() else None


def read_corpus(root: Path, name: str) -> list[ManifestEntry]:
    manifest = find_first(root, ["manifest.tsv"], f"the {name} manifest")
    entries = []
    with open(manifest, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        header = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ProtocolError(f"header needs {', '.join(COLUMNS)}; missing {', '.join(missing)}", source=manifest,
                                line=1)
        for row in reader:
            line = reader.line_num
            if None in row or None in row.values():
                raise ProtocolError(f"expected {len(header)} tab-separated cells as in the header", source=manifest,
                                    line=line)
            label = parse_key(row["label"], manifest, line)
            entries.append(make_entry(manifest, line, id=row["path"], path=str(root / row["path"]), label=label,
                                      dataset=name, attack=None if label == BONAFIDE else row["system"] or None,
                                      source=row["source_repo"] or None))
    return entries


def read_realworld_dev(root: Path, split: str | None = None) -> list[ManifestEntry]:
    return read_corpus(root, REALWORLD_DEV)


def read_train_corpus(root: Path, split: str | None = None) -> list[ManifestEntry]:
    return read_corpus(root, TRAIN_CORPUS)

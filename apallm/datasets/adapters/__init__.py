"""Corpus adapters: one small module per corpus, each reading the corpus's own protocol files.

Every adapter has the same signature, ``read(root: Path, split: str | None = None, **options)``, and returns
:class:`~apallm.datasets.ManifestEntry` objects with ``duration``/``sample_rate`` null;
:func:`build_manifest` checks the split and options, runs the adapter and fills those two fields from the
audio headers. Each module's docstring gives the exact file format it expects, with sample lines.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from apallm.datasets.adapters import (
    asvspoof5,
    asvspoof2019,
    asvspoof2021,
    codecfake,
    fake_or_real,
    generic,
    in_the_wild,
    mlaad,
    partialspoof,
    project_corpora,
    wavefake,
)
from apallm.datasets.errors import DatasetError, LayoutError
from apallm.datasets.manifest import ManifestEntry
from apallm.datasets.probe import probe_entries


@dataclass(frozen=True)
class Adapter:
    """A registered adapter: ``read`` plus what the CLI and :func:`build_manifest` need to know about it."""

    name: str
    read: Callable[..., list[ManifestEntry]]
    summary: str
    splits: tuple[str, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)


ADAPTERS: dict[str, Adapter] = {a.name: a for a in (
    Adapter("asvspoof2019_la", asvspoof2019.read, "ASVspoof 2019 LA CM protocols", asvspoof2019.SPLITS),
    Adapter("asvspoof2021_la", asvspoof2021.read_la, "ASVspoof 2021 LA keys (trial_metadata.txt)",
            asvspoof2021.SPLITS),
    Adapter("asvspoof2021_df", asvspoof2021.read_df, "ASVspoof 2021 DF keys (trial_metadata.txt)",
            asvspoof2021.SPLITS),
    Adapter("asvspoof5", asvspoof5.read, "ASVspoof 5 track-1 protocols (ASVspoof5.*.tsv)", asvspoof5.SPLITS),
    Adapter("in_the_wild", in_the_wild.read, "In-the-Wild meta.csv"),
    Adapter("codecfake", codecfake.read, "Codecfake label/*.txt", codecfake.SPLITS),
    Adapter("mlaad", mlaad.read, "MLAAD fake/<lang>/<model>/meta.csv (+ M-AILABS bona fide)",
            options=mlaad.OPTIONS),
    Adapter("fake_or_real", fake_or_real.read, "Fake-or-Real training|validation|testing/real|fake folders",
            fake_or_real.SPLITS, fake_or_real.OPTIONS),
    Adapter("wavefake", wavefake.read, "WaveFake generated_audio/<set> (+ LJSpeech, JSUT bona fide)",
            options=wavefake.OPTIONS),
    Adapter("partialspoof", partialspoof.read, "PartialSpoof CM protocols (+ segment labels)", partialspoof.SPLITS,
            partialspoof.OPTIONS),
    Adapter("generic", generic.read, "a folder labelled by folder names, or a CSV/TSV with path,label",
            generic.SPLITS, generic.OPTIONS),
    Adapter(project_corpora.REALWORLD_DEV, project_corpora.read_realworld_dev,
            "the project's realworld-dev manifest.tsv (source = source_repo)"),
    Adapter(project_corpora.TRAIN_CORPUS, project_corpora.read_train_corpus,
            "the project's train-corpus manifest.tsv (source = source_repo)"),
)}


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise DatasetError(f"unknown adapter {name!r}; the adapters are {', '.join(ADAPTERS)}") from None


def build_manifest(name: str, root: str | os.PathLike, /, *, split: str | None = None, probe: bool = True,
                   workers: int = 8, **options: str) -> list[ManifestEntry]:
    """Read corpus ``root`` with adapter ``name`` and, unless ``probe`` is False, fill ``duration`` and
    ``sample_rate`` from each existing file's header.

    Raises :class:`DatasetError` for an unknown adapter, split or option, a missing ``root``, or a corpus
    that yields no entries, and the adapter's :class:`ProtocolError`/:class:`LayoutError` for bad files.
    """
    adapter = get_adapter(name)
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise LayoutError("no such file or folder", source=root)
    if split is not None and split not in adapter.splits:
        have = f"splits {', '.join(adapter.splits)}" if adapter.splits else "no splits"
        raise DatasetError(f"adapter {name} has {have}, not {split!r}")
    unknown = sorted(set(options) - set(adapter.options))
    if unknown:
        have = f"options {', '.join(adapter.options)}" if adapter.options else "no options"
        raise DatasetError(f"adapter {name} has {have}, not {', '.join(unknown)}")
    entries = adapter.read(root, split, **options)
    if not entries:
        raise LayoutError(f"adapter {name} found no entries" + (f" in split {split}" if split else ""), source=root)
    return probe_entries(entries, workers=workers) if probe else entries

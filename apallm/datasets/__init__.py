"""Corpora as one manifest: a schema for every speech-deepfake corpus, adapters that read each corpus's
own protocol files into it, and statistics and checks of the result.

>>> from apallm.datasets import build_manifest, write_manifest
>>> entries = build_manifest("asvspoof2019_la", "/data/LA", split="train")   # doctest: +SKIP
>>> write_manifest(entries, "asv19_train.jsonl")                             # doctest: +SKIP

The schema is documented in :mod:`apallm.datasets.manifest`, each adapter's expected files in its module.
The command line is ``apallm data build|stats|validate``.
"""

from apallm.datasets.adapters import ADAPTERS, Adapter, build_manifest, get_adapter
from apallm.datasets.errors import DatasetError, LayoutError, ManifestError, ProtocolError
from apallm.datasets.manifest import (
    BONAFIDE,
    FIELDS,
    LABELS,
    SPOOF,
    ManifestEntry,
    Segment,
    read_manifest,
    resolve_path,
    write_manifest,
)
from apallm.datasets.probe import probe_audio, probe_entries
from apallm.datasets.stats import manifest_stats
from apallm.datasets.validate import Problem, ValidationReport, validate_manifest

__all__ = [
    "ADAPTERS",
    "Adapter",
    "BONAFIDE",
    "DatasetError",
    "FIELDS",
    "LABELS",
    "LayoutError",
    "ManifestEntry",
    "ManifestError",
    "Problem",
    "ProtocolError",
    "SPOOF",
    "Segment",
    "ValidationReport",
    "build_manifest",
    "get_adapter",
    "manifest_stats",
    "probe_audio",
    "probe_entries",
    "read_manifest",
    "resolve_path",
    "validate_manifest",
    "write_manifest",
]

"""PartialSpoof (Zhang et al., 2021-2023; nii-yamagishilab/PartialSpoof), with optional segment labels.

Expected layout (``ROOT`` is the ``database`` folder of the Zenodo release, or the folder holding it)::

    protocols/PartialSpoof_LA_cm_protocols/PartialSpoof.LA.cm.{train,dev,eval}.trl.txt
    {train,dev,eval}/con_wav/<AUDIO_FILE_NAME>.wav
    segment_labels/{train,dev,eval}_seglab_{0.01,0.02,...,0.64}.npy      (for segments=<resolution>)
    {train,dev,eval}/con_data/rttm_2cls_0sil                            (for segments=rttm)

The protocol has the ASVspoof 2019 LA layout ``SPEAKER_ID AUDIO_FILE_NAME - SYSTEM_ID KEY``; partially
spoofed utterances carry the system ``CON``::

    LA_0079 CON_T_0000029 - CON spoof
    LA_0098 LA_T_9497115 - - bonafide

Segment labels (option ``segments``):

* ``rttm``: the RTTM reference the PartialSpoof metric scripts use, 10 fields per line
  ``SPEAKER <utt> <channel> <start> <duration> <NA> <NA> <label> <NA> <NA>`` with label ``bonafide`` or
  ``spoof``. Plain text, read as is.
* a resolution in seconds (``0.01`` ... ``0.64``): the frame labels ``{split}_seglab_<res>.npy``, one
  ``'1'`` (bona fide) or ``'0'`` (spoof) per frame, frame *i* covering [i*res, (i+1)*res). The published
  files are a pickled Python dict (the repository loads them with ``allow_pickle=True``). Unpickling can
  run code, so this adapter never does it: it loads ``.npy`` with ``allow_pickle=False`` and refuses the
  published file with an explanation. It reads a ``{split}_seglab_<res>.npz`` beside it instead (one
  array per utterance, loadable without pickle), which a user can make once from a copy they trust.

Utterances absent from the segment source keep ``segments`` null.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from apallm.datasets.adapters._common import find_first, make_entry, protocol_rows, read_asvspoof_cm_protocol
from apallm.datasets.errors import DatasetError, LayoutError, ProtocolError
from apallm.datasets.manifest import BONAFIDE, LABELS, SPOOF, ManifestEntry, Segment

NAME = "partialspoof"
SPLITS = ("train", "dev", "eval")
RESOLUTIONS = ("0.01", "0.02", "0.04", "0.08", "0.16", "0.32", "0.64")
OPTIONS = {"segments": f"segment labels from 'rttm' or a resolution in s ({', '.join(RESOLUTIONS)})"}
_FRAME_LABELS = {"1": BONAFIDE, "0": SPOOF}


def frames_to_segments(frames, resolution: float) -> tuple[Segment, ...]:
    """Run-length segments from per-frame labels ``'1'`` (bona fide) / ``'0'`` (spoof) at ``resolution`` s."""
    values = np.asarray(frames).astype(str).reshape(-1)
    segments, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            label = _FRAME_LABELS.get(values[start])
            if label is None:
                raise ValueError(f"frame label must be '0' or '1', got {values[start]!r}")
            segments.append(Segment(round(start * resolution, 6), round(i * resolution, 6), label))
            start = i
    return tuple(segments)


def _npz_segments(root: Path, split: str, resolution: str) -> dict[str, tuple[Segment, ...]]:
    folder = root / "segment_labels"
    npz, npy = folder / f"{split}_seglab_{resolution}.npz", folder / f"{split}_seglab_{resolution}.npy"
    if npz.is_file():
        with np.load(npz, allow_pickle=False) as archive:
            try:
                return {utt: frames_to_segments(archive[utt], float(resolution)) for utt in archive.files}
            except ValueError as exc:
                raise ProtocolError(str(exc), source=npz) from exc
    if not npy.is_file():
        raise LayoutError(f"no segment labels; looked for {npz} and {npy}", source=root)
    try:
        np.load(npy, allow_pickle=False)
    except ValueError as exc:
        raise DatasetError(
            f"this file is a pickled Python object (the published format) and apallm never unpickles "
            f"(unpickling can run code). Use segments=rttm, or, in an environment you trust, convert it once: "
            f"d = np.load('{npy.name}', allow_pickle=True).item(); np.savez('{npz.name}', **d)",
            source=npy) from exc
    raise DatasetError("expected a dict of per-utterance frame labels, found a plain array; "
                       f"provide {npz.name} (one array per utterance)", source=npy)


def _rttm_segments(root: Path, split: str) -> dict[str, tuple[Segment, ...]]:
    rttm = root / split / "con_data" / "rttm_2cls_0sil"
    if not rttm.is_file():
        raise LayoutError(f"no RTTM reference; looked for {rttm}", source=root)
    found: dict[str, list[Segment]] = {}
    for line, cells in protocol_rows(rttm, 10):
        utterance, start, duration, label = cells[1], cells[3], cells[4], cells[7]
        if label not in LABELS:
            raise ProtocolError(f"segment label must be 'bonafide' or 'spoof', got {label!r}", source=rttm, line=line)
        try:
            begin = float(start)
            segment = Segment(begin, round(begin + float(duration), 6), label)
        except ValueError as exc:
            raise ProtocolError(f"bad start/duration {start!r}/{duration!r}: {exc}", source=rttm, line=line) from exc
        found.setdefault(utterance, []).append(segment)
    return {utt: tuple(sorted(segments, key=lambda s: s.start)) for utt, segments in found.items()}


def read(root: Path, split: str | None = None, segments: str | None = None) -> list[ManifestEntry]:
    """Entries of one split, or of every split whose protocol is present when ``split`` is None."""
    if segments is not None and segments != "rttm" and segments not in RESOLUTIONS:
        raise DatasetError(f"segments must be 'rttm' or one of {', '.join(RESOLUTIONS)}, got {segments!r}")
    protocols_dir = "protocols/PartialSpoof_LA_cm_protocols"
    database = find_first(root, [protocols_dir, f"database/{protocols_dir}"],
                          "the PartialSpoof_LA_cm_protocols folder").parent.parent
    protocol_dir = database / protocols_dir
    wanted = [split] if split else list(SPLITS)
    protocols = {s: protocol_dir / f"PartialSpoof.LA.cm.{s}.trl.txt" for s in wanted}
    present = {s: p for s, p in protocols.items() if p.is_file()}
    if not present or (split and split not in present):
        raise LayoutError(f"no CM protocol found; looked for {', '.join(map(str, protocols.values()))}", source=root)
    entries = []
    for name, protocol in present.items():
        labels = {}
        if segments == "rttm":
            labels = _rttm_segments(database, name)
        elif segments is not None:
            labels = _npz_segments(database, name, segments)
        audio = database / name / "con_wav"
        for line, speaker, utterance, attack, label in read_asvspoof_cm_protocol(protocol):
            entries.append(make_entry(protocol, line, id=utterance, path=str(audio / f"{utterance}.wav"), label=label,
                                      dataset=NAME, attack=attack, speaker=speaker, split=name, language="en",
                                      segments=labels.get(utterance)))
    return entries

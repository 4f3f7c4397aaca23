"""ASVspoof 2021 LA and DF evaluation data, from the full keys and meta-labels (``trial_metadata.txt``).

Expected layout (``ROOT`` holds the unpacked keys package and the audio)::

    LA-keys-full/keys/LA/CM/trial_metadata.txt    (or keys/LA/CM/trial_metadata.txt)
    ASVspoof2021_LA_eval/flac/<TRIAL>.flac
    DF-keys-full/keys/DF/CM/trial_metadata.txt    (or keys/DF/CM/trial_metadata.txt)
    ASVspoof2021_DF_eval/flac/<TRIAL>.flac

The two tracks' key files differ (asvspoof-challenge/2021 eval-package, README "On meta-labels" and
config.py). LA has 8 space-separated columns, speaker trial codec transmission attack key trim subset::

    LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval
    LA_0020 LA_E_7294490 g722 loc_tx bonafide bonafide notrim eval

DF has 13: speaker trial compression source attack key trim subset vocoder task team gender-pair language::

    LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -
    TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval neural_vocoder_nonautoregressive Task1 team20 FF E

A bona fide trial has ``bonafide`` (LA) or ``-`` (DF) in the attack column. ``split`` is the subset column:
``eval`` (the official evaluation subset), ``progress`` or ``hidden``.
"""

from __future__ import annotations

from pathlib import Path

from apallm.datasets.adapters._common import find_first, make_entry, parse_key, protocol_rows
from apallm.datasets.errors import ProtocolError
from apallm.datasets.manifest import BONAFIDE, ManifestEntry

SPLITS = ("eval", "progress", "hidden")
_COLUMNS = {"LA": 8, "DF": 13}


def _read(track: str, root: Path, split: str | None) -> list[ManifestEntry]:
    keys = find_first(root, [f"{track}-keys-full/keys/{track}/CM/trial_metadata.txt",
                             f"keys/{track}/CM/trial_metadata.txt"], f"the ASVspoof 2021 {track} CM key file")
    audio = root / f"ASVspoof2021_{track}_eval" / "flac"
    dataset = f"asvspoof2021_{track.lower()}"
    entries = []
    for line, cells in protocol_rows(keys, _COLUMNS[track]):
        speaker, trial, attack, key, subset = cells[0], cells[1], cells[4], cells[5], cells[7]
        label = parse_key(key, keys, line)
        if (attack in (BONAFIDE, "-")) != (label == BONAFIDE):
            raise ProtocolError(f"attack {attack!r} does not fit key {key!r}", source=keys, line=line)
        if subset not in SPLITS:
            raise ProtocolError(f"subset must be one of {', '.join(SPLITS)}, got {subset!r}", source=keys, line=line)
        if split and subset != split:
            continue
        entries.append(make_entry(keys, line, id=trial, path=str(audio / f"{trial}.flac"), label=label,
                                  dataset=dataset, attack=BONAFIDE if label == BONAFIDE else attack,
                                  speaker=speaker, split=subset, language="en"))
    return entries


def read_la(root: Path, split: str | None = None) -> list[ManifestEntry]:
    """ASVspoof 2021 LA trials (all subsets, or the one named by ``split``)."""
    return _read("LA", root, split)


def read_df(root: Path, split: str | None = None) -> list[ManifestEntry]:
    """ASVspoof 2021 DF trials (all subsets, or the one named by ``split``)."""
    return _read("DF", root, split)

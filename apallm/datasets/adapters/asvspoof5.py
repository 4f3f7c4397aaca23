"""ASVspoof 5, from its track-1 protocol files.

Expected layout (``ROOT`` holds the unpacked ``ASVspoof5_protocols.tar.gz`` and ``flac_*.tar``)::

    ASVspoof5.train.tsv, ASVspoof5.dev.track_1.tsv, ASVspoof5.eval.track_1.tsv
        (at ROOT or in ROOT/ASVspoof5_protocols/)
    flac_T/<FLAC_FILE_NAME>.flac, flac_D/..., flac_E_eval/...
        (at ROOT, as the release README says, or in ROOT/ASVspoof5_{train,dev,eval}/)

The ``.tsv`` files are space-separated, without a header, 10 columns (release README.txt, section 3)::

    SPEAKER_ID FLAC_FILE_NAME SPEAKER_GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG ATTACK_LABEL KEY TMP
    D_4461 D_0000000169 F - - - AC1 A14 spoof -
    D_0461 D_0000000190 M - - - - bonafide bonafide -

ATTACK_LABEL (A01-A32, or ``bonafide``) becomes ``attack``; the codec columns are not kept.
"""

from __future__ import annotations

from pathlib import Path

from apallm.datasets.adapters._common import make_entry, parse_key, protocol_rows
from apallm.datasets.errors import LayoutError, ProtocolError
from apallm.datasets.manifest import BONAFIDE, ManifestEntry

NAME = "asvspoof5"
SPLITS = ("train", "dev", "eval")
PROTOCOLS = {"train": "ASVspoof5.train.tsv", "dev": "ASVspoof5.dev.track_1.tsv", "eval": "ASVspoof5.eval.track_1.tsv"}
AUDIO = {"train": "flac_T", "dev": "flac_D", "eval": "flac_E_eval"}


def _audio_folder(root: Path, split: str) -> Path:
    nested = root / f"ASVspoof5_{split}" / AUDIO[split]
    return nested if nested.is_dir() else root / AUDIO[split]


def read(root: Path, split: str | None = None) -> list[ManifestEntry]:
    """Entries of one split, or of every split whose protocol is present when ``split`` is None."""
    wanted = [split] if split else list(SPLITS)
    protocols = {}
    for name in wanted:
        for folder in (root, root / "ASVspoof5_protocols"):
            if (folder / PROTOCOLS[name]).is_file():
                protocols[name] = folder / PROTOCOLS[name]
                break
    if not protocols or (split and split not in protocols):
        looked = ", ".join(f"{PROTOCOLS[n]}" for n in wanted)
        raise LayoutError(f"no protocol found ({looked}) in {root} or {root / 'ASVspoof5_protocols'}", source=root)
    entries = []
    for name, protocol in protocols.items():
        audio = _audio_folder(root, name)
        for line, cells in protocol_rows(protocol, 10):
            speaker, utterance, attack, key = cells[0], cells[1], cells[7], cells[8]
            label = parse_key(key, protocol, line)
            if (attack == BONAFIDE) != (label == BONAFIDE):
                raise ProtocolError(f"ATTACK_LABEL {attack!r} does not fit KEY {key!r}", source=protocol, line=line)
            entries.append(make_entry(protocol, line, id=utterance, path=str(audio / f"{utterance}.flac"),
                                      label=label, dataset=NAME, attack=attack, speaker=speaker, split=name,
                                      language="en"))
    return entries

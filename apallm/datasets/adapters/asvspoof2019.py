"""ASVspoof 2019 logical access (LA), from its CM protocols.

Expected layout (as the LA.zip release unpacks; ``ROOT`` may be the ``LA`` folder or the folder holding it)::

    LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.train.trn.txt
    LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.dev.trl.txt
    LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.eval.trl.txt
    LA/ASVspoof2019_LA_{train,dev,eval}/flac/<AUDIO_FILE_NAME>.flac

Each protocol line is ``SPEAKER_ID AUDIO_FILE_NAME - SYSTEM_ID KEY`` (README.LA.txt of the release)::

    LA_0079 LA_T_1138215 - - bonafide
    LA_0079 LA_T_1271820 - A01 spoof

SYSTEM_ID is ``-`` for bona fide speech, A01-A19 for spoofs; it becomes ``attack``.
"""

from __future__ import annotations

from pathlib import Path

from apallm.datasets.adapters._common import find_first, make_entry, read_asvspoof_cm_protocol
from apallm.datasets.errors import LayoutError
from apallm.datasets.manifest import ManifestEntry

NAME = "asvspoof2019_la"
SPLITS = ("train", "dev", "eval")
PROTOCOLS = {
    "train": "ASVspoof2019.LA.cm.train.trn.txt",
    "dev": "ASVspoof2019.LA.cm.dev.trl.txt",
    "eval": "ASVspoof2019.LA.cm.eval.trl.txt",
}


def read(root: Path, split: str | None = None) -> list[ManifestEntry]:
    """Entries of one split, or of every split whose protocol is present when ``split`` is None."""
    la = find_first(root, ["ASVspoof2019_LA_cm_protocols", "LA/ASVspoof2019_LA_cm_protocols"],
                    "the ASVspoof2019_LA_cm_protocols folder").parent
    protocols = {s: la / "ASVspoof2019_LA_cm_protocols" / PROTOCOLS[s] for s in ([split] if split else SPLITS)}
    present = {s: p for s, p in protocols.items() if p.is_file()}
    if not present or (split and split not in present):
        raise LayoutError(f"no CM protocol found; looked for {', '.join(map(str, protocols.values()))}", source=root)
    entries = []
    for name, protocol in present.items():
        audio = la / f"ASVspoof2019_LA_{name}" / "flac"
        for line, speaker, utterance, attack, label in read_asvspoof_cm_protocol(protocol):
            entries.append(make_entry(protocol, line, id=utterance, path=str(audio / f"{utterance}.flac"),
                                      label=label, dataset=NAME, attack=attack, speaker=speaker, split=name,
                                      language="en"))
    return entries

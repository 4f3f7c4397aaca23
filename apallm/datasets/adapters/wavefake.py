"""WaveFake (Frank and Schönherr, NeurIPS 2021 datasets track), with its bona fide sources LJSpeech and JSUT.

Expected layout (``ROOT``; the bona fide corpora are found there or passed as options)::

    generated_audio/<set>/*.wav        one folder per vocoder set: ljspeech_melgan, ljspeech_hifiGAN,
                                       jsut_multi_band_melgan, common_voices_prompts_from_conformer_..., ...
    LJSpeech-1.1/wavs/LJ001-0001.wav   (option ljspeech=PATH to the LJSpeech-1.1 folder)
    jsut_ver1.1/<subset>/wav/*.wav     (option jsut=PATH to the jsut_ver1.1 folder)

``ROOT`` may also be the ``generated_audio`` folder itself. A set is a folder whose name starts with
``ljspeech``, ``jsut`` or ``common`` (the published set names); its name is the ``attack``. Sets
whose name starts with ``jsut`` are Japanese, speaker ``JSUT``; the others imitate LJSpeech's single
speaker (``LJ``) in English. ids are ``<set>/<stem>``, ``LJSpeech/<stem>`` and ``JSUT/<subset>/<stem>``.
WaveFake has no official split.
"""

from __future__ import annotations

from pathlib import Path

from apallm.datasets.adapters._common import audio_files, make_entry, relative_id
from apallm.datasets.errors import LayoutError
from apallm.datasets.manifest import BONAFIDE, SPOOF, ManifestEntry

NAME = "wavefake"
OPTIONS = {"ljspeech": "LJSpeech-1.1 folder (default ROOT/LJSpeech-1.1 when present)",
           "jsut": "jsut_ver1.1 folder (default ROOT/jsut_ver1.1 when present)"}


def _bona_fide_folder(root: Path, option: str | None, default: str, what: str) -> Path | None:
    if option is None:
        folder = root / default
        return folder if folder.is_dir() else None
    folder = Path(option).expanduser().resolve()
    if not folder.is_dir():
        raise LayoutError(f"{what} folder {folder} does not exist", source=folder)
    return folder


def read(root: Path, split: str | None = None, ljspeech: str | None = None,
         jsut: str | None = None) -> list[ManifestEntry]:
    generated = root / "generated_audio" if (root / "generated_audio").is_dir() else root
    sets = sorted(p for p in generated.iterdir() if p.is_dir() and p.name.startswith(("ljspeech", "jsut", "common")))
    if not sets:
        raise LayoutError(f"no WaveFake sets (ljspeech_*, jsut_*, ...) found in {generated}", source=root)
    entries = []
    for folder in sets:
        japanese = folder.name.startswith("jsut")
        for path in audio_files(folder):
            entries.append(make_entry(path, None, id=relative_id(path, generated), path=str(path), label=SPOOF,
                                      dataset=NAME, attack=folder.name, speaker="JSUT" if japanese else "LJ",
                                      language="ja" if japanese else "en"))
    lj = _bona_fide_folder(root, ljspeech, "LJSpeech-1.1", "LJSpeech")
    if lj is not None:
        for path in audio_files(lj / "wavs"):
            entries.append(make_entry(path, None, id=f"LJSpeech/{path.stem}", path=str(path), label=BONAFIDE,
                                      dataset=NAME, speaker="LJ", language="en"))
    js = _bona_fide_folder(root, jsut, "jsut_ver1.1", "JSUT")
    if js is not None:
        for path in audio_files(js):
            if path.parent.name == "wav":
                entries.append(make_entry(path, None, id=f"JSUT/{path.parent.parent.name}/{path.stem}", path=str(path),
                                          label=BONAFIDE, dataset=NAME, speaker="JSUT", language="ja"))
    return entries

"""MLAAD (Müller et al., 2024: spoofs in many languages), with its bona fide source M-AILABS.

Expected layout of MLAAD (``ROOT``)::

    fake/<language>/<model folder>/meta.csv
    fake/<language>/<model folder>/*.wav

``meta.csv`` is ``|``-separated with a header; the columns read here are ``path``, ``language`` and
``model_name`` (v5 has path|original_file|language|is_original_language|duration|training_data|model_name|
architecture|transcript)::

    path|original_file|language|is_original_language|duration|training_data|model_name|architecture|transcript
    ./fake/<language>/<model folder>/<file>.wav|<M-AILABS path of the source>|de|True|4.2|...|<model>|...|...

The audio is taken from the model folder by the file name in ``path`` (the folder part of ``path`` is not
trusted: some rows name a language folder that differs from where the file is). ``attack`` is
``model_name`` (the folder name when the column is empty); ``language`` the column (else the folder).

MLAAD holds spoofs only. Pass ``mailabs=PATH`` for the bona fide side, M-AILABS laid out as released::

    <locale>/by_book/<female|male>/<speaker>/<book>/wavs/*.wav
    <locale>/by_book/mix/<book>/wavs/*.wav          (several speakers: speaker null)

M-AILABS entries get ``language`` from the locale (``en_US`` -> ``en``) and ids ``m-ailabs/<path>``.
"""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath

from apallm.datasets.adapters._common import make_entry, relative_id
from apallm.datasets.errors import LayoutError, ProtocolError
from apallm.datasets.manifest import BONAFIDE, SPOOF, ManifestEntry

NAME = "mlaad"
OPTIONS = {"mailabs": "folder of M-AILABS (<locale>/by_book/...), the bona fide source; optional"}


def _read_fakes(root: Path) -> list[ManifestEntry]:
    fake = root / "fake"
    metas = sorted(fake.glob("*/*/meta.csv"))
    if not metas:
        raise LayoutError(f"no MLAAD meta.csv found; looked for {fake}/<language>/<model>/meta.csv", source=root)
    entries = []
    for meta in metas:
        model_dir, language_dir = meta.parent, meta.parent.parent.name
        with open(meta, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="|")
            if "path" not in (reader.fieldnames or []):
                raise ProtocolError(f"header has no 'path' column: {reader.fieldnames!r}", source=meta, line=1)
            for row in reader:
                line = reader.line_num
                if not row["path"]:
                    raise ProtocolError("empty path", source=meta, line=line)
                name = PurePosixPath(row["path"].replace("\\", "/")).name
                entries.append(make_entry(
                    meta, line, id=f"{language_dir}/{model_dir.name}/{Path(name).stem}", path=str(model_dir / name),
                    label=SPOOF, dataset=NAME, attack=row.get("model_name") or model_dir.name,
                    language=row.get("language") or language_dir))
    return entries


def _read_mailabs(mailabs: Path) -> list[ManifestEntry]:
    wavs = sorted(mailabs.glob("*/by_book/*/**/wavs/*.wav"))
    if not wavs:
        raise LayoutError(f"no M-AILABS audio found; looked for {mailabs}/<locale>/by_book/.../wavs/*.wav",
                          source=mailabs)
    entries = []
    for wav in wavs:
        locale, _by_book, gender, *rest = wav.relative_to(mailabs).parts
        speaker = rest[0] if gender in ("female", "male") else None
        entries.append(make_entry(wav, None, id=f"m-ailabs/{relative_id(wav, mailabs)}", path=str(wav),
                                  label=BONAFIDE, dataset=NAME, speaker=speaker, language=locale.split("_")[0]))
    return entries


def read(root: Path, split: str | None = None, mailabs: str | None = None) -> list[ManifestEntry]:
    entries = _read_fakes(root)
    if mailabs is not None:
        entries += _read_mailabs(Path(mailabs).expanduser().resolve())
    return entries

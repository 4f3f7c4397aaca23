"""Reading and joining evaluation inputs: score and key tables, attack tables, manifests, predictions.

**Score and key tables** follow the ASVspoof 5 evaluation package: tab-separated text whose first line is a
header naming the columns, one trial a line::

    filename    cm-score            filename    cm-label    attack
    E_000001    3.2107              E_000001    bonafide    bonafide
    E_000002    -1.044              E_000002    spoof       A11

Scores are *higher = more bona fide*. Column names are matched case-insensitively, with the aliases the
package itself uses (it renames ``trial_anon`` to ``filename`` and ``cm-label`` to ``cm_label``):

==========  =================================================================
column      accepted header names
==========  =================================================================
trial id    ``filename``, ``trial_anon``, ``trial``, ``id``, ``path``
score       ``cm-score``, ``cm_score``, ``score``
label       ``cm-label``, ``cm_label``, ``label`` (values ``bonafide``/``spoof``)
attack      ``attack_anon``, ``attack``, ``attack_label``, ``attack_tag``, ``system``
==========  =================================================================

A key table whose header names no attack column but has exactly three columns takes the third as the
attack. A key table whose only id column is ``path`` (a manifest such as ``path<TAB>label<TAB>system ...``)
names its trials as ``apallm batch`` and ``apallm score`` name the clips (:mod:`apallm.inputs`): the path
relative to the table's folder without suffix, so ``audio/a/00001.wav`` is trial ``audio/a/00001``. Other
columns (``codec``, ``source_repo``, ...) are kept and can group the results. A header line without a tab is
split on runs of whitespace, as the package's space-separated full key tables are.

**Manifests** (JSONL, one object a line) give attacks for the per-attack table: each record has ``id`` and/or
``path``, ``label`` and ``attack`` (or ``system``); a record without ``id`` is named by its path the same way.
**Predictions** (JSONL) are a detector's verdicts; see :func:`read_predictions`.

**Matching ids.** A reference (a score's filename, a prediction's id or path, a key's filename looked up in a
manifest) matches an entry whose id or path equals it exactly, else the single entry with the same file
stem (``audio/E_000001.flac`` and ``E_000001`` match). A stem shared by several entries matches none and
raises :class:`AmbiguousIdError`.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import numpy as np

from apallm.evaluation.errors import (
    AmbiguousIdError,
    DuplicateIdError,
    LabelMismatchError,
    MalformedInputError,
    MissingIdsError,
    NonFiniteScoreError,
    SingleClassError,
    UnknownLabelError,
    UnreadableInputError,
)
from apallm.verdict import LABELS, canonical_label

__all__ = [
    "ID_COLUMNS",
    "SCORE_COLUMNS",
    "LABEL_COLUMNS",
    "ATTACK_COLUMNS",
    "Keys",
    "Trials",
    "Prediction",
    "Predictions",
    "IdIndex",
    "read_scores",
    "read_keys",
    "read_attacks",
    "read_manifest_attacks",
    "read_manifest_keys",
    "read_predictions",
    "join_scores",
    "keyed_trials",
    "match_predictions",
    "apply_attacks",
    "write_scores",
    "write_keys",
]

ID_COLUMNS = ("filename", "trial_anon", "trial", "id", "path")
SCORE_COLUMNS = ("cm-score", "cm_score", "score")
LABEL_COLUMNS = ("cm-label", "cm_label", "label")
ATTACK_COLUMNS = ("attack_anon", "attack", "attack_label", "attack_tag", "system")

#: How many offending ids or lines an error message lists before "and N more".
SHOW = 5
PathLike = str | os.PathLike


def _few(items: Sequence, show: int = SHOW) -> str:
    shown = ", ".join(str(x) for x in items[:show])
    return shown + (f" and {len(items) - show} more" if len(items) > show else "")


def _read_lines(path: PathLike) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return fh.read().splitlines()
    except FileNotFoundError:
        raise UnreadableInputError(f"{path}: no such file", str(path)) from None
    except IsADirectoryError:
        raise UnreadableInputError(f"{path}: is a directory, not a file", str(path)) from None
    except UnicodeDecodeError as exc:
        raise UnreadableInputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    except OSError as exc:
        raise UnreadableInputError(f"{path}: {exc.strerror or exc}", str(path)) from None


# ------------------------------------------------------------------------------------------------ tables


@dataclass
class _Table:
    source: str
    header: list[str]  # lower-cased column names
    rows: list[tuple[int, list[str]]]  # (1-based line number, fields)

    def column(self, aliases: Sequence[str], what: str, example: str) -> int:
        index = self.find(aliases)
        if index is None:
            raise MalformedInputError(
                f"{self.source}:1: the header names no {what} column (accepted: {', '.join(aliases)}); got "
                f"{' | '.join(self.header)!r}. The first line must be a header such as {example!r}.", self.source)
        return index

    def find(self, aliases: Sequence[str]) -> int | None:
        return next((self.header.index(a) for a in aliases if a in self.header), None)


def _read_table(path: PathLike) -> _Table:
    source = str(path)
    lines = [(n, line) for n, line in enumerate(_read_lines(path), start=1) if line.strip()]
    if not lines:
        raise MalformedInputError(f"{source}: the file is empty (a header line and one line a trial expected)", source)
    first_no, first = lines[0]
    tabbed = "\t" in first
    split = (lambda s: [f.strip() for f in s.split("\t")]) if tabbed else str.split
    header = [name.lower() for name in split(first)]
    rows = []
    for n, line in lines[1:]:
        fields = split(line)
        if len(fields) != len(header):
            sep = "tab-separated" if tabbed else "whitespace-separated"
            raise MalformedInputError(
                f"{source}:{n}: expected {len(header)} {sep} fields as in the header, got {len(fields)}: {line!r}",
                source)
        rows.append((n, fields))
    if not rows:
        raise MalformedInputError(f"{source}: a header (line {first_no}) but no trials", source)
    return _Table(source, header, rows)


def _check_unique(ids_lines: Iterable[tuple[str, int]], source: str) -> None:
    lines: dict[str, list[int]] = defaultdict(list)
    for trial, n in ids_lines:
        lines[trial].append(n)
    dups = [f"{trial!r} (lines {', '.join(map(str, ns))})" for trial, ns in lines.items() if len(ns) > 1]
    if dups:
        raise DuplicateIdError(f"{source}: {len(dups)} id(s) occur more than once: {_few(dups)}", source)


def read_scores(path: PathLike) -> dict[str, float]:
    """Read a CM score table (``filename<TAB>cm-score`` with a header): ``{trial id: score}`` in file order.

    Raises:
        UnreadableInputError, MalformedInputError (no id or score column, wrong field count, a score that is
        not a number: ``file:line``), DuplicateIdError, NonFiniteScoreError (NaN/inf, with their lines).
    """
    table = _read_table(path)
    id_col = table.column(ID_COLUMNS, "trial id", "filename\tcm-score")
    score_col = table.column(SCORE_COLUMNS, "score", "filename\tcm-score")
    scores: dict[str, float] = {}
    non_finite = []
    for n, fields in table.rows:
        try:
            value = float(fields[score_col])
        except ValueError:
            raise MalformedInputError(f"{table.source}:{n}: score {fields[score_col]!r} is not a number",
                                      table.source) from None
        if not math.isfinite(value):
            non_finite.append(f"line {n} ({fields[id_col]}: {fields[score_col]})")
        scores.setdefault(fields[id_col], value)
    _check_unique(((fields[id_col], n) for n, fields in table.rows), table.source)
    if non_finite:
        raise NonFiniteScoreError(
            f"{table.source}: {len(non_finite)} score(s) are NaN or infinite: {_few(non_finite)}", table.source)
    return scores


def _label(value: str, where: str, bad: list[str]) -> str:
    label = value.strip().lower()
    if label not in LABELS:
        bad.append(f"{where} ({value!r})")
    return label


@dataclass
class Keys:
    """A key table: each trial's label, attack (when there is an attack column) and any other columns."""

    source: str
    labels: dict[str, str]
    attacks: dict[str, str] | None = None
    #: name of the attack column as written in the header (``attack``, ``attack_anon``, ``system``, ...)
    attack_column: str | None = None
    #: every other column, by lower-cased header name: ``{column: {trial id: value}}``
    columns: dict[str, dict[str, str]] = field(default_factory=dict)


def read_keys(path: PathLike) -> Keys:
    """Read a CM key table (``filename<TAB>cm-label[<TAB>attack]`` with a header), or a JSONL manifest (a path
    ending in ``.jsonl``, see :func:`read_manifest_keys`).

    Raises:
        UnreadableInputError, MalformedInputError, DuplicateIdError, UnknownLabelError (with their lines).
    """
    if str(path).lower().endswith(".jsonl"):
        return read_manifest_keys(path)
    table = _read_table(path)
    id_col = table.column(ID_COLUMNS, "trial id", "filename\tcm-label")
    if table.header[id_col] == "path":  # a manifest without ids: its clips' ids as apallm batch/score name them
        _derive_ids(table, id_col, path)
    label_col = table.column(LABEL_COLUMNS, "label", "filename\tcm-label")
    attack_col = table.find(ATTACK_COLUMNS)
    if attack_col is None and len(table.header) == 3:
        attack_col = 3 - id_col - label_col
    _check_unique(((fields[id_col], n) for n, fields in table.rows), table.source)
    bad: list[str] = []
    labels = {fields[id_col]: _label(fields[label_col], f"line {n}", bad) for n, fields in table.rows}
    if bad:
        raise UnknownLabelError(
            f"{table.source}: {len(bad)} label(s) are neither 'bonafide' nor 'spoof': {_few(bad)}", table.source)
    keys = Keys(table.source, labels)
    if attack_col is not None:
        keys.attacks = {fields[id_col]: fields[attack_col] for _, fields in table.rows}
        keys.attack_column = table.header[attack_col]
    for i, name in enumerate(table.header):
        if i not in (id_col, label_col, attack_col):
            keys.columns[name] = {fields[id_col]: fields[i] for _, fields in table.rows}
    return keys


def read_attacks(path: PathLike) -> dict[str, str]:
    """Read an attack table (``filename<TAB>attack`` with a header): ``{trial id: attack}``.

    Raises:
        UnreadableInputError, MalformedInputError, DuplicateIdError.
    """
    table = _read_table(path)
    id_col = table.column(ID_COLUMNS, "trial id", "filename\tattack")
    attack_col = table.column(ATTACK_COLUMNS, "attack", "filename\tattack")
    _check_unique(((fields[id_col], n) for n, fields in table.rows), table.source)
    return {fields[id_col]: fields[attack_col] for _, fields in table.rows}


def _derive_ids(table: _Table, id_col: int, path: PathLike) -> None:
    """Replace the ``path`` cells of a table without an id column by the ids :mod:`apallm.inputs` derives."""
    from apallm.inputs import assign_ids

    _check_unique(((fields[id_col], n) for n, fields in table.rows), table.source)
    ids = assign_ids([None] * len(table.rows), [fields[id_col] for _, fields in table.rows], Path(path).parent)
    for (_, fields), trial in zip(table.rows, ids, strict=True):
        fields[id_col] = trial


# ------------------------------------------------------------------------------------------------ matching


def _stem(name: str) -> str:
    return PurePath(name.replace("\\", "/")).stem


class IdIndex:
    """Find entries by a reference: exact id or path first, else a unique file stem (see the module notes).

    Args:
        names: for each entry, the names it answers to (its id, its path, ...); empty names are ignored.
        source: the file the entries come from, for messages.
    """

    def __init__(self, names: Sequence[Sequence[str | None]], source: str):
        self.source = source
        self._exact: dict[str, set[int]] = defaultdict(set)
        self._stems: dict[str, set[int]] = defaultdict(set)
        for i, entry_names in enumerate(names):
            for name in entry_names:
                if name:
                    self._exact[name].add(i)
                    self._stems[_stem(name)].add(i)

    def find(self, ref: str) -> int | None:
        """The entry ``ref`` names, or None.

        Raises:
            AmbiguousIdError: ``ref`` matches no entry exactly and its stem is shared by several entries.
        """
        for index in (self._exact.get(ref), self._stems.get(_stem(ref))):
            if index is None:
                continue
            if len(index) == 1:
                return next(iter(index))
            raise AmbiguousIdError(f"{ref!r} matches {len(index)} entries of {self.source} by its file stem "
                                   f"{_stem(ref)!r}: use full ids or paths", self.source)
        return None


def _missing(side: str, other: str, ids: Sequence[str]) -> str:
    return f"{len(ids)} id(s) in {side} are missing from {other}: {_few(ids)}"


def _raise_missing(problems: list[str], source: str) -> None:
    if problems:
        raise MissingIdsError("; ".join(problems), source)


# ------------------------------------------------------------------------------------------------ trials


@dataclass
class Trials:
    """Joined trials, in key order: id, score (higher = more bona fide), label and optional metadata.

    ``attacks[i]`` is the attack of spoof trial ``i`` (None for bona fide trials and when no attack source was
    given); ``groups`` holds extra key columns ``{column: [value per trial]}``.
    """

    ids: list[str]
    scores: np.ndarray
    labels: list[str]
    attacks: list[str | None]
    attack_column: str | None = None
    groups: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self):
        self.scores = np.asarray(self.scores, dtype=np.float64)
        counts = {label: self.labels.count(label) for label in LABELS}
        if 0 in counts.values():
            present = next(label for label, n in counts.items() if n)
            absent = next(label for label, n in counts.items() if not n)
            raise SingleClassError(
                f"all {len(self.labels)} trials are {present}: no {absent} trial to measure an error rate against")

    def mask(self, label: str) -> np.ndarray:
        return np.array([lab == label for lab in self.labels], dtype=bool)

    @property
    def bonafide_scores(self) -> np.ndarray:
        return self.scores[self.mask("bonafide")]

    @property
    def spoof_scores(self) -> np.ndarray:
        return self.scores[self.mask("spoof")]


def keyed_trials(keys: Keys, ids: Sequence[str], scores: Sequence[float] | np.ndarray) -> Trials:
    """Trials for already matched key ids and their scores: labels, attacks and other columns from ``keys``.

    Raises:
        SingleClassError.
    """
    labels = [keys.labels[k] for k in ids]
    attacks = [keys.attacks[k] if keys.attacks and label == "spoof" else None
               for k, label in zip(ids, labels, strict=True)]
    return Trials(ids=list(ids), scores=np.asarray(scores, dtype=np.float64), labels=labels, attacks=attacks,
                  attack_column=keys.attack_column,
                  groups={name: [values[k] for k in ids] for name, values in keys.columns.items()})


def join_scores(scores: Mapping[str, float], keys: Keys, scores_source: str = "the scores") -> Trials:
    """Match every score to a key (see the module notes) and every key to a score.

    The attack of each spoof trial comes from the keys' attack column when it has one.

    Raises:
        MissingIdsError (with counts and examples on each side), AmbiguousIdError, DuplicateIdError (two
        scores for one key), SingleClassError.
    """
    key_ids = list(keys.labels)
    index = IdIndex([[k] for k in key_ids], keys.source)
    matched: dict[int, str] = {}
    unmatched, dups = [], []
    for ref in scores:
        i = index.find(ref)
        if i is None:
            unmatched.append(ref)
        elif i in matched:
            dups.append(f"{matched[i]!r} and {ref!r} -> {key_ids[i]!r}")
        else:
            matched[i] = ref
    if dups:
        raise DuplicateIdError(f"{scores_source}: {len(dups)} key(s) get more than one score: {_few(dups)}",
                               scores_source)
    problems = []
    no_score = [k for i, k in enumerate(key_ids) if i not in matched]
    if no_score:
        problems.append(_missing(f"the keys ({keys.source})", scores_source, no_score))
    if unmatched:
        problems.append(_missing(scores_source, f"the keys ({keys.source})", unmatched))
    _raise_missing(problems, scores_source)
    return keyed_trials(keys, key_ids, [scores[matched[i]] for i in range(len(key_ids))])


def apply_attacks(trials: Trials, attacks: Mapping[str, str] | Sequence[tuple[Sequence[str], str]],
                  source: str, column: str = "attack") -> Trials:
    """Set the attack of every spoof trial from an attack table or manifest; it replaces the keys' attacks.

    Args:
        trials: joined trials.
        attacks: ``{trial id: attack}`` (an attack table), or ``[(names, attack), ...]`` where ``names`` are
            the id and/or path of a manifest record.
        source: the file they come from, for messages.
        column: name of the attack column for reports.

    Raises:
        MissingIdsError: a spoof trial has no attack. Entries for other trials are ignored (a manifest may
        cover more clips than were scored).
        AmbiguousIdError.
    """
    entries = list(attacks.items()) if isinstance(attacks, Mapping) else list(attacks)
    names = [[name] if isinstance(name, str) else list(name) for name, _ in entries]
    index = IdIndex(names, source)
    new, missing = [], []
    for trial, label in zip(trials.ids, trials.labels, strict=True):
        if label != "spoof":
            new.append(None)
            continue
        i = index.find(trial)
        if i is None:
            missing.append(trial)
        new.append(None if i is None else entries[i][1])
    if missing:
        raise MissingIdsError(f"{len(missing)} spoof trial(s) have no attack in {source}: {_few(missing)}", source)
    return Trials(ids=trials.ids, scores=trials.scores, labels=trials.labels, attacks=new, attack_column=column,
                  groups=trials.groups)


# ------------------------------------------------------------------------------------------------ JSONL


def _jsonl(path: PathLike) -> list[tuple[int, dict]]:
    """``(line, record)`` of a JSONL manifest or predictions file, parsed as :mod:`apallm.datasets.manifest`
    parses manifest lines."""
    from apallm.datasets.errors import ManifestError
    from apallm.datasets.manifest import json_record

    source = str(path)
    records = []
    for n, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            records.append((n, json_record(line, source, n)))
        except ManifestError as exc:
            raise MalformedInputError(str(exc), source) from None
    if not records:
        raise MalformedInputError(f"{source}: no records", source)
    return records


def _names(record: dict, n: int, source: str) -> tuple[str, ...]:
    names = tuple(str(record[k]) for k in ("id", "path") if record.get(k) not in (None, ""))
    if not names:
        raise MalformedInputError(f"{source}:{n}: the record has neither 'id' nor 'path'", source)
    return names


def _manifest_names(records: list[tuple[int, dict]], source: str) -> list[tuple[str, ...]]:
    """Each manifest record's names: its id (the ``id`` field, else the id :mod:`apallm.inputs` derives from its
    path, as apallm batch and apallm score name the clip), then its path as written."""
    from apallm.inputs import assign_ids

    names = [_names(record, n, source) for n, record in records]
    explicit = [None if record.get("id") in (None, "") else str(record["id"]) for _, record in records]
    paths = ["" if given is not None else str(record["path"])
             for (_, record), given in zip(records, explicit, strict=True)]
    ids = assign_ids(explicit, paths, Path(source).parent)
    return [(trial, *(name for name in entry if name != trial)) for trial, entry in zip(ids, names, strict=True)]


#: manifest fields that are not key columns (the trial's names, label, attack and training fields)
_MANIFEST_FIELDS = ("id", "path", "label", "attack", "system", "target", "segments")


def read_manifest_keys(path: PathLike) -> Keys:
    """Keys from a JSONL manifest, such as a held-out set from ``apallm data build`` or ``apallm annotate``.

    Each record's ``id`` (else the id :mod:`apallm.inputs` derives from its ``path``: relative to the manifest's
    folder, without suffix) is the trial id and ``label`` its label; when every spoof record
    has an ``attack`` (or ``system``), that is the attack column (``attack``). Text fields that every record
    has (``dataset``, ``split``, ``language``, ...) become key columns for ``group_by``.

    Raises:
        UnreadableInputError, MalformedInputError (``file:line``: no id/path, no label), UnknownLabelError,
        DuplicateIdError.
    """
    source = str(path)
    records = _jsonl(path)
    labels: dict[str, str] = {}
    attacks: dict[str, str | None] = {}
    bad: list[str] = []
    seen = []
    for (n, record), names in zip(records, _manifest_names(records, source), strict=True):
        trial = names[0]
        if "label" not in record:
            raise MalformedInputError(f"{source}:{n}: the record has no 'label'", source)
        seen.append((trial, n))
        labels[trial] = _label(str(record["label"]), f"line {n}", bad)
        attack = record.get("attack", record.get("system"))
        attacks[trial] = None if attack in (None, "") else str(attack)
    if bad:
        raise UnknownLabelError(f"{source}: {len(bad)} label(s) are neither 'bonafide' nor 'spoof': {_few(bad)}",
                                source)
    _check_unique(seen, source)
    keys = Keys(source, labels)
    spoof_attacks = [attacks[t] for t, label in labels.items() if label == "spoof"]
    if spoof_attacks and all(a is not None for a in spoof_attacks):
        keys.attacks = {t: a or "-" for t, a in attacks.items()}
        keys.attack_column = "attack"
    common = set.intersection(*(set(record) for _, record in records)) - set(_MANIFEST_FIELDS)
    for name in sorted(common):
        if all(isinstance(record[name], str) for _, record in records):
            keys.columns[name.lower()] = {trial: record[name] for (trial, _), (_, record) in zip(seen, records,
                                                                                                 strict=True)}
    return keys


def read_manifest_attacks(path: PathLike, keys: Keys | None = None) -> list[tuple[tuple[str, ...], str | None]]:
    """Read a JSONL manifest's ``(names, attack)`` pairs for :func:`apply_attacks`.

    Each record needs ``id`` and/or ``path`` and ``label``; spoof records need ``attack`` (``system`` is read
    when there is no ``attack``). With ``keys``, a record that matches a key must carry the same label.

    Raises:
        UnreadableInputError, MalformedInputError (``file:line``), UnknownLabelError, LabelMismatchError,
        DuplicateIdError (two records with the same id or path).
    """
    source = str(path)
    records = _jsonl(path)
    pairs, bad_labels, seen = [], [], []
    for (n, record), names in zip(records, _manifest_names(records, source), strict=True):
        seen.extend((name, n) for name in set(names))
        if "label" not in record:
            raise MalformedInputError(f"{source}:{n}: the record has no 'label'", source)
        label = _label(str(record["label"]), f"line {n}", bad_labels)
        attack = record.get("attack", record.get("system"))
        if label == "spoof" and attack in (None, ""):
            raise MalformedInputError(f"{source}:{n}: a spoof record needs 'attack' (or 'system')", source)
        pairs.append((names, None if attack is None else str(attack), label, n))
    if bad_labels:
        raise UnknownLabelError(
            f"{source}: {len(bad_labels)} label(s) are neither 'bonafide' nor 'spoof': {_few(bad_labels)}", source)
    _check_unique(seen, source)
    if keys is not None:
        index = IdIndex([names for names, *_ in pairs], source)
        conflicts = []
        for trial, key_label in keys.labels.items():
            i = index.find(trial)
            if i is not None and pairs[i][2] != key_label:
                conflicts.append(f"{trial} (line {pairs[i][3]}: {pairs[i][2]}, keys: {key_label})")
        if conflicts:
            raise LabelMismatchError(
                f"{source}: {len(conflicts)} record(s) disagree with the labels of {keys.source}: {_few(conflicts)}",
                source)
    return [(names, attack) for names, attack, _, _ in pairs]


@dataclass
class Prediction:
    """One scored record of a predictions file."""

    names: tuple[str, ...]  # its id and/or path
    line: int
    p_spoof: float
    #: the predicted label: the record's ``label``, else the answer's, else ``p_spoof >= 0.5``
    label: str
    label_from_score: bool
    #: the raw answer text, when the record has one
    answer: str | None
    #: the ``rationale`` object as written (normally ``{"frequency": ..., "time": ...}``), or None
    rationale: object
    #: the clip's measured ``evidence`` as written (``{"cues": [...]}``, from ``apallm batch --evidence``), or None
    evidence: object = None


@dataclass
class Predictions:
    source: str
    records: list[Prediction]
    #: error records ``{"id"/"path": ..., "error": ...}``: ``(names, line, error message)``
    errors: list[tuple[tuple[str, ...], int, str]]


def _batch_answer(record: dict) -> str | None:
    """The ALLM's raw answer text that ``apallm batch --evidence`` keeps in ``evidence.answer.text``."""
    evidence = record.get("evidence")
    answer = evidence.get("answer") if isinstance(evidence, dict) else None
    text = answer.get("text") if isinstance(answer, dict) else None
    return text if isinstance(text, str) else None


def read_predictions(path: PathLike) -> Predictions:
    """Read a detector's predictions: JSONL, one record per clip.

    A record has ``id`` and/or ``path``, ``score`` = P(spoof) in [0, 1] (as in :class:`apallm.Verdict`), the
    predicted ``label`` (``bonafide``/``spoof`` or a synonym :func:`apallm.verdict.canonical_label` knows) and
    its rationale: ``rationale`` = ``{"frequency": ..., "time": ...}`` or the model's answer text ``answer``
    (canonical answer format; a record without ``answer`` whose ``evidence.answer.text`` holds the ALLM's raw
    answer, as ``apallm batch --evidence`` writes, is read with that text, so its format is judged as written).
    Without ``label`` the answer's label is taken, else ``score >= 0.5`` means spoof (and so does an ALLM whose
    raw answer names no label: such records count in ``label_from_score``). A record with a non-null ``error``
    (a clip the batch could not process) needs only an id or path: it is counted and reported, not evaluated.
    Rationale problems are measured, never fatal.

    Raises:
        UnreadableInputError; MalformedInputError (``file:line``: bad JSON, no id/path, no score, a score that
        is not a number or outside [0, 1]); NonFiniteScoreError; UnknownLabelError; DuplicateIdError.
    """
    from apallm.verdict import parse_answer

    source = str(path)
    records, errors, seen, non_finite, bad_labels = [], [], [], [], []
    for n, record in _jsonl(path):
        names = _names(record, n, source)
        seen.extend((name, n) for name in set(names))
        if record.get("error") is not None:
            errors.append((names, n, str(record["error"])))
            continue
        if "score" not in record:
            raise MalformedInputError(f"{source}:{n}: the record has no 'score' (P(spoof)) and no 'error'", source)
        raw = record["score"]
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise MalformedInputError(f"{source}:{n}: score {raw!r} is not a number", source)
        try:
            p_spoof = float(raw)
        except ValueError:
            raise MalformedInputError(f"{source}:{n}: score {raw!r} is not a number", source) from None
        if not math.isfinite(p_spoof):
            non_finite.append(f"line {n} ({names[0]}: {raw})")
            continue
        if not 0.0 <= p_spoof <= 1.0:
            raise MalformedInputError(f"{source}:{n}: score {raw!r} is P(spoof) and must lie in [0, 1]", source)
        answer = record.get("answer")
        answer = None if answer is None else str(answer)
        batch_answer = answer is None and _batch_answer(record) is not None
        if batch_answer:
            answer = _batch_answer(record)
        label = None
        if record.get("label") not in (None, ""):
            label = canonical_label(str(record["label"]))
            if label is None:
                bad_labels.append(f"line {n} ({record['label']!r})")
                continue
        elif answer is not None:
            label = parse_answer(answer).label
        # an ALLM whose answer names no label gave the record the label of its score
        from_score = label is None or (batch_answer and parse_answer(answer).label is None)
        records.append(Prediction(names=names, line=n, p_spoof=p_spoof,
                                  label=label or ("spoof" if p_spoof >= 0.5 else "bonafide"),
                                  label_from_score=from_score, answer=answer, rationale=record.get("rationale"),
                                  evidence=record.get("evidence")))
    _check_unique(seen, source)
    if non_finite:
        raise NonFiniteScoreError(f"{source}: {len(non_finite)} score(s) are NaN or infinite: {_few(non_finite)}",
                                  source)
    if bad_labels:
        raise UnknownLabelError(f"{source}: {len(bad_labels)} predicted label(s) are not bonafide/spoof or a "
                                f"synonym: {_few(bad_labels)}", source)
    return Predictions(source, records, errors)


def match_predictions(predictions: Predictions, keys: Keys) -> tuple[list[int | None], list[int | None]]:
    """Key index of every scored record and every error record (see the module notes on matching).

    Raises:
        MissingIdsError: a key has no record (neither scored nor error), or a record has no key.
        AmbiguousIdError, DuplicateIdError (two records for one key).
    """
    key_ids = list(keys.labels)
    index = IdIndex([[k] for k in key_ids], keys.source)

    def find(names: Sequence[str]) -> int | None:
        return next((i for i in (index.find(name) for name in names) if i is not None), None)

    scored = [find(p.names) for p in predictions.records]
    failed = [find(names) for names, _, _ in predictions.errors]
    owners: dict[int, list[str]] = defaultdict(list)
    all_names = [p.names for p in predictions.records] + [names for names, _, _ in predictions.errors]
    for i, names in zip(scored + failed, all_names, strict=True):
        if i is not None:
            owners[i].append(names[0])
    dups = [f"{key_ids[i]!r} ({', '.join(refs)})" for i, refs in owners.items() if len(refs) > 1]
    if dups:
        raise DuplicateIdError(f"{predictions.source}: {len(dups)} key(s) get more than one record: {_few(dups)}",
                               predictions.source)
    problems = []
    no_record = [k for i, k in enumerate(key_ids) if i not in owners]
    if no_record:
        problems.append(_missing(f"the keys ({keys.source})", predictions.source, no_record))
    orphans = [p.names[0] for p, i in zip(predictions.records, scored, strict=True) if i is None]
    orphans += [e[0][0] for e, i in zip(predictions.errors, failed, strict=True) if i is None]
    if orphans:
        problems.append(_missing(predictions.source, f"the keys ({keys.source})", orphans))
    _raise_missing(problems, predictions.source)
    return scored, failed


# ------------------------------------------------------------------------------------------------ writing


def write_scores(path: PathLike, scores: Iterable[tuple[str, float]]) -> Path:
    """Write a CM score table with the ASVspoof 5 header ``filename<TAB>cm-score`` (``repr`` precision)."""
    path = Path(path)
    lines = ["filename\tcm-score"] + [f"{_field(trial)}\t{float(score)!r}" for trial, score in scores]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_keys(path: PathLike, rows: Iterable[Sequence[str]], extra_columns: Sequence[str] = ()) -> Path:
    """Write a CM key table ``filename<TAB>cm-label[<TAB>extra ...]``: ``rows`` are ``(id, label, *extra)``."""
    path = Path(path)
    lines = ["\t".join(("filename", "cm-label", *extra_columns))]
    lines += ["\t".join(_field(x) for x in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _field(value: object) -> str:
    text = str(value)
    if "\t" in text or "\n" in text or "\r" in text:
        raise ValueError(f"a TSV field cannot contain a tab or a line break: {text!r}")
    return text

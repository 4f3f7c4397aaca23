"""The manifest schema, its JSONL/CSV/TSV files, stats, validation and the ``apallm data`` commands."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from apallm.commands import main
from apallm.datasets import (
    FIELDS,
    ManifestEntry,
    ManifestError,
    Segment,
    manifest_stats,
    read_manifest,
    validate_manifest,
    write_manifest,
)

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"


def write_audio(path, seconds=0.5, sr=16_000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * sr), dtype=np.float32) + 0.01, sr)
    return path


def entry(**changes):
    base = dict(id="LA_T_1271820", path="/data/LA/ASVspoof2019_LA_train/flac/LA_T_1271820.flac", label="spoof",
                dataset="asvspoof2019_la", attack="A01", speaker="LA_0079", split="train", language="en")
    return ManifestEntry(**{**base, **changes})


# --------------------------------------------------------------------------------------------- schema

def test_fields_match_the_dataclass():
    names = [f.name for f in dataclasses.fields(ManifestEntry)]
    assert sorted(FIELDS) == sorted(names) and len(FIELDS) == len(names) == 12
    assert FIELDS[:3] == ("id", "path", "label")


def test_attack_convention():
    assert entry(label="bonafide", attack=None).attack == "bonafide"
    assert entry(attack=None).attack is None  # spoof from an unknown system
    with pytest.raises(ManifestError, match="bona fide entry has attack 'bonafide', got 'A01'") as err:
        entry(label="bonafide", attack="A01")
    assert err.value.field == "attack"
    with pytest.raises(ManifestError, match="spoof entry cannot have attack 'bonafide'"):
        entry(attack="bonafide")
    with pytest.raises(ManifestError, match="attack must be a non-empty string or null, got '-'"):
        entry(attack="-")


@pytest.mark.parametrize("label", ["real", "fake", "Bonafide", "bona-fide", "", None])
def test_label_is_exactly_bonafide_or_spoof(label):
    with pytest.raises(ManifestError) as err:
        entry(label=label)
    assert err.value.field == "label"


@pytest.mark.parametrize("changes, field", [
    ({"duration": -1.0}, "duration"), ({"duration": float("nan")}, "duration"), ({"sample_rate": 0}, "sample_rate"),
    ({"sample_rate": 16000.0}, "sample_rate"), ({"id": ""}, "id"), ({"path": None}, "path"),
    ({"speaker": ""}, "speaker"),
])
def test_invalid_values_name_their_field(changes, field):
    with pytest.raises(ManifestError) as err:
        entry(**changes)
    assert err.value.field == field


def test_segments_are_checked_against_each_other_and_the_label():
    e = entry(segments=[{"start": 0, "end": 1.2, "label": "bonafide"}, {"start": 1.2, "end": 1.9, "label": "spoof"}])
    assert e.segments == (Segment(0, 1.2, "bonafide"), Segment(1.2, 1.9, "spoof"))
    with pytest.raises(ManifestError, match="overlap"):
        entry(segments=[Segment(0, 1.2, "spoof"), Segment(1.0, 1.9, "bonafide")])
    with pytest.raises(ManifestError, match="bona fide entry cannot have spoof segments"):
        entry(label="bonafide", attack=None, segments=[Segment(0, 1, "spoof")])
    with pytest.raises(ManifestError, match="needs at least one spoof segment"):
        entry(segments=[Segment(0, 1, "bonafide")])
    with pytest.raises(ManifestError, match="0 <= start < end"):
        Segment(1.0, 1.0, "spoof")
    with pytest.raises(ManifestError, match="segment label"):
        entry(segments=[{"start": 0, "end": 1, "label": "fake"}])


# --------------------------------------------------------------------------------------------- files

ENTRIES = [
    entry(duration=3.2125, sample_rate=16000, segments=[Segment(0.0, 1.12, "bonafide"), Segment(1.12, 1.7, "spoof")]),
    entry(id="LA_T_1138215", label="bonafide", attack=None, speaker='Martin Luther King, Jr. "MLK"', duration=None),
    entry(id="0", path="rel/0.wav", dataset="in_the_wild", attack=None, speaker="José Ñúñez\tx", split=None,
          language=None),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".tsv"])
def test_round_trip(tmp_path, suffix):
    path = tmp_path / "sub" / f"manifest{suffix}"
    assert write_manifest(ENTRIES, path) == 3
    assert read_manifest(path) == ENTRIES


def test_file_layouts(tmp_path):
    write_manifest(ENTRIES[:2], tmp_path / "m.csv")
    lines = (tmp_path / "m.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(FIELDS)
    assert lines[1] == ('LA_T_1271820,/data/LA/ASVspoof2019_LA_train/flac/LA_T_1271820.flac,spoof,A01,LA_0079,3.2125,'
                        '16000,asvspoof2019_la,train,en,,"[{""start"":0.0,""end"":1.12,""label"":""bonafide""},'
                        '{""start"":1.12,""end"":1.7,""label"":""spoof""}]"')
    assert lines[2].endswith(",,,asvspoof2019_la,train,en,,")
    write_manifest(ENTRIES[1:2], tmp_path / "m.jsonl")
    record = json.loads((tmp_path / "m.jsonl").read_text())
    assert list(record) == list(FIELDS) and record["attack"] == "bonafide" and record["duration"] is None


def test_read_errors_name_file_and_line(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(ENTRIES, path)
    path.write_text(path.read_text() + "{broken\n")
    with pytest.raises(ManifestError, match=r"m.jsonl:4: not valid JSON"):
        read_manifest(path)
    path.write_text(json.dumps({**ENTRIES[0].to_dict(), "label": "real"}) + "\n")
    with pytest.raises(ManifestError, match=r"m.jsonl:1: label must be 'bonafide' or 'spoof', got 'real'"):
        read_manifest(path)
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("id,path,label,dataset,score\n")
    with pytest.raises(ManifestError, match=r"m.csv:1: unknown column\(s\) score"):
        read_manifest(csv_path)
    csv_path.write_text("id,path,label,dataset,duration\na,a.wav,spoof,x,1.5\nb,b.wav,spoof,x,long\n")
    with pytest.raises(ManifestError, match=r"m.csv:3: duration 'long' is not a number"):
        read_manifest(csv_path)
    with pytest.raises(ManifestError, match="unknown manifest format '.json'"):
        read_manifest(tmp_path / "m.json")


# --------------------------------------------------------------------------------------------- stats

def test_stats_numbers():
    entries = [entry(id=str(i), duration=d, attack=a, split=s, label=lab)
               for i, (d, a, s, lab) in enumerate([(1.0, "A01", "train", "spoof"), (2.0, "A01", "dev", "spoof"),
                                                   (3.0, None, "dev", "bonafide"), (4.0, None, None, "spoof"),
                                                   (None, "A02", "train", "spoof")])]
    stats = manifest_stats(entries)
    assert stats["entries"] == 5 and stats["label"] == {"bonafide": 1, "spoof": 4}
    assert stats["attack"] == {"A01": 2, "A02": 1, "bonafide": 1, "null": 1}
    assert stats["split"] == {"dev": 2, "train": 2, "null": 1}
    assert stats["dataset"] == {"asvspoof2019_la": 5}
    assert stats["label_by_split"] == {"dev": {"bonafide": 1, "spoof": 1}, "null": {"bonafide": 0, "spoof": 1},
                                       "train": {"bonafide": 0, "spoof": 2}}
    d = stats["duration"]
    assert (d["known"], d["missing"], d["total_s"], d["mean_s"], d["min_s"], d["max_s"]) == (4, 1, 10.0, 2.5, 1.0, 4.0)
    assert (d["p5_s"], d["p25_s"], d["p50_s"], d["p75_s"], d["p95_s"]) == (1.15, 1.75, 2.5, 3.25, 3.85)
    assert d["total_h"] == round(10 / 3600, 4)
    assert stats["duration_by_label"]["bonafide"]["total_s"] == 3.0
    assert stats["duration_by_label"]["spoof"]["p50_s"] == 2.0
    assert manifest_stats([])["duration"] == {"known": 0, "total_s": 0.0, "total_h": 0.0, "missing": 0}


# --------------------------------------------------------------------------------------------- validate

def problem_manifest(tmp_path):
    """A JSONL manifest with one problem of each kind, on known lines."""
    good = write_audio(tmp_path / "audio" / "good.wav")
    write_audio(tmp_path / "audio" / "other.wav")
    (tmp_path / "audio" / "broken.wav").write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt " + b"\x01" * 40)
    rows = [
        dict(id="good", path=str(good), label="bonafide", dataset="d"),                 # 1 fine
        dict(id="missing", path="audio/missing.wav", label="spoof", dataset="d"),       # 2 missing_file
        dict(id="broken", path="audio/broken.wav", label="spoof", dataset="d"),         # 3 unreadable_file
        dict(id="twin", path="audio/other.wav", label="spoof", dataset="d"),            # 4
        dict(id="twin", path="audio/./other.wav", label="bonafide", dataset="d"),       # 5 dup id + dup path + conflict
        dict(id="bad", path="audio/good.wav", label="real", dataset="d"),               # 6 bad_label
        dict(id="neg", path="audio/good.wav", label="spoof", dataset="d", duration=-2),  # 7 invalid_entry
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows) + "{not json\n"                  # 8 invalid_entry
    path = tmp_path / "m.jsonl"
    path.write_text(text)
    return path


def test_validate_finds_each_problem_kind(tmp_path):
    report = validate_manifest(problem_manifest(tmp_path))
    found = {(p.kind, p.line) for p in report.problems}
    assert found == {("missing_file", 2), ("unreadable_file", 3), ("duplicate_id", 5), ("duplicate_path", 5),
                     ("conflicting_label", 4), ("bad_label", 6), ("invalid_entry", 7), ("invalid_entry", 8)}
    assert report.entries == 8 and not report.ok
    assert report.counts()["invalid_entry"] == 2
    unreadable = next(p for p in report.problems if p.kind == "unreadable_file")
    assert "soundfile cannot read the header" in unreadable.message and unreadable.id == "broken"
    conflict = next(p for p in report.problems if p.kind == "conflicting_label")
    assert "bonafide and spoof" in conflict.message


def test_validate_no_read_checks_existence_only_and_clean_manifest_is_ok(tmp_path):
    report = validate_manifest(problem_manifest(tmp_path), read_audio=False)
    assert "unreadable_file" not in {p.kind for p in report.problems}
    assert "missing_file" in {p.kind for p in report.problems}
    clean = tmp_path / "clean.csv"
    write_manifest([entry(id="good", path="audio/good.wav", label="bonafide", attack=None)], clean)
    assert validate_manifest(clean).ok


# --------------------------------------------------------------------------------------------- CLI

def test_cli_build_stats_validate(tmp_path, capsys):
    root = Path(shutil.copytree(FIXTURES / "asvspoof2019", tmp_path / "asv19"))
    for utt in ("LA_D_1047731", "LA_D_1105538"):
        write_audio(root / "LA" / "ASVspoof2019_LA_dev" / "flac" / f"{utt}.flac", seconds=1.0)
    out = tmp_path / "asv19.jsonl"
    assert main(["data", "build", "asvspoof2019_la", str(root), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == (f"wrote 8 entries to {out} (bonafide 3, spoof 5; duration known for 2)")
    assert len(read_manifest(out)) == 8

    assert main(["data", "stats", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "entries 8" in lines and "label bonafide 3" in lines and "attack A01 1" in lines
    assert "split train 3" in lines and "dataset asvspoof2019_la 8" in lines
    assert "label_by_split dev bonafide=1 spoof=1" in lines
    assert any(line.startswith("duration known=2 ") and "total_s=2.0" in line and "missing=6" in line
               for line in lines)
    assert main(["data", "stats", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["duration"]["p50_s"] == 1.0

    assert main(["data", "validate", str(out)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("missing_file ") for line in lines) == 6
    assert lines[-1] == f"FAILED {out}: 8 entries, 6 problems (missing_file=6)"

    dev = tmp_path / "dev.csv"
    assert main(["data", "build", "asvspoof2019_la", str(root), "-o", str(dev), "--split", "dev", "--no-probe"]) == 0
    capsys.readouterr()
    assert all(e.duration is None for e in read_manifest(dev))
    assert main(["data", "validate", str(dev), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["entries"] == 2 and report["problems"] == []


def test_cli_errors_and_help(tmp_path, capsys):
    root = Path(shutil.copytree(FIXTURES / "asvspoof2019", tmp_path / "asv19"))
    (root / "LA" / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.eval.trl.txt").write_text("LA_0039 LA_E_28\n")
    out = str(tmp_path / "m.jsonl")
    assert main(["data", "build", "asvspoof2019_la", str(root), "-o", out]) == 1
    err = capsys.readouterr().err
    assert "ASVspoof2019.LA.cm.eval.trl.txt:1: expected 5 columns, found 2" in err
    assert not (tmp_path / "m.jsonl").exists()
    assert main(["data", "build", "asvspoof2019_la", str(root), "-o", out, "--split", "test"]) == 1
    assert "has splits train, dev, eval, not 'test'" in capsys.readouterr().err
    assert main(["data", "build", "mlaad", str(root), "-o", out, "--option", "mailabs"]) == 1
    assert "--option takes KEY=VALUE" in capsys.readouterr().err
    assert main(["data", "stats", str(tmp_path / "absent.jsonl")]) == 1
    assert "apallm data stats:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["data", "build", "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    for name in ("asvspoof2019_la", "asvspoof2021_df", "asvspoof5", "in_the_wild", "codecfake", "mlaad",
                 "fake_or_real", "wavefake", "partialspoof", "generic", "--no-probe", "options: mailabs"):
        assert name in help_text

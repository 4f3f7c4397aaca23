"""Batch explanation: bad files become error records, kill -9 then resume gives every input once, reports,
sharding and merging."""

import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, brickwall_lowpass, speech_like

from apallm.batch import (
    Item,
    collect_inputs,
    merge_results,
    parse_shard,
    read_results,
    run_batch,
    shard_items,
    write_csv,
    write_html_report,
)
from apallm.cm import CMDetector
from apallm.commands import main


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "clips"
    (root / "sub").mkdir(parents=True)
    for i in range(5):
        x = speech_like(1.0, seed=i)
        sf.write(root / ("sub" if i % 2 else "") / f"good{i}.wav", brickwall_lowpass(x, 3000.0) if i % 2 else x, SR)
    (root / "corrupt.wav").write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt " + b"\x01" * 200)
    (root / "empty.flac").write_bytes(b"")
    (root / "notes.mp3").write_text("this is not audio at all, just text\n" * 5)
    (root / "readme.txt").write_text("not an input: wrong extension")
    return root


def test_inputs_from_folder_manifest_and_list(folder, tmp_path):
    items = collect_inputs(folder)
    assert [i.id for i in items] == ["corrupt", "empty", "good0", "good2", "good4", "notes", "sub/good1", "sub/good3"]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"m{k}", "path": i.path}) + "\n" for k, i in enumerate(items)))
    assert [i.id for i in collect_inputs(manifest)] == [f"m{k}" for k in range(len(items))]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# clips\n{folder / 'good0.wav'}\n{folder / 'good0.wav'}\n")
    ids = [i.id for i in collect_inputs(listing)]
    assert len(set(ids)) == 2 and ids[1].endswith("#1")


def test_bad_files_become_error_records_and_the_run_goes_on(folder, tmp_path, cm_checkpoint):
    detector = CMDetector(cm_checkpoint)
    out = tmp_path / "results.jsonl"
    counts = run_batch(collect_inputs(folder), detector, out, batch_size=3)
    records = {r["id"]: r for r in read_results(out)}
    assert counts == {"total": 8, "skipped": 0, "written": 8, "errors": 3}
    assert records["corrupt"]["error"] == "UnreadableAudioError"
    assert records["empty"]["error"] == "EmptyAudioError"
    assert records["notes"]["error"] == "UnsupportedFormatError"
    good = records["good0"]
    assert good["label"] in ("bonafide", "spoof") and 0 <= good["score"] <= 1
    assert good["rationale"]["frequency"] and good["rationale"]["time"]
    assert good["detector"] == "aasist-l"
    # scored in a batch of three and alone: the same up to float32 rounding of the batched convolutions
    np.testing.assert_allclose(good["score"], detector.score([__import__("apallm").load_audio(good["path"])])[0],
                               rtol=1e-5)
    with pytest.raises(FileExistsError):
        run_batch(collect_inputs(folder), detector, out)


@pytest.mark.slow
def test_kill_9_mid_batch_then_resume_gives_every_input_exactly_once(tmp_path, cm_checkpoint):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(24):
        sf.write(root / f"c{i:02d}.wav", speech_like(1.0, seed=i), SR)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "apallm", "batch", str(root), "-o", str(out), "--detector", str(cm_checkpoint),
           "--batch-size", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = read_results(out)
    assert 3 <= len(partial) < 24, "the run should have been killed part way"
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    records = read_results(out)
    ids = [r["id"] for r in records]
    assert sorted(ids) == [f"c{i:02d}" for i in range(24)] and len(ids) == len(set(ids))
    assert out.read_bytes().endswith(b"\n")


def test_a_torn_last_line_is_dropped_on_resume(tmp_path, cm_checkpoint):
    out = tmp_path / "r.jsonl"
    out.write_text('{"id": "a", "label": "spoof", "score": 0.9}\n{"id": "b", "lab')
    assert [r["id"] for r in read_results(out)] == ["a"]
    sf.write(tmp_path / "b.wav", speech_like(1.0), SR)
    run_batch([Item("a", "x"), Item("b", str(tmp_path / "b.wav"))], CMDetector(cm_checkpoint), out, resume=True)
    assert [r["id"] for r in read_results(out)] == ["a", "b"]


def test_html_report_has_one_row_per_input_and_csv(folder, tmp_path, cm_checkpoint):
    out = tmp_path / "results.jsonl"
    run_batch(collect_inputs(folder), CMDetector(cm_checkpoint), out)
    records = read_results(out)
    page = write_html_report(records, tmp_path / "report.html").read_text()
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr ") == len(records) == 8
    assert "8 clips:" in page and "3 errors" in page
    # a lazy thumbnail per readable clip, in the side folder (the page itself: tests/test_report.py)
    assert len(re.findall(r"<img src='report_files/\d+\.png' loading=lazy", body)) == 5
    assert len(list((tmp_path / "report_files").glob("*.png"))) == 5
    assert "<svg id=histogram" in page.split("<table")[0]  # the score histogram
    assert "http" not in page.replace("https://", "")  # self-contained
    rows = write_csv(records, tmp_path / "r.csv").read_text().splitlines()
    assert len(rows) == 9 and rows[0].startswith("id,path,label,score")


def test_shards_cover_every_input_exactly_once_and_merge_checks_it(folder, tmp_path, cm_checkpoint):
    items = collect_inputs(folder)
    detector = CMDetector(cm_checkpoint)
    parts = []
    for index in range(3):
        part = tmp_path / f"part{index}.jsonl"
        run_batch(shard_items(items, index, 3), detector, part)
        parts.append(part)
    assert sorted(r["id"] for p in parts for r in read_results(p)) == sorted(i.id for i in items)
    merged = tmp_path / "merged.jsonl"
    assert merge_results(parts, merged, expected=items) == {"records": 8, "errors": 3}
    assert [r["id"] for r in read_results(merged)] == [i.id for i in items]
    with pytest.raises(ValueError, match="missing"):
        merge_results(parts[:2], tmp_path / "m2.jsonl", expected=items)
    assert parse_shard("1/4") == (1, 4)
    with pytest.raises(ValueError):
        parse_shard("4/4")


def test_batch_cli_with_shard_suffix_merge_and_reports(folder, tmp_path, cm_checkpoint, capsys):
    for index in range(2):  # each shard holds a bad file: exit status 1
        assert main(["batch", str(folder), "-o", str(tmp_path / "res.jsonl"), "--detector", str(cm_checkpoint),
                     "--shard", f"{index}/2", "--no-progress"]) == 1
    assert (tmp_path / "res.shard0of2.jsonl").is_file() and (tmp_path / "res.shard1of2.jsonl").is_file()
    code = main(["batch-merge", str(tmp_path / "res.shard0of2.jsonl"), str(tmp_path / "res.shard1of2.jsonl"),
                 "-o", str(tmp_path / "res.jsonl"), "--input", str(folder), "--csv", str(tmp_path / "res.csv"),
                 "--report", str(tmp_path / "res.html"), "--no-thumbnails"])
    assert code == 0 and "8 records (3 errors)" in capsys.readouterr().out
    assert (tmp_path / "res.html").is_file() and len((tmp_path / "res.csv").read_text().splitlines()) == 9
    # no detector named: the one shipped in the package explains the folder
    capsys.readouterr()
    assert main(["batch", str(folder), "-o", str(tmp_path / "x.jsonl"), "--no-progress"]) == 1
    assert "8 inputs: 8 written now, 0 already done, 3 failed" in capsys.readouterr().out
    records = read_results(tmp_path / "x.jsonl")
    assert len(records) == 8 and {r["detector"] for r in records if "error" not in r} == {"apallm-default"}


# ------------------------------------------------------------------------------------ inputs of real folders

def repeated_stems(root):
    """A folder tree whose files share one stem, as real corpora have them (a/00001.wav, b/00001.wav, ...)."""
    for k, sub in enumerate(("a", "b", "c/d")):
        (root / sub).mkdir(parents=True)
        sf.write(root / sub / "00001.wav", speech_like(1.0, seed=k), SR)
    return root


def test_batch_explains_every_clip_of_a_tree_with_repeated_stems(tmp_path, cm_checkpoint, capsys):
    root = repeated_stems(tmp_path / "corpus")
    assert main(["batch", str(root), "-o", str(tmp_path / "r.jsonl"), "--detector", str(cm_checkpoint),
                 "--no-progress"]) == 0
    assert "3 inputs: 3 written now, 0 already done, 0 failed" in capsys.readouterr().out
    records = read_results(tmp_path / "r.jsonl")
    assert [r["id"] for r in records] == ["a/00001", "b/00001", "c/d/00001"]
    assert all("error" not in r and "true_label" not in r for r in records)


@pytest.mark.parametrize("header, rows", [
    ("path\tlabel", ["corpus/a/00001.wav\tbona fide", "corpus/b/00001.wav\tfake", "corpus/c/d/00001.wav\tspoof"]),
    ("path\tlabel\tsystem\tsource_repo\tlicense\tduration_s\tsample_rate\tchannels\tnotes\tsource_commit",
     ["corpus/a/00001.wav\tbonafide\tground_truth\to/r\tCC-BY-4.0\t1.0\t16000\t1\tVCTK recording\tabc",
      "corpus/b/00001.wav\tspoof\tvits\to/r\tCC-BY-4.0\t1.0\t16000\t1\t\tabc",
      "corpus/c/d/00001.wav\tspoof\tglow-tts\to/r\tCC-BY-4.0\t1.0\t16000\t1\tTTS\tabc"]),
], ids=["path-label", "realworld-dev"])
def test_batch_takes_a_plain_tsv_and_a_realworld_dev_manifest(tmp_path, cm_checkpoint, header, rows):
    repeated_stems(tmp_path / "corpus")
    table = tmp_path / "manifest.tsv"
    table.write_text("\n".join([header, *rows]) + "\n")
    assert main(["batch", str(table), "-o", str(tmp_path / "r.jsonl"), "--detector", str(cm_checkpoint),
                 "--no-progress"]) == 0
    records = read_results(tmp_path / "r.jsonl")
    assert [(r["id"], r["true_label"]) for r in records] == [
        ("corpus/a/00001", "bonafide"), ("corpus/b/00001", "spoof"), ("corpus/c/d/00001", "spoof")]
    assert all(r["label"] in ("bonafide", "spoof") and "input" not in r for r in records)


def test_batch_exit_status_says_whether_any_input_failed(tmp_path, cm_checkpoint, capsys):
    repeated_stems(tmp_path / "corpus")
    table = tmp_path / "clips.tsv"
    table.write_text("path\tlabel\ncorpus/a/00001.wav\tspoof\ncorpus/missing.wav\tbonafide\n")
    args = ["--detector", str(cm_checkpoint), "--no-progress"]
    assert main(["batch", str(table), "-o", str(tmp_path / "r.jsonl"), *args]) == 1
    assert "2 inputs: 2 written now, 0 already done, 1 failed" in capsys.readouterr().out
    records = {r["id"]: r for r in read_results(tmp_path / "r.jsonl")}
    assert records["corpus/missing"]["error"] and records["corpus/missing"]["true_label"] == "bonafide"
    assert "error" not in records["corpus/a/00001"] and records["corpus/a/00001"]["true_label"] == "spoof"
    # a resumed run still reports the failure of the earlier one
    assert main(["batch", str(table), "-o", str(tmp_path / "r.jsonl"), "--resume", *args]) == 1
    assert "0 written now, 2 already done, 1 failed" in capsys.readouterr().out
    table.write_text("path\tlabel\ncorpus/a/00001.wav\tspoof\n")
    assert main(["batch", str(table), "-o", str(tmp_path / "ok.jsonl"), *args]) == 0
    # inputs that cannot be read at all: nothing runs, exit status 2 and the row named
    table.write_text("path\tlabel\ncorpus/a/00001.wav\tmaybe\n")
    assert main(["batch", str(table), "-o", str(tmp_path / "bad.jsonl"), *args]) == 2
    assert "clips.tsv:2: label 'maybe' is neither bonafide nor spoof" in capsys.readouterr().err
    table.write_text("id\tpath\nk\tcorpus/a/00001.wav\nk\tcorpus/b/00001.wav\n")
    assert main(["batch", str(table), "-o", str(tmp_path / "bad.jsonl"), *args]) == 2
    assert "id 'k' is used twice: lines 2 and 3" in capsys.readouterr().err


def test_batch_and_batch_merge_options_have_help(capsys):
    for command in (["batch", "--help"], ["batch-merge", "--help"]):
        with pytest.raises(SystemExit):
            main(command)
        text = capsys.readouterr().out
        options = re.findall(r"^  (-[-\w, ]+?)(?:\s{2,}|\n)(.*)", text, flags=re.M)
        assert options and all(help_text.strip() or "\n" in opt for opt, help_text in options), text


def test_non_speech_gets_no_speech_records_and_auxiliary_scores_go_beside_verdicts(tmp_path, cm_checkpoint, capsys):
    """White noise and digital silence abstain, with their flags; --cm is auxiliary in batch as everywhere."""
    root = tmp_path / "clips"
    root.mkdir()
    sf.write(root / "noise.wav", (0.3 * np.random.default_rng(0).standard_normal(2 * SR)).astype(np.float32), SR)
    sf.write(root / "silence.wav", np.zeros(2 * SR, np.float32), SR)
    sf.write(root / "speech.wav", speech_like(2.0), SR)
    out = tmp_path / "r.jsonl"
    assert main(["batch", str(root), "-o", str(out), "--detector", str(cm_checkpoint), "--cm", str(cm_checkpoint),
                 "--no-progress"]) == 0
    records = {r["id"]: r for r in read_results(out)}
    for name in ("noise", "silence"):
        assert records[name]["label"] == "no_speech" and records[name]["score"] is None
        assert "no_speech" in records[name]["flags"]
    assert "silent" in records["silence"]["flags"]
    speech = records["speech"]
    assert speech["label"] in ("bonafide", "spoof") and speech["detector"] == "aasist-l"
    assert speech["cm_scores"] == {"aasist-l": pytest.approx(speech["score"], abs=1e-6)}
    assert speech["uncertain"] == (0.4 <= speech["score"] <= 0.6)

"""apallm eval on score/key files: metrics against apallm.metrics, per-attack tables, outputs, bad inputs."""

import json

import numpy as np
import pytest
from PIL import Image

from apallm import metrics
from apallm.commands import main
from apallm.evaluation import (
    AmbiguousIdError,
    DuplicateIdError,
    LabelMismatchError,
    MalformedInputError,
    MissingIdsError,
    NonFiniteScoreError,
    SingleClassError,
    UnknownLabelError,
    UnreadableInputError,
    evaluate_files,
    read_keys,
)


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_files(tmp_path, n_bona=40, n_spoof=60, seed=0):
    """Scores and keys with three attacks of different difficulty; returns paths and the true score arrays."""
    rng = np.random.default_rng(seed)
    scores, keys, bona, spoof = ["filename\tcm-score"], ["filename\tcm-label\tattack"], [], []
    for i in range(n_bona + n_spoof):
        trial = f"E_{i:05d}"
        if i < n_bona:
            s, label, attack = rng.normal(2.0, 1.0), "bonafide", "bonafide"
            bona.append(s)
        else:
            attack = f"A{i % 3 + 1:02d}"
            s, label = rng.normal(-1.0 + i % 3, 1.0), "spoof"
            spoof.append((attack, s))
        scores.append(f"{trial}\t{s!r}")
        keys.append(f"{trial}\t{label}\t{attack}")
    return write(tmp_path / "scores.tsv", scores), write(tmp_path / "keys.tsv", keys), np.array(bona), spoof


def run_eval(capsys, *args):
    code = main(["eval", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_metrics_json_matches_apallm_metrics_called_directly(tmp_path, capsys):
    scores, keys, bona, spoof = make_files(tmp_path)
    spoof_scores = np.array([s for _, s in spoof])
    code, out, err = run_eval(capsys, "--scores", scores, "--keys", keys, "--out", tmp_path / "out", "--n-boot", 200)
    assert code == 0, err
    result = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for key, value in metrics.compute_metrics(bona, spoof_scores).items():
        assert result[key] == value, key
    assert result["eer_ci"] == list(metrics.bootstrap_eer_ci(bona, spoof_scores, n_boot=200, alpha=0.05, seed=0))
    assert result["eer_ci"][0] <= result["eer"] <= result["eer_ci"][1]
    assert (result["n_bonafide"], result["n_spoof"]) == (40, 60)
    assert f"EER {100 * result['eer']:.2f} %" in out and "n = 40 bona fide + 60 spoof" in out
    for attack in ("A01", "A02", "A03"):
        expected = metrics.compute_eer(bona, [s for a, s in spoof if a == attack])[0]
        row = next(r for r in result["per_attack"] if r["attack"] == attack)
        assert row["eer"] == expected and row["n_spoof"] == sum(a == attack for a, _ in spoof)


def test_per_attack_table_on_a_constructed_case(tmp_path, capsys):
    # bona fide 1, 2, 3, 4; attack A (-1, -2) is separated: EER 0; attack B (2.5, 5): sorted trials
    # 1b 2b 2.5s 3b 4b 5s reach frr = far = 0.5 after 2.5: EER 0.5. The bona fide rows' attack cell is ignored.
    scores = write(tmp_path / "s.tsv", ["filename\tcm-score", "b1\t1", "b2\t2", "b3\t3", "b4\t4",
                                        "a1\t-1", "a2\t-2", "c1\t2.5", "c2\t5"])
    keys = write(tmp_path / "k.tsv", ["filename\tcm-label\tattack", "b1\tbonafide\t-", "b2\tbonafide\t-",
                                      "b3\tbonafide\tB", "b4\tbonafide\t-", "a1\tspoof\tA", "a2\tspoof\tA",
                                      "c1\tspoof\tB", "c2\tspoof\tB"])
    code, out, err = run_eval(capsys, "--scores", scores, "--keys", keys, "--out", tmp_path / "out", "--n-boot", 0)
    assert code == 0, err
    result = json.loads((tmp_path / "out" / "metrics.json").read_text())
    table = {row["attack"]: row for row in result["per_attack"]}
    assert sorted(table) == ["A", "B"]
    assert table["A"]["eer"] == 0.0 and table["B"]["eer"] == 0.5
    assert [(table[a]["n_bonafide"], table[a]["n_spoof"]) for a in "AB"] == [(4, 2), (4, 2)]
    assert result["eer_ci"] is None and result["attack_column"] == "attack"
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "## Per attack" in summary and "| B | 4 | 2 | 50.00 |" in summary


def test_outputs_are_valid_pngs_and_json_flag_prints_metrics(tmp_path, capsys):
    scores, keys, _, _ = make_files(tmp_path)
    code, out, _ = run_eval(capsys, "--scores", scores, "--keys", keys, "--out", tmp_path / "o", "--json",
                            "--n-boot", 50)
    assert code == 0
    printed = json.loads(out)
    assert printed == json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert {"eer", "min_dcf", "act_dcf", "cllr", "n_bonafide", "n_spoof", "eer_ci", "per_attack"} <= set(printed)
    for name in ("det.png", "hist.png"):
        with Image.open(tmp_path / "o" / name) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) >= 300
    assert (tmp_path / "o" / "summary.md").read_text().startswith("# ")


def test_asvspoof5_column_names_whitespace_tables_group_by_and_attack_sources(tmp_path, capsys):
    # the package's full key tables: space-separated, trial_anon / cm-label / attack_anon / codec columns
    keys = write(tmp_path / "full_keys.txt", [
        "tar_spk_anon trial_anon codec attack_anon cm-label",
        "S1 T1 C01 bonafide bonafide", "S1 T2 C02 bonafide bonafide", "S2 T3 C01 A11 spoof",
        "S2 T4 C02 A12 spoof", "S3 T5 C02 A11 spoof"])
    scores = write(tmp_path / "s.tsv", ["filename\tcm_score", "T1\t3", "T2\t-1", "T3\t0", "T4\t1", "T5\t-2"])
    code, _, err = run_eval(capsys, "--scores", scores, "--keys", keys, "--out", tmp_path / "o", "--n-boot", 0,
                            "--group-by", "codec")
    assert code == 0, err
    result = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert result["attack_column"] == "attack_anon" and [r["attack"] for r in result["per_attack"]] == ["A11", "A12"]
    codec = {row["value"]: row for row in result["groups"]["codec"]}
    assert codec["C01"]["eer"] == metrics.compute_eer([3], [0])[0]
    assert codec["C02"]["eer"] == metrics.compute_eer([-1], [1, -2])[0]
    assert read_keys(keys).columns["tar_spk_anon"]["T3"] == "S2"

    attacks = write(tmp_path / "a.tsv", ["filename\tattack", "T3\tX", "T4\tY", "T5\tY", "T99\tZ"])
    _, result = evaluate_files(scores=scores, keys=keys, attacks=attacks, n_boot=0)
    assert {r["attack"]: r["n_spoof"] for r in result["per_attack"]} == {"X": 1, "Y": 2}

    manifest = tmp_path / "m.jsonl"
    write(manifest, [json.dumps(r) for r in (
        {"id": "T1", "label": "bonafide"}, {"path": "/data/T2.flac", "label": "bonafide"},
        {"path": "audio/T3.wav", "label": "spoof", "attack": "vits"},
        {"id": "T4", "label": "spoof", "system": "glow-tts"}, {"id": "T5", "label": "spoof", "attack": "vits"})])
    _, result = evaluate_files(scores=scores, keys=keys, manifest=manifest, n_boot=0)
    assert {r["attack"]: r["n_spoof"] for r in result["per_attack"]} == {"glow-tts": 1, "vits": 2}


def test_ids_match_by_file_stem(tmp_path):
    keys = write(tmp_path / "k.tsv", ["filename\tcm-label", "audio/x.wav\tbonafide", "audio/y.flac\tspoof"])
    scores = write(tmp_path / "s.tsv", ["filename\tcm-score", "y\t-1", "/abs/x.wav\t1"])
    trials, result = evaluate_files(scores=scores, keys=keys, n_boot=0)
    assert trials.ids == ["audio/x.wav", "audio/y.flac"] and list(trials.scores) == [1.0, -1.0]
    assert result["eer"] == 0.0


KEYS = ["filename\tcm-label", "E1\tbonafide", "E2\tbonafide", "E3\tspoof", "E4\tspoof"]
SCORES = ["filename\tcm-score", "E1\t1.5", "E2\t0.5", "E3\t-1", "E4\t-0.5"]


@pytest.mark.parametrize("scores, keys, error, needles", [
    (SCORES[:-1] + ["X9\t0.1", "X8\t0.2"], KEYS, MissingIdsError,
     ["1 id(s) in the keys", "E4", "2 id(s) in", "X9, X8"]),
    (SCORES + ["E2\t0.7"], KEYS, DuplicateIdError, ["'E2' (lines 3, 6)"]),
    (SCORES[:2] + ["E2\tnan", "E3\t-inf", "E4\t1"], KEYS, NonFiniteScoreError,
     ["2 score(s)", "line 3 (E2: nan)", "line 4 (E3: -inf)"]),
    (SCORES, KEYS[:3] + ["E3\tfake", "E4\tSPOOF"], UnknownLabelError, ["1 label(s)", "line 4 ('fake')"]),
    (SCORES, ["filename\tcm-label"] + [f"E{i}\tspoof" for i in range(1, 5)], SingleClassError,
     ["all 4 trials are spoof", "no bonafide"]),
    (SCORES[:3] + ["E3\t-1\textra"] + SCORES[4:], KEYS, MalformedInputError, ["s.tsv:4:", "expected 2"]),
    (SCORES[:2] + ["E2\tabc"] + SCORES[3:], KEYS, MalformedInputError, ["s.tsv:3:", "'abc' is not a number"]),
    (SCORES[1:], KEYS, MalformedInputError, ["s.tsv:1:", "no trial id column", "filename\\tcm-score"]),
    (SCORES, ["filename\tcm-label", "a/E1.wav\tbonafide", "b/E1.wav\tbonafide", "E3\tspoof", "E4\tspoof"],
     AmbiguousIdError, ["'E1' matches 2 entries"]),
])
def test_bad_inputs_get_specific_errors_and_exit_status_2(tmp_path, capsys, scores, keys, error, needles):
    s, k = write(tmp_path / "s.tsv", scores), write(tmp_path / "k.tsv", keys)
    with pytest.raises(error) as info:
        evaluate_files(scores=s, keys=k, n_boot=0)
    for needle in needles:
        assert needle in info.value.message
    code, out, err = run_eval(capsys, "--scores", s, "--keys", k, "--out", tmp_path / "o")
    assert code == 2 and out == ""
    assert err.startswith(f"apallm eval: {error.__name__}: ") and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_unreadable_files_and_bad_attack_sources(tmp_path, capsys):
    s, k = write(tmp_path / "s.tsv", SCORES), write(tmp_path / "k.tsv", KEYS)
    code, _, err = run_eval(capsys, "--scores", tmp_path / "nope.tsv", "--keys", k, "--out", tmp_path / "o")
    assert code == 2 and "UnreadableInputError" in err and "nope.tsv: no such file" in err
    with pytest.raises(UnreadableInputError, match="is a directory"):
        evaluate_files(scores=tmp_path, keys=k)
    (tmp_path / "latin1.tsv").write_bytes("filename\tcm-score\nE\u00e9\t1\n".encode("latin-1"))
    with pytest.raises(UnreadableInputError, match="not UTF-8"):
        evaluate_files(scores=tmp_path / "latin1.tsv", keys=k)
    with pytest.raises(MalformedInputError, match="empty"):
        evaluate_files(scores=write(tmp_path / "e.tsv", [""]), keys=k)

    attacks = write(tmp_path / "a.tsv", ["filename\tattack", "E3\tA01"])
    with pytest.raises(MissingIdsError, match=r"1 spoof trial\(s\) have no attack in .*: E4"):
        evaluate_files(scores=s, keys=k, attacks=attacks, n_boot=0)
    manifest = write(tmp_path / "m.jsonl", [json.dumps({"id": "E1", "label": "spoof", "attack": "A01"})])
    with pytest.raises(LabelMismatchError, match=r"E1 \(line 1: spoof, keys: bonafide\)"):
        evaluate_files(scores=s, keys=k, manifest=manifest, n_boot=0)
    write(manifest, [json.dumps({"id": "E3", "label": "spoof"})])
    with pytest.raises(MalformedInputError, match=r"m.jsonl:1: a spoof record needs 'attack'"):
        evaluate_files(scores=s, keys=k, manifest=manifest, n_boot=0)
    write(manifest, ['{"id": "E3", "label": "spoof", "attack": "A"}', "{not json"])
    code, _, err = run_eval(capsys, "--scores", s, "--keys", k, "--manifest", manifest, "--out", tmp_path / "o")
    assert code == 2 and "MalformedInputError" in err and "m.jsonl:2: not valid JSON" in err
    code, _, err = run_eval(capsys, "--scores", s, "--keys", k, "--group-by", "codec", "--out", tmp_path / "o")
    assert code == 2 and "no column 'codec'" in err


def test_cli_help_lists_eval():
    with pytest.raises(SystemExit) as info:
        main(["eval", "--help"])
    assert info.value.code == 0


def test_a_manifest_without_ids_as_keys_names_trials_as_batch_and_score_do(tmp_path):
    # realworld-dev's shape: path, label, system, ...; the same stem in several folders
    keys = write(tmp_path / "manifest.tsv", ["path\tlabel\tsystem\tsource_repo",
                                             "audio/a/00001.wav\tbonafide\tground_truth\to/a",
                                             "audio/b/00001.wav\tspoof\tvits\to/b",
                                             "audio/c/d/00001.flac\tspoof\tglow-tts\to/b"])
    table = read_keys(keys)
    assert list(table.labels) == ["audio/a/00001", "audio/b/00001", "audio/c/d/00001"]
    assert table.attack_column == "system" and table.columns["source_repo"]["audio/b/00001"] == "o/b"
    scores = write(tmp_path / "s.tsv", ["filename\tcm-score", "audio/c/d/00001\t-2", "audio/a/00001\t1",
                                        "audio/b/00001\t-1"])
    trials, result = evaluate_files(scores=scores, keys=keys, n_boot=0)
    assert list(trials.scores) == [1.0, -1.0, -2.0] and result["eer"] == 0.0
    # batch records (predictions) of the same clips join by id too
    predictions = write(tmp_path / "p.jsonl", [json.dumps({"id": trial, "score": p, "label": label})
                                               for trial, p, label in (("audio/a/00001", 0.2, "bonafide"),
                                                                       ("audio/b/00001", 0.9, "spoof"),
                                                                       ("audio/c/d/00001", 0.7, "spoof"))])
    assert evaluate_files(predictions=predictions, keys=keys, n_boot=0)[0].ids == list(table.labels)
    # a JSONL manifest: records without id get the derived id, records with one keep it
    manifest = write(tmp_path / "m.jsonl", [json.dumps(r) for r in (
        {"path": "audio/a/00001.wav", "label": "bonafide"}, {"id": "B1", "path": "audio/b/00001.wav", "label": "spoof"},
        {"path": str(tmp_path / "audio" / "c" / "d" / "00001.flac"), "label": "spoof", "attack": "glow-tts"})])
    assert list(read_keys(manifest).labels) == ["audio/a/00001", "B1", "audio/c/d/00001"]

"""``apallm cm summary``, ``apallm cm import-aasist`` and ``apallm score`` (ASVspoof TSV, bad clips skipped, the ids
apallm batch and apallm eval use)."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, speech_like

from apallm.audio import load_audio
from apallm.cm import AASIST, AASIST_L, CMDetector, fixed_crop
from apallm.commands import main
from apallm.detectors import Detector, load_detector
from apallm.evaluation import evaluate_files


@pytest.mark.parametrize("name, count", [("aasist", 297866), ("aasist-l", 85306)])
def test_summary_last_line_is_the_trainable_parameter_count(capsys, name, count):
    assert main(["cm", "summary", name]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"trainable_parameters: {count}"
    assert any(line.startswith("encoder") for line in lines)


def test_summary_of_an_unknown_name_fails_with_a_message(capsys):
    assert main(["cm", "summary", "rawnet9"]) == 2
    assert "no such checkpoint folder" in capsys.readouterr().err


def test_import_aasist_cli_writes_a_loadable_checkpoint(tmp_path, capsys):
    torch.manual_seed(1)
    model = AASIST(AASIST_L)
    torch.save(model.state_dict(), tmp_path / "w.pth")
    (tmp_path / "w.conf").write_text(json.dumps({"model_config": AASIST_L.to_dict()}))
    assert main(["cm", "import-aasist", str(tmp_path / "w.pth"), str(tmp_path / "w.conf"),
                 "-o", str(tmp_path / "out")]) == 0
    assert "85306 trainable parameters" in capsys.readouterr().out
    assert main(["cm", "summary", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "trainable_parameters: 85306"
    assert main(["cm", "import-aasist", str(tmp_path / "missing.pth"), str(tmp_path / "w.conf"),
                 "-o", str(tmp_path / "out2")]) == 1
    assert "missing.pth: no such file" in capsys.readouterr().err


def test_fixed_crop_repeats_short_clips_and_cuts_long_ones():
    np.testing.assert_array_equal(fixed_crop(np.arange(3), 7), [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(fixed_crop(np.arange(10), 4), [0, 1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        fixed_crop(np.zeros(0), 4)


@pytest.mark.slow
def test_detector_scores_are_spoof_probabilities_of_the_logits(cm_checkpoint):
    detector = load_detector("aasist-l", checkpoint=cm_checkpoint, batch_size=2)
    assert isinstance(detector, Detector) and detector.name == "aasist-l"
    clips = [load_audio(speech_like(s, seed=s), sample_rate=SR) for s in (1, 2, 5)]
    logits = detector.logits(clips)
    p_spoof = detector.score(clips)
    assert logits.shape == (3, 2) and p_spoof.shape == (3,)
    np.testing.assert_allclose(p_spoof, 1 / (1 + np.exp(logits[:, 1] - logits[:, 0])), rtol=1e-5)
    np.testing.assert_array_equal(detector.bonafide_logits(clips), logits[:, 1])
    assert detector.explain(clips[:1])[0].detector == "aasist-l"
    with pytest.raises(ValueError, match="not 'aasist'"):
        load_detector("aasist", checkpoint=cm_checkpoint)


def test_score_writes_an_asvspoof_tsv_and_survives_bad_clips(tmp_path, cm_checkpoint, capsys):
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "bona.flac", speech_like(1.5, seed=1), SR)
    sf.write(audio / "fake.wav", speech_like(5.0, seed=2), 22_050)
    sf.write(audio / "short.wav", speech_like(0.5, seed=3), SR)
    (audio / "corrupt.wav").write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt " + b"\x01" * 300)
    entries = [
        {"path": "audio/bona.flac", "label": "bonafide"},
        {"path": "audio/corrupt.wav", "label": "spoof"},
        {"path": "audio/fake.wav", "label": "spoof", "id": "LA_E_0001"},
        {"path": "audio/missing.ogg", "label": "spoof"},
        {"path": "audio/short.wav", "label": "bonafide"},
    ]
    manifest = tmp_path / "clips.jsonl"
    manifest.write_text("\n".join(json.dumps(e) for e in entries) + "\nnot json\n")
    out = tmp_path / "scores" / "cm.tsv"

    code = main(["score", "--cm", str(cm_checkpoint), str(manifest), "-o", str(out), "--batch-size", "2"])
    captured = capsys.readouterr()
    assert code == 1
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    assert rows[0] == ["filename", "cm-score"]
    assert [r[0] for r in rows[1:]] == ["audio/bona", "LA_E_0001", "audio/short"]  # ids as apallm batch gives them
    scores = [float(r[1]) for r in rows[1:]]
    assert all(np.isfinite(scores))
    err = captured.err.splitlines()
    assert len(err) == 3
    assert ":6" in err[0] and "not valid JSON" in err[0]  # rows that name no clip are reported first
    assert "corrupt.wav" in err[1] and "UnreadableAudioError" in err[1]
    assert "missing.ogg" in err[2] and "no such file" in err[2]
    assert "scored 3 clips" in captured.out and "skipped 3" in captured.out and "EER" in captured.out

    # the TSV holds the detector's bona fide logits for the same clips
    detector = CMDetector(cm_checkpoint)
    clips = [load_audio(audio / name) for name in ("bona.flac", "fake.wav", "short.wav")]
    np.testing.assert_allclose(scores, detector.bonafide_logits(clips), rtol=1e-6, atol=1e-6)


def test_score_refuses_a_missing_manifest_or_checkpoint(tmp_path, cm_checkpoint, capsys):
    assert main(["score", "--cm", str(cm_checkpoint), str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "s.tsv")]) == 2
    (tmp_path / "m.jsonl").write_text("")
    assert main(["score", "--cm", str(tmp_path), str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "s.tsv")]) == 2
    err = capsys.readouterr().err
    assert "no such manifest" in err and "no config.json" in err


def repeated_stems(root):
    """A corpus tree whose files share one stem (a/00001.wav, b/00001.wav, c/d/00001.wav) and a manifest of it."""
    for k, sub in enumerate(("a", "b", "c/d")):
        (root / "audio" / sub).mkdir(parents=True)
        sf.write(root / "audio" / sub / "00001.wav", speech_like(1.0, seed=k), SR)
    manifest = root / "manifest.tsv"
    manifest.write_text("path\tlabel\tsystem\tnotes\naudio/a/00001.wav\tbonafide\tground_truth\t\n"
                        "audio/b/00001.wav\tspoof\tvits\tTTS\naudio/c/d/00001.wav\tspoof\tglow-tts\t\n")
    return manifest


def test_score_keeps_every_clip_whose_stem_repeats_and_its_ids_join_with_eval(tmp_path, cm_checkpoint, capsys):
    manifest = repeated_stems(tmp_path / "corpus")
    out = tmp_path / "s.tsv"
    assert main(["score", "--cm", str(cm_checkpoint), str(manifest), "-o", str(out)]) == 0
    assert "scored 3 clips" in capsys.readouterr().out
    ids = [line.split("\t")[0] for line in out.read_text().splitlines()[1:]]
    assert ids == ["audio/a/00001", "audio/b/00001", "audio/c/d/00001"]
    # the manifest is the key table: its trials carry the same ids, so every score finds its key
    trials, result = evaluate_files(scores=out, keys=manifest, n_boot=0)
    assert trials.ids == ids and trials.labels == ["bonafide", "spoof", "spoof"]
    assert {row["attack"] for row in result["per_attack"]} == {"vits", "glow-tts"}
    # a JSONL manifest without ids, passed as keys, names its trials the same way
    keys = tmp_path / "corpus" / "keys.jsonl"
    keys.write_text("".join(json.dumps({"path": f"audio/{sub}/00001.wav", "label": label}) + "\n"
                            for sub, label in (("a", "bonafide"), ("b", "spoof"), ("c/d", "spoof"))))
    assert evaluate_files(scores=out, keys=keys, n_boot=0)[0].ids == ids
    # a folder scores the same clips, named relative to it
    assert main(["score", "--cm", str(cm_checkpoint), str(tmp_path / "corpus" / "audio"), "-o", str(out)]) == 0
    assert [line.split("\t")[0] for line in out.read_text().splitlines()[1:]] == ["a/00001", "b/00001", "c/d/00001"]


def test_score_skips_rows_with_an_unknown_label_or_a_repeated_id(tmp_path, cm_checkpoint, capsys):
    manifest = repeated_stems(tmp_path / "corpus")
    manifest.write_text("id\tpath\tlabel\nk1\taudio/a/00001.wav\tbona fide\nk2\taudio/b/00001.wav\tmaybe\n"
                        "k1\taudio/c/d/00001.wav\tspoof\n")
    assert main(["score", "--cm", str(cm_checkpoint), str(manifest), "-o", str(tmp_path / "s.tsv")]) == 1
    captured = capsys.readouterr()
    assert "manifest.tsv:3: label 'maybe' is neither bonafide nor spoof" in captured.err
    assert "manifest.tsv:4: id 'k1' is used twice: lines 2 and 4" in captured.err
    assert "scored 1 clip" in captured.out and "skipped 2" in captured.out

"""eval/harness.py on a tiny fake realworld-dev made here, with a detector defined here; and the skip path."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, brickwall_lowpass, speech_like

from apallm import metrics
from apallm.detectors import Detector
from apallm.evaluation import DetectorOutputError, score_files
from apallm.evidence import measure_cues

HARNESS = Path(__file__).resolve().parents[1] / "eval" / "harness.py"
COLUMNS = ["path", "label", "system", "source_repo", "license", "duration_s", "sample_rate", "channels", "notes",
           "source_commit"]


def load_harness():
    spec = importlib.util.spec_from_file_location("apallm_eval_harness", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BandwidthDetector(Detector):
    """P(spoof) from the measured bandwidth cue: the narrower the band, the more likely a spoof."""

    name = "bandwidth-cue"

    def score(self, clips):
        bandwidths = [next(c for c in measure_cues(clip) if c.name == "bandwidth_hz").value for clip in clips]
        return np.array([min(1.0, max(0.0, (8000.0 - bw) / 8000.0)) for bw in bandwidths])


class BrokenDetector(Detector):
    name = "broken"

    def score(self, clips):
        return np.full(len(clips), np.nan)


@pytest.fixture
def fake_root(tmp_path):
    """Two sources: one with both labels (wide-band bona fide, 4 kHz band-limited spoofs from two systems, at
    22.05 kHz and in stereo), one bona fide only; plus a corrupt file that must be skipped."""
    root = tmp_path / "realworld-dev"
    rows = []

    def add(name, label, system, source, wave, sr=SR):
        path = root / "audio" / source.replace("/", "_") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if wave is None:
            path.write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt " + b"\x01" * 64)
        else:
            sf.write(path, wave, sr)
        rows.append([str(path.relative_to(root)), label, system, source, "test", "1.5", str(sr), "1", "made here",
                     "0" * 40])

    for i in range(3):
        add(f"gt_{i}.wav", "bonafide", "ground_truth", "demo/a", speech_like(1.5, seed=i))
        add(f"vits_{i}.flac", "spoof", "vits", "demo/a", brickwall_lowpass(speech_like(1.5, seed=10 + i), 4000))
    add("glow_0.wav", "spoof", "glow-tts", "demo/a",
        np.stack([brickwall_lowpass(speech_like(1.5, seed=20), 3000)] * 2, axis=1), sr=22_050)
    add("broken.wav", "spoof", "vits", "demo/a", None)
    for i in range(2):
        add(f"libri_{i}.flac", "bonafide", "ground_truth", "corpus/b", speech_like(1.5, seed=30 + i))
    lines = ["\t".join(COLUMNS)] + ["\t".join(row) for row in rows]
    (root / "manifest.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_harness_scores_a_detector_and_reports_per_source_and_per_system(fake_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("APALLM_REALWORLD_DEV", str(fake_root))
    out = tmp_path / "out"
    code = load_harness().main(["--detector", "test_harness:BandwidthDetector", "--out", str(out),
                                "--batch-size", "3", "--n-boot", "100"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "skipped audio/demo_a/broken.wav: UnreadableAudioError" in printed
    assert "1 clip(s) skipped" in printed and "## Per system" in printed and "## Per source_repo" in printed

    result = json.loads((out / "metrics.json").read_text())
    assert (result["n_bonafide"], result["n_spoof"]) == (5, 4)
    assert result["eer"] == 0.0 and result["eer_ci"] == [0.0, 0.0]
    assert [s["id"] for s in result["skipped"]] == ["audio/demo_a/broken.wav"]
    assert {r["attack"]: r["n_spoof"] for r in result["per_attack"]} == {"glow-tts": 1, "vits": 3}
    sources = {row["value"]: row for row in result["groups"]["source_repo"]}
    assert sources["demo/a"]["eer"] == 0.0 and (sources["demo/a"]["n_bonafide"], sources["demo/a"]["n_spoof"]) == (3, 4)
    assert sources["corpus/b"]["eer"] is None and sources["corpus/b"]["n_spoof"] == 0
    for name in ("scores.tsv", "keys.tsv", "summary.md", "det.png", "hist.png"):
        assert (out / name).is_file()
    keys = (out / "keys.tsv").read_text().splitlines()
    assert keys[0] == "filename\tcm-label\tsystem\tsource_repo" and len(keys) == 10

    # the written scores reproduce the run through --scores, here keyed by file stem
    stems = ["filename\tcm-score"] + [f"{Path(line.split(chr(9))[0]).stem}\t{line.split(chr(9))[1]}"
                                      for line in (out / "scores.tsv").read_text().splitlines()[1:]]
    stems.append("broken\t0.0")
    (tmp_path / "stems.tsv").write_text("\n".join(stems) + "\n")
    code = load_harness().main(["--scores", str(tmp_path / "stems.tsv"), "--root", str(fake_root),
                                "--out", str(tmp_path / "again"), "--n-boot", "0"])
    assert code == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert (again["n_bonafide"], again["n_spoof"]) == (5, 5)
    table = dict(line.split("\t") for line in stems[1:])
    bona = [float(v) for k, v in table.items() if k.startswith(("gt", "libri"))]
    spoof = [float(v) for k, v in table.items() if k.startswith(("vits", "glow", "broken"))]
    assert len(bona) + len(spoof) == 10 and again["eer"] == metrics.compute_eer(bona, spoof)[0]


def test_harness_reports_scores_missing_for_manifest_clips(fake_root, tmp_path, capsys):
    (tmp_path / "s.tsv").write_text("filename\tcm-score\ngt_0\t1.0\nnot_a_clip\t2.0\n")
    code = load_harness().main(["--scores", str(tmp_path / "s.tsv"), "--root", str(fake_root),
                                "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "MissingIdsError" in err and "9 id(s) in the keys" in err and "not_a_clip" in err


def test_harness_rejects_unknown_detectors_and_bad_detector_output(fake_root, tmp_path, capsys):
    code = load_harness().main(["--detector", "no-such-detector", "--root", str(fake_root), "--out", str(tmp_path)])
    assert code == 2 and "cannot load detector 'no-such-detector'" in capsys.readouterr().err
    code = load_harness().main(["--detector", "test_harness:BrokenDetector", "--root", str(fake_root),
                                "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "DetectorOutputError" in err and "not a P(spoof) in [0, 1]" in err


def test_harness_takes_the_detector_options_of_explain_and_defaults_to_the_shipped_detector(fake_root, tmp_path,
                                                                                           capsys):
    harness = load_harness()
    for extra, message in ((["--scores", str(tmp_path / "s.tsv"), "--detector", "default"], "name no detector"),
                           (["--cm", str(tmp_path)], "the harness scores one detector")):
        with pytest.raises(SystemExit) as exit_:
            harness.main([*extra, "--root", str(fake_root), "--out", str(tmp_path / "o")])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    code = harness.main(["--root", str(fake_root), "--out", str(tmp_path / "shipped"), "--n-boot", "0"])
    assert code == 0 and "scoring with apallm-default" in capsys.readouterr().out
    assert json.loads((tmp_path / "shipped" / "metrics.json").read_text())["n_spoof"] == 4


def test_score_files_checks_detector_output_shape(fake_root):
    class TooFew(Detector):
        def score(self, clips):
            return np.zeros(len(clips) - 1)

    files = [(str(p), p) for p in sorted((fake_root / "audio").rglob("gt_*.wav"))]
    with pytest.raises(DetectorOutputError, match=r"shape \(1,\) for 2 clips"):
        score_files(TooFew(), files, batch_size=2)
    scores, failures = score_files(BandwidthDetector(), files, batch_size=2)
    assert sorted(scores) == sorted(ref for ref, _ in files) and failures == []


def test_harness_skips_cleanly_when_realworld_dev_is_absent(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("APALLM_REALWORLD_DEV", str(tmp_path / "absent"))
    code = load_harness().main(["--detector", "test_harness:BandwidthDetector", "--root", str(tmp_path / "absent"),
                                "--out", str(tmp_path / "o")])
    assert code == 0 and "realworld-dev not found" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()

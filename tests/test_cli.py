import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, speech_like
from PIL import Image

from apallm import __version__
from apallm.commands import main
from apallm.data import example_path


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "apallm", *map(str, args)], capture_output=True, text=True)


def test_version_and_help():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"apallm {__version__}"
    out = run_cli("--help")
    assert out.returncode == 0 and "evidence" in out.stdout
    out = run_cli("evidence", "--help")
    assert out.returncode == 0 and "--out" in out.stdout and "Exit status" in out.stdout


def test_evidence_writes_png_and_json_per_clip_and_goes_on_past_bad_clips(tmp_path, capsys):
    good = tmp_path / "good.flac"
    sf.write(good, speech_like(2.0), SR)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([speech_like(2.0, seed=1)] * 2, axis=1), 44_100)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt " + b"\x01" * 300)
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    code = main(["evidence", str(good), str(corrupt), str(empty), str(stereo), str(tmp_path / "missing.ogg"),
                 "--out", str(out)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    assert len(lines) == 5
    assert lines[0].startswith("ok") and "good.png" in lines[0]
    assert "UnreadableAudioError" in lines[1] and "corrupt" in lines[1]
    assert "EmptyAudioError" in lines[2]
    assert lines[3].startswith("ok")
    assert "UnreadableAudioError" in lines[4] and "no such file" in lines[4]
    for stem in ("good", "stereo"):
        img = Image.open(out / f"{stem}.png")
        assert img.size == (448, 448)
        data = json.loads((out / f"{stem}.json").read_text())
        assert len(data["cues"]) >= 8 and data["spectrogram"]["image"] == f"{stem}.png"
        assert data["clip"]["sample_rate"] == SR
    assert sorted(p.name for p in out.iterdir()) == ["good.json", "good.png", "stereo.json", "stereo.png"]


def test_evidence_exit_zero_json_records_and_same_stem_in_two_folders(tmp_path, capsys):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        sf.write(tmp_path / sub / "clip.wav", speech_like(1.0, seed=len(sub)), SR)
    code = main(["evidence", str(tmp_path / "a" / "clip.wav"), str(tmp_path / "b" / "clip.wav"),
                 "--out", str(tmp_path / "out"), "--json", "--kind", "mel", "--width", "300"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [r["ok"] for r in records] == [True, True]
    pngs = [r["outputs"][0]["png"] for r in records]
    assert pngs[0].endswith("clip.png") and pngs[1].endswith("clip-1.png")
    assert Image.open(pngs[1]).size == (308, 448)
    assert json.loads((tmp_path / "out" / "clip.json").read_text())["spectrogram"]["kind"] == "mel"


def test_long_clip_is_windowed_as_an_allm_hears_it(tmp_path, capsys):
    path = tmp_path / "long.flac"
    sf.write(path, np.concatenate([speech_like(20.0, seed=s) for s in range(2)]), SR)  # 40 s
    assert main(["evidence", str(path), "--out", str(tmp_path / "o")]) == 0
    assert "in 2 windows" in capsys.readouterr().out
    w1 = json.loads((tmp_path / "o" / "long_w01.json").read_text())
    assert w1["clip"]["offset_s"] == 10.0 and w1["clip"]["duration_s"] == 30.0
    assert main(["evidence", str(path), "--out", str(tmp_path / "whole"), "--window-policy", "whole"]) == 0
    assert json.loads((tmp_path / "whole" / "long.json").read_text())["clip"]["duration_s"] == 40.0
    assert main(["evidence", str(path), "--out", str(tmp_path / "x"), "--max-duration", "35"]) == 1
    assert "AudioTooLongError" in capsys.readouterr().out


@pytest.mark.slow
def test_bundled_example_runs_through_the_console_script(tmp_path):
    out = run_cli("evidence", example_path(), "--out", tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok") and (tmp_path / "example_espeak.png").exists()


def _non_speech_files(folder):
    """White noise, digital silence and a WAV whose payload is random bytes (decodes as noise)."""
    import os
    import struct

    rng = np.random.default_rng(0)
    sf.write(folder / "noise.wav", (0.3 * rng.standard_normal(3 * SR)).astype(np.float32), SR)
    sf.write(folder / "silence.wav", np.zeros(3 * SR, np.float32), SR)
    payload = os.urandom(2 * 3 * SR)
    header = (b"RIFF" + struct.pack("<I", 36 + len(payload)) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 1, 1, SR, 2 * SR, 2, 16) + b"data" + struct.pack("<I", len(payload)))
    (folder / "garbage.wav").write_bytes(header + payload)
    return [folder / "noise.wav", folder / "silence.wav", folder / "garbage.wav"]


def test_explain_abstains_on_non_speech_and_shows_the_flags(tmp_path, capsys):
    noise, silence, garbage = _non_speech_files(tmp_path)
    speech = tmp_path / "speech.wav"
    sf.write(speech, speech_like(3.0) - 0.05, SR)  # an offset: flagged, removed before scoring
    assert main(["explain", str(noise), str(silence), str(garbage), str(speech), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    for record in records[:3]:
        assert record["label"] == "no_speech" and record["score"] is None and "no_speech" in record["flags"]
        assert "no speech" in record["rationale"]["frequency"]
    assert "silent" in records[1]["flags"]
    assert records[3]["label"] in ("bonafide", "spoof") and records[3]["flags"] == ["dc_offset"]
    assert records[3]["uncertain"] == (0.4 <= records[3]["score"] <= 0.6)

    assert main(["explain", str(silence), str(speech), "--uncertain-band", "0,1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("no speech") and "[silent, no_speech]" in text
    assert "(uncertain)" in text and "[dc_offset]" in text  # every score lies in the band 0-1
    assert main(["explain", str(speech), "--uncertain-band", "0.7,0.2"]) == 2
    assert "uncertain band" in capsys.readouterr().err


def test_explain_takes_the_shared_detector_and_limit_options(tmp_path, capsys):
    long_clip = tmp_path / "long.wav"
    sf.write(long_clip, speech_like(4.0), SR)
    assert main(["explain", str(long_clip), "--max-duration", "2", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == "AudioTooLongError"
    assert main(["explain", str(long_clip), "--detector-arg", "nokey"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err

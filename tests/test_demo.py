"""The Gradio demo served on 127.0.0.1 and driven through gradio_client: upload -> verdict, spectrogram, cues and
auxiliary scores; streamed chat with the default detector (answers from the evidence) and with the tiny ALLM
(its own tokens, the conversation in context); limits; per-session history; temporary files; the command."""

from __future__ import annotations

import contextlib
import copy
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SPLICE_S, SR, brickwall_lowpass, free_port, serve, speech_like, spliced_clip, white_noise

pytest.importorskip("gradio", reason="the demo needs the demo extra: pip install 'apallm[demo]'")
from gradio_client import Client, handle_file  # noqa: E402
from PIL import Image  # noqa: E402

from apallm import load_audio  # noqa: E402
from apallm.cm import CMDetector  # noqa: E402
from apallm.demo import DISPLAY_HEIGHT, DISPLAY_WIDTH, DemoLimits, build_app  # noqa: E402
from apallm.detectors import Detector  # noqa: E402
from apallm.evidence import EvidenceConfig, extract_evidence  # noqa: E402
from apallm.verdict import Verdict  # noqa: E402

LIMITS = DemoLimits(max_upload_mb=0.5, max_duration_s=5.0, concurrency=2, queue_size=8, chat_max_new_tokens=10)
# gradio's queue statistics call pandas APIs that pandas 3 deprecates; not this package's code
pytestmark = [pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]
OUTPUTS = ("status", "verdict_html", "rationale", "spectrogram", "cues", "cms", "verdict", "chat")


def analyse(client: Client, path: Path) -> dict:
    return dict(zip(OUTPUTS, client.predict(handle_file(str(path)), api_name="/analyse"), strict=True))


def ask(client: Client, question: str) -> list[list[dict]]:
    """Every chat state the server streamed for ``question``, in order."""
    job = client.submit(question, api_name="/chat")
    return [out[0] for out in job]


def text_of(message: dict) -> str:
    content = message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def assert_streamed(updates: list[list[dict]], question: str) -> str:
    """More than one intermediate answer, each a prefix of the next; returns the final answer."""
    answers = [text_of(chat[-1]) for chat in updates if chat and chat[-1]["role"] == "assistant"
               and len(chat) >= 2 and text_of(chat[-2]) == question]
    assert len(answers) >= 3, f"the answer was not streamed: {len(answers)} updates"
    for before, after in zip(answers, answers[1:], strict=False):
        assert after.startswith(before)
    assert len(answers[0]) < len(answers[-1])
    return answers[-1]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-clips")
    long = root / "long.flac"
    sf.write(long, speech_like(LIMITS.max_duration_s + 1.0, seed=2), SR)
    big = root / "big.wav"  # 614 kB of float samples: over the 0.5 MB upload limit, under the duration limit
    sf.write(big, white_noise(4.8, amp=0.1), SR, subtype="DOUBLE")
    text = root / "notes.wav"
    text.write_text("these are notes, not audio\n" * 20)
    low = root / "phone.wav"
    sf.write(low, brickwall_lowpass(speech_like(2.0, seed=5), 3000.0), SR)
    return {"spliced": spliced_clip(root / "spliced.wav"), "long": long, "big": big, "text": text, "phone": low}


@pytest.fixture(scope="module")
def default_server(default_detector, cm_checkpoint):
    with serve(default_detector, LIMITS, cms=[CMDetector(cm_checkpoint)]) as (app, url):
        yield app, url


# ------------------------------------------------------------------ default detector


def test_upload_shows_verdict_spectrogram_cues_and_auxiliary_scores(default_server, default_detector, clips,
                                                                    cm_checkpoint):
    _, url = default_server
    out = analyse(Client(url, verbose=False), clips["spliced"])
    clip = load_audio(clips["spliced"], clip_id="spliced.wav")
    expected = default_detector.explain([clip])[0]

    verdict = out["verdict"]
    assert verdict["label"] in ("bonafide", "spoof") and 0.0 <= verdict["score"] <= 1.0
    assert verdict == {**expected.to_dict(), "cm_scores": {"aasist-l": pytest.approx(verdict["cm_scores"]["aasist-l"])}}
    assert verdict["uncertain"] == (0.4 <= verdict["score"] <= 0.6)
    assert f'data-label="{verdict["label"]}"' in out["verdict_html"] and f"{verdict['score']:.3f}" in \
        out["verdict_html"]
    evidence = extract_evidence(clip, EvidenceConfig(render_image=False))
    cited = [c.phrase for c in evidence.cues if c.phrase in verdict["rationale"]["frequency"]
             or c.phrase in verdict["rationale"]["time"]]
    assert cited, "the rationale cites no measured cue"
    assert all(p in out["rationale"] for p in cited)
    assert "spliced.wav" in out["status"] and "4.50 s" in out["status"]

    rows = out["cues"]["data"]
    assert out["cues"]["headers"] == ["cue", "value", "unit", "natural range", "status", "domain"]
    assert [r[0] for r in rows] == [c.name for c in evidence.cues]
    splice_row = next(r for r in rows if r[0] == "splice_candidates")
    assert float(splice_row[1]) >= 1  # the splice is measured ...
    with Image.open(out["spectrogram"]) as image:  # ... and drawn: a white dashed line at 1.5 s
        strip = 20 if verdict.get("attribution") else 0  # the shipped detector's attribution, drawn under the plot
        assert image.size == (DISPLAY_WIDTH, DISPLAY_HEIGHT + strip) and strip
        assert _white_column_near(np.asarray(image.convert("RGB")), SPLICE_S / 4.5)

    aux = CMDetector(cm_checkpoint).score([clip])[0]
    (row,) = out["cms"]["value"]["data"]
    assert row[0] == "aasist-l" and row[1] == pytest.approx(aux, abs=1e-4)
    assert out["cms"]["visible"] is True


def _white_column_near(rgb: np.ndarray, fraction: float) -> bool:
    """A column of the plot near ``fraction`` of its width that is pure white on many rows (a marker)."""
    white = (rgb == 255).all(axis=2)
    h, w = white.shape
    band = white[int(h * 0.2):int(h * 0.8)]
    counts = band.sum(axis=0)
    # the plot's data area lies between the axis labels; a marker is white on half of its dashed rows
    candidates = np.flatnonzero(counts > 0.3 * band.shape[0])
    left, right = int(w * 0.06), w - 8
    x = left + fraction * (right - left)
    return bool(np.any(np.abs(candidates - x) < 0.03 * w))


def test_chat_streams_answers_from_the_evidence_and_says_it_is_no_allm(default_server, clips):
    _, url = default_server
    client = Client(url, verbose=False)
    out = analyse(client, clips["spliced"])
    (first,) = out["chat"]
    assert "No audio LLM is loaded" in text_of(first) and "--model or --adapter" in text_of(first)
    evidence = extract_evidence(load_audio(clips["spliced"]), EvidenceConfig(render_image=False))

    edit = assert_streamed(ask(client, "Where is the edit?"), "Where is the edit?")
    times = evidence.cue("splice_candidates").detail["times_s"]
    assert any(abs(t - SPLICE_S) < 0.05 for t in times)
    assert all(f"{t:.2f} s" in edit for t in times) and "white dashed" in edit
    assert "Free-form answers need an audio LLM" in edit

    high = assert_streamed(ask(client, "What about the high frequencies?"), "What about the high frequencies?")
    assert "high-frequency cues" in high
    bandwidth = evidence.cue("bandwidth_hz").phrase
    assert bandwidth[:1].upper() + bandwidth[1:] in high
    assert evidence.cue("band_energy_125_250").phrase not in high  # low-band cues are not what was asked

    why = assert_streamed(ask(client, "Why is it fake?"), "Why is it fake?")
    label, score = out["verdict"]["label"], out["verdict"]["score"]
    assert f"P(spoof) = {score:.2f}" in why
    assert ("does not call it fake" in why) == (label == "bonafide")

    other = assert_streamed(ask(client, "Which voice actor is this?"), "Which voice actor is this?")
    assert "needs an audio LLM" in other

    # the whole conversation so far is the session's history, in order
    final = ask(client, "and the aux countermeasure?")[-1]
    questions = [text_of(m) for m in final if m["role"] == "user"]
    assert questions == ["Where is the edit?", "What about the high frequencies?", "Why is it fake?",
                         "Which voice actor is this?", "and the aux countermeasure?"]
    assert "aasist-l gives P(spoof)" in text_of(final[-1])


def test_history_belongs_to_each_browser_session(default_server, clips):
    _, url = default_server
    first, second = Client(url, verbose=False), Client(url, verbose=False)
    assert ask(second, "why?")[-1] == []  # nothing uploaded in this session yet
    analyse(first, clips["spliced"])
    ask(first, "why?")
    out = analyse(second, clips["phone"])
    assert len(out["chat"]) == 1
    answer = text_of(ask(second, "what about the high frequencies?")[-1][-1])
    cut = extract_evidence(load_audio(clips["phone"]), EvidenceConfig(render_image=False)).cue("bandwidth_hz")
    assert 2500 < cut.value < 3100 and f"Energy stops near {cut.value:.0f} Hz" in answer  # this session's clip's
    # band limit near 3 kHz, not the other session's full band
    history = ask(first, "where is the edit?")[-1]
    assert [text_of(m) for m in history if m["role"] == "user"] == ["why?", "where is the edit?"]
    # a new upload in a session starts its chat afresh
    assert len(analyse(first, clips["phone"])["chat"]) == 1


def test_limits_and_bad_input_give_clear_messages(default_server, clips):
    _, url = default_server
    client = Client(url, verbose=False)
    out = analyse(client, clips["long"])
    assert "longer than the limit of 5 s" in out["status"] and "--max-duration" in out["status"]
    assert out["verdict"] is None and out["chat"] == [] and out["spectrogram"] is None
    out = analyse(client, clips["text"])
    assert "notes.wav" in out["status"] and "not audio" in out["status"]
    assert "Traceback" not in out["status"]
    with pytest.raises(ValueError, match="maximum file size"):  # gradio refuses the upload itself
        analyse(client, clips["big"])
    assert ask(client, "why?")[-1] == []  # no clip in this session after failed analyses
    with pytest.raises(ValueError, match="queue_size must be a positive integer"):
        DemoLimits(queue_size=0)
    with pytest.raises(ValueError, match="max_duration_s must be a positive number"):
        DemoLimits(max_duration_s=float("nan"))


class Timed(Detector):
    """A real detector whose calls are timed (and slowed), to see how many the app runs at once."""

    def __init__(self, inner, seconds: float):
        self.inner, self.seconds, self.name = inner, seconds, inner.name
        self.spans: list[tuple[float, float]] = []

    def score(self, clips):
        start = time.monotonic()
        time.sleep(self.seconds)
        out = self.inner.score(clips)
        self.spans.append((start, time.monotonic()))
        return out


def test_queue_bounds_concurrency_and_size_and_uploads_are_removed_on_close(default_detector, clips):
    timed = Timed(default_detector, 0.4)
    limits = DemoLimits(max_duration_s=5.0, concurrency=1, queue_size=2)
    with serve(timed, limits=limits) as (app, url):
        clients = [Client(url, verbose=False, download_files=False) for _ in range(5)]
        jobs = [c.submit(handle_file(str(clips["spliced"])), api_name="/analyse") for c in clients]
        results, refused = [], []
        for job in jobs:
            try:
                results.append(job.result(timeout=60))
            except Exception as exc:  # gradio_client raises for a refused job
                refused.append(str(exc))
        assert 3 <= len(results) < 5 and refused and all("full" in r.lower() for r in refused), refused
        spans = sorted(timed.spans)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False)), \
            "two analyses ran at once with concurrency 1"
        served = Path(results[0][3]["path"])  # the spectrogram as the server keeps it in gradio's cache
        uploads = [Path(f) for s in app.temp_file_sets for f in s]
        assert served.is_file() and any(p.name == "spliced.wav" for p in uploads)
    time.sleep(0.5)
    assert not served.exists()
    assert not any(p.exists() for p in uploads)


class Broken(Detector):
    name = "broken"

    def score(self, clips):
        raise RuntimeError("CUDA out of memory (simulated)")


def test_a_failing_detector_shows_a_message_not_a_traceback(clips):
    with serve(Broken(), LIMITS) as (_, url):
        client = Client(url, verbose=False)
        out = analyse(client, clips["spliced"])
        assert out["status"] == "**Analysis failed.** RuntimeError: CUDA out of memory (simulated)"
        assert out["verdict"] is None and ask(client, "why?")[-1] == []


# ------------------------------------------------------------------ the tiny ALLM


@pytest.fixture(scope="module")
def allm():
    from apallm.allm import load_allm
    from apallm.evidence import SpectrogramConfig

    return load_allm("tiny-qwen2_5-omni", device="cpu", max_new_tokens=12,
                     prompts={"system": "You detect deepfake speech.", "instruction": "bonafide or spoof?"},
                     evidence_config=EvidenceConfig(spectrogram=SpectrogramConfig(width=224, height=224)))


def test_allm_verdict_and_streamed_chat_with_the_conversation_in_context(allm, clips, monkeypatch):
    asked = []  # what the app asks the model: every question with the conversation before it
    stream = allm.stream

    def recorded(clip, question=None, history=(), **kwargs):
        asked.append((question, list(history), kwargs))
        yield from stream(clip, question=question, history=history, **kwargs)

    monkeypatch.setattr(allm, "stream", recorded)
    with serve(allm, LIMITS) as (_, url):
        client = Client(url, verbose=False)
        out = analyse(client, clips["spliced"])
        verdict = out["verdict"]
        assert verdict["label"] in ("bonafide", "spoof") and 0.0 <= verdict["score"] <= 1.0
        assert verdict["detector"] == allm.name
        clip = load_audio(clips["spliced"], clip_id="spliced.wav")
        assert verdict["score"] == pytest.approx(float(allm.score([clip])[0]), abs=1e-5)
        (first,) = out["chat"]
        answer = allm.explain([clip], include_evidence=True)[0].evidence["answer"]["text"]
        assert text_of(first).startswith(answer) and "No audio LLM" not in text_of(first)

        q1, q2 = "why fake?", "where is the edit?"
        a1 = assert_streamed(ask(client, q1), q1)
        a2 = assert_streamed(ask(client, q2), q2)
    assert [(q, h) for q, h, _ in asked] == [(q1, [(None, answer)]), (q2, [(None, answer), (q1, a1)])]
    assert all(kw["max_new_tokens"] == LIMITS.chat_max_new_tokens for _, _, kw in asked)
    # the chat shows exactly the model's tokens for that conversation
    monkeypatch.undo()
    assert a2 == "".join(allm.stream(clip, question=q2, history=[(None, answer), (q1, a1)], max_new_tokens=10))


def test_an_allm_chats_beside_the_default_detector_that_keeps_the_verdict(default_detector, allm, clips):
    """``chat_model``: the default detector's verdict opens the chat, the ALLM streams the follow-ups with that
    verdict as the conversation so far."""
    with serve(default_detector, LIMITS, chat_model=allm) as (app, url):
        client = Client(url, verbose=False)
        out = analyse(client, clips["phone"])
        assert out["verdict"]["detector"] == default_detector.name
        (first,) = out["chat"]
        opening = text_of(first)
        assert opening.startswith(out["verdict"]["label"]) and f"Ask {allm.name} about this clip" in opening
        assert "No audio LLM" not in opening
        answer = assert_streamed(ask(client, "why?"), "why?")
    clip = load_audio(clips["phone"], clip_id="phone.wav")
    verdict_text = opening.split("\n\nAsk ")[0]
    assert answer == "".join(allm.stream(clip, question="why?", history=[(None, verdict_text)], max_new_tokens=10))
    with pytest.raises(ValueError, match="not an audio LLM"):
        build_app(default_detector, limits=LIMITS, chat_model=default_detector)


def test_the_demo_command_chats_with_lite_where_it_is_installed(default_detector, monkeypatch):
    from apallm.allm import registry
    from apallm.commands.demo import chat_model

    assert chat_model("none", default_detector) is None
    monkeypatch.setattr(registry, "lite_available", lambda: False)
    assert chat_model("auto", default_detector) is None
    chat = chat_model("tiny-qwen2_5-omni", default_detector, device="cpu")
    assert chat.family == "qwen2_5_omni" and chat_model("tiny-qwen2_5-omni", chat) is None


def test_the_demo_command_chats_with_an_adapter_folder(default_detector, tmp_path):
    from apallm.allm import load_allm
    from apallm.commands.demo import chat_model

    det = load_allm("tiny-qwen2_5-omni", device="cpu", max_new_tokens=4)
    det.model.save_pretrained(str(tmp_path / "base"), safe_serialization=True)  # a built-in tiny base is kept
    det.processor.save_pretrained(str(tmp_path / "base"))
    from apallm.training.sft import PeftSettings, apply_peft

    det.model = apply_peft(det.model, det.family, PeftSettings(r=2, alpha=4))
    det.model.save_pretrained(str(tmp_path / "adapter"))
    det.save_config(tmp_path)
    chat = chat_model(str(tmp_path), default_detector, device="cpu")
    assert chat.name == f"qwen2_5_omni:{tmp_path.name}" and chat.options == det.options


def test_allm_that_reads_cm_scores_needs_them(allm):
    from apallm.allm import PromptOptions

    reads_cms = copy.copy(allm)
    reads_cms.options = PromptOptions(cm_scores=True)
    with pytest.raises(ValueError, match="--cm DIR"):
        build_app(reads_cms, limits=LIMITS)


# ------------------------------------------------------------------ the command


@pytest.mark.slow
def test_command_serves_the_demo_and_refuses_bad_options(cm_checkpoint, tmp_path):
    from apallm.commands import main

    assert main(["demo", "--max-duration", "0"]) == 2
    assert main(["demo", "--detector", "no-such-detector"]) == 2
    assert main(["demo", "--detector", "apallm.cm.detector:CMDetector", "--detector-arg", "checkpoint"]) == 2
    port = free_port()
    # plain `apallm demo`: the default detector, with an auxiliary countermeasure
    cmd = [sys.executable, "-m", "apallm", "demo", "--cm", str(cm_checkpoint), "--port", str(port),
           "--max-duration", "5"]
    log = tmp_path / "demo.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(240):
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=2) as page:
                    assert page.status == 200
                    break
            assert proc.poll() is None, log.read_text()
            time.sleep(0.25)
        else:
            pytest.fail(f"apallm demo did not serve {url}: {log.read_text()}")
        with urllib.request.urlopen(url + "config", timeout=10) as page:
            config = json.load(page)
        header = config["components"][0]["props"]["value"]
        assert "Detector: **apallm-default**" in header and "Auxiliary countermeasures: aasist-l" in header
        assert "Clips up to 5 s and 20 MB" in header
        from apallm.allm.registry import lite_available

        if lite_available():  # the shipped lite model chats beside the detector, with no option given
            assert "the audio LLM **" in header and "answers free-form" in header
        else:
            assert "no audio LLM is loaded" in header
        assert {"analyse", "chat"} <= {d.get("api_name") for d in config["dependencies"]}
        assert config["analytics_enabled"] is False  # the demo sends nothing anywhere
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_verdict_html_shows_uncertain_scores_and_abstentions_neutrally():
    from apallm.demo import verdict_html

    sure = verdict_html(Verdict("spoof", 0.93))
    assert "#c62828" in sure and 'data-uncertain="false"' in sure
    chance = verdict_html(Verdict("spoof", 0.5, flags=["dc_offset"]))
    assert "#c62828" not in chance and "spoof (uncertain)" in chance and 'data-uncertain="true"' in chance
    assert "dc_offset" in chance and "0.4-0.6 is uncertain" in chance
    assert "0.3-0.7 is uncertain" in verdict_html(Verdict("bonafide", 0.35), band=(0.3, 0.7))
    silent = verdict_html(Verdict("no_speech", None, flags=["silent"]))
    assert "no speech" in silent and "No score" in silent and "silent" in silent and "role=\"meter\"" not in silent

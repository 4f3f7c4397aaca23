"""The HTML report of a batch run: one light, self-contained page that stays readable from 1024 px.

- A summary on top: counts per label (uncertain, no-speech abstentions and errors included), the accuracy
  when the records carry a ``true_label``, and a small inline SVG histogram of the scores.
- One table row per record, in a fixed layout (``table-layout: fixed``): long file names wrap, the rationale
  gets the room. Columns: number, file (id and path), label (``spoof (uncertain)`` in a neutral colour when
  the score lies in the uncertain band; ``no speech`` for an abstention), P(spoof), flags as badges, the true
  label with a correct/incorrect mark (only when some record has one), the rationale, the spectrogram.
- Spectrogram thumbnails are small PNG files in a side folder (``<report stem>_files/<n>.png``), loaded
  lazily and linked, so a page of thousands of clips stays small; ``thumbnails=False`` writes none.
- Sorting (click a column header) and filtering (text, label, flag, correct/incorrect) run in a few lines of
  inline JavaScript; no CDN, no network.

Older records (no ``uncertain``/``flags``/``true_label``, a number in ``score``) render as before; error
records (``{"id", "path", "error", "message"}``) get a row that names the error.
"""

from __future__ import annotations

import html
import io
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from apallm.verdict import LABELS

THUMBNAIL_PIXELS = 224  # the smallest spectrogram apallm.evidence draws; shown at half size (sharp on HiDPI)
THUMBNAIL_SHOWN = 112
THUMBNAIL_SECONDS = 30
THUMBNAIL_COLOURS = 64  # a palette PNG: about a third of the bytes of the RGB one, no visible loss


def write_html_report(records: Sequence[dict], path: str | os.PathLike, title: str = "apallm batch report",
                      thumbnails: bool = True) -> Path:
    """Write the report page to ``path`` (and, with ``thumbnails``, the thumbnail PNGs beside it)."""
    path = Path(path)
    files = path.with_name(path.stem + "_files")
    has_truth = any(_truth(r) for r in records)
    flags = sorted({f for r in records for f in _flags(r)})
    rows = []
    for number, record in enumerate(records, 1):
        thumb = None
        if thumbnails and "error" not in record and record.get("path"):
            png = thumbnail_png(str(record["path"]), record.get("attribution"))
            if png is not None:
                files.mkdir(parents=True, exist_ok=True)
                (files / f"{number}.png").write_bytes(png)
                thumb = f"{quote(files.name)}/{number}.png"
        rows.append(_row(number, record, has_truth, thumbnails, thumb))
    page = _PAGE.format(
        title=html.escape(title), css=_CSS, js=_JS, summary=_summary(records, has_truth),
        histogram=histogram_svg([r["score"] for r in records if _score(r) is not None]),
        filters=_filters(flags, has_truth), cols=_colgroup(has_truth, thumbnails),
        head=_head(has_truth, thumbnails), rows="\n".join(rows))
    path.write_text(page, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ fields

def _score(record: dict) -> float | None:
    score = record.get("score")
    return float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None


def _flags(record: dict) -> list[str]:
    flags = record.get("flags") or []
    return [str(f) for f in flags] if isinstance(flags, (list, tuple)) else [str(flags)]


def _uncertain(record: dict) -> bool:
    """A verdict (not an abstention or an error) whose score lies in the uncertain band."""
    return bool(record.get("uncertain")) and "error" not in record and record.get("label") in LABELS


def _truth(record: dict) -> str | None:
    truth = record.get("true_label")
    return str(truth) if truth not in (None, "") else None


def _correct(record: dict) -> str:
    """'1' correct, '0' incorrect, 'a' abstained (no speech, or an error), '' when the true label is unknown."""
    truth = _truth(record)
    if truth is None:
        return ""
    label = record.get("label")
    if "error" in record or label not in LABELS:
        return "a"
    return "1" if label == truth else "0"


def _kind(record: dict) -> str:
    """The label filter's value: bonafide, spoof, no_speech, error (uncertain is its own attribute)."""
    return "error" if "error" in record else str(record.get("label", ""))


# ------------------------------------------------------------------------------------------------ thumbnails

def thumbnail_png(path: str, attribution: dict | None = None) -> bytes | None:
    """A small spectrogram PNG of the clip's first 30 s, with the verdict's ``attribution`` drawn under it when
    given (:func:`apallm.attribution.draw_attribution`); None when the clip cannot be read or drawn."""
    from PIL import Image

    from apallm.audio import load_audio
    from apallm.errors import AudioError
    from apallm.evidence import SpectrogramConfig, render_spectrogram

    try:
        clip = load_audio(path)
        spec = render_spectrogram(clip.waveform[: THUMBNAIL_SECONDS * clip.sample_rate], clip.sample_rate,
                                  SpectrogramConfig(width=THUMBNAIL_PIXELS, height=THUMBNAIL_PIXELS))
    except (AudioError, OSError, ValueError):
        return None
    png = spec.png
    if attribution:
        from apallm.attribution import draw_attribution

        png = draw_attribution(spec, attribution, strip_px=8)
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").quantize(THUMBNAIL_COLOURS).save(buf, "PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ summary

def _summary(records: Sequence[dict], has_truth: bool) -> str:
    kinds = Counter(_kind(r) for r in records)
    uncertain = sum(_uncertain(r) for r in records)
    parts = [f"<b>{len(records)} clips:</b>",
             f"<span class=c-spoof>{kinds['spoof']} spoof</span>,",
             f"<span class=c-bonafide>{kinds['bonafide']} bona fide</span>,",
             f"<span class=c-uncertain>{uncertain} uncertain</span>,",
             f"<span class=c-no_speech>{kinds['no_speech']} no speech</span>,",
             f"<span class=c-error>{kinds['error']} errors</span>"]
    other = {k: n for k, n in kinds.items() if k not in ("spoof", "bonafide", "no_speech", "error")}
    if other:
        parts[-1] += ","
        parts.append(", ".join(f"{n} {html.escape(k or 'unlabelled')}" for k, n in sorted(other.items())))
    lines = [f"<p id=summary>{' '.join(parts)}</p>"]
    if has_truth:
        marks = Counter(_correct(r) for r in records)
        judged = marks["1"] + marks["0"]
        accuracy = f"{100 * marks['1'] / judged:.1f} %" if judged else "n/a"
        lines.append(f"<p id=accuracy><b>Accuracy: {accuracy}</b> ({marks['1']} correct of {judged} clips with a "
                     f"true label and a verdict; {marks['0']} incorrect, {marks['a']} abstained or failed, "
                     f"{marks['']} without a true label)</p>")
    detectors = sorted({str(r["detector"]) for r in records if r.get("detector")})
    if detectors:
        lines.append(f"<p class=small>Detector: {html.escape(', '.join(detectors))}</p>")
    return "\n".join(lines)


def histogram_svg(scores: Sequence[float], bins: int = 20) -> str:
    """An inline SVG histogram of P(spoof) over [0, 1] (a few KB whatever the number of clips)."""
    if not scores:
        return ""
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, max(0, int(s * bins)))] += 1
    top = max(counts)
    W, H, left, bottom, width, tall = 360, 116, 30, 98, 320, 76
    bar = width / bins
    parts = [f"<svg id=histogram width={W} height={H} viewBox='0 0 {W} {H}' role=img "
             f"aria-label='histogram of the scores P(spoof)'>"]
    for i, n in enumerate(counts):
        if n:
            h = tall * n / top
            colour = "#b00" if i >= bins // 2 else "#070"
            parts.append(f"<rect x={left + i * bar:.1f} y={bottom - h:.1f} width={bar - 1:.1f} height={h:.1f} "
                         f"fill='{colour}'><title>{i / bins:.2f}-{(i + 1) / bins:.2f}: {n} clips</title></rect>")
    parts.append(f"<line x1={left} y1={bottom} x2={left + width} y2={bottom} stroke='#444'/>")
    for x, text in ((0, "0"), (0.5, "0.5"), (1, "1")):
        parts.append(f"<text x={left + x * width:.0f} y={bottom + 13} text-anchor=middle>{text}</text>")
    parts.append(f"<text x={left - 4} y={bottom - tall + 8} text-anchor=end>{top}</text>"
                 f"<text x={left - 4} y={bottom} text-anchor=end>0</text>"
                 f"<text x={left} y=10>P(spoof) of {len(scores)} clips</text></svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------------------------ table

def _columns(has_truth: bool, thumbnails: bool) -> list[tuple[str, str, str, str]]:
    """(key, header, width, sort type) per column."""
    cols = [("n", "#", "3em", "num"), ("file", "file", "18%", "text"), ("label", "label", "7.2em", "text"),
            ("score", "P(spoof)", "5.8em", "num"), ("flags", "flags", "6.6em", "text")]
    if has_truth:
        cols.append(("truth", "true label", "6.8em", "text"))
    cols.append(("rationale", "rationale", "", "text"))
    if thumbnails:
        cols.append(("thumb", "spectrogram", f"{THUMBNAIL_SHOWN + 14}px", ""))
    return cols


def _colgroup(has_truth: bool, thumbnails: bool) -> str:
    return "".join(f"<col class=col-{k}" + (f" style='width:{w}'>" if w else ">")
                   for k, _, w, _ in _columns(has_truth, thumbnails))


def _head(has_truth: bool, thumbnails: bool) -> str:
    cells = []
    for i, (key, name, _, sort) in enumerate(_columns(has_truth, thumbnails)):
        inner = f"<button type=button data-col={i} data-type={sort}>{name}</button>" if sort else name
        cells.append(f"<th data-key={key}>{inner}</th>")
    return "".join(cells)


def _row(number: int, r: dict, has_truth: bool, thumbnails: bool, thumb: str | None) -> str:
    esc = html.escape
    kind, flags, correct = _kind(r), _flags(r), _correct(r)
    uncertain = _uncertain(r)
    attrs = f"data-label='{esc(kind or '-')}'" + (" data-uncertain=1" if uncertain else "")
    if flags:
        attrs += f" data-flags='{esc(' '.join(flags))}'"
    if correct:
        attrs += f" data-correct={correct}"
    file = f"<b>{esc(str(r.get('id', '')))}</b>"
    if r.get("path") and str(r.get("path")) != str(r.get("id")):
        file += f"<br><span class=path>{esc(str(r['path']))}</span>"
    cells = [f"<td>{number}</td>", f"<td class=file>{file}</td>"]
    score = _score(r)
    if kind == "error":
        cells.append("<td class=error>error</td>")
    elif kind == "no_speech":
        cells.append("<td class=no_speech title='abstained: no speech in the clip'>no speech</td>")
    elif uncertain:
        cells.append(f"<td class=uncertain title='the score lies in the uncertain band'>{esc(kind)} "
                     f"<span class=small>(uncertain)</span></td>")
    else:
        cells.append(f"<td class='{esc(kind or 'unlabelled')}'>{esc(kind)}</td>")
    cells.append(f"<td data-v={score:.6g}>{score:.3f}</td>" if score is not None else "<td data-v=''>&mdash;</td>")
    cells.append("<td>" + "".join(f"<span class=flag>{esc(f)}</span>" for f in flags) + "</td>")
    if has_truth:
        truth = _truth(r)
        mark = {"1": "<span class=ok title=correct>&#10003;</span>",
                "0": "<span class=bad title=incorrect>&#10007;</span>",
                "a": "<span class=small title='no verdict to compare'>&ndash;</span>"}.get(correct, "")
        cells.append(f"<td>{esc(truth or '')} {mark}</td>")
    if kind == "error":
        cells.append(f"<td class=error><b>{esc(str(r['error']))}</b>: {esc(str(r.get('message', '')))}</td>")
    else:
        rat = r.get("rationale") or {}
        parts = [f"<b>{name}:</b> {esc(str(rat[key]))}" for key, name in (("frequency", "Frequency"), ("time", "Time"))
                 if rat.get(key)]
        if r.get("regions"):
            spans = ", ".join(f"{float(s):.2f}&ndash;{float(e):.2f} s" for s, e in r["regions"])
            parts.append(f"<b>Regions:</b> {spans}")
        if r.get("system"):
            parts.append(f"<b>System:</b> {esc(str(r['system']))}")
        cells.append(f"<td>{'<br>'.join(parts)}</td>")
    if thumbnails:
        cells.append(f"<td><a href='{thumb}'><img src='{thumb}' loading=lazy width={THUMBNAIL_SHOWN} "
                     f"height={THUMBNAIL_SHOWN} alt='spectrogram {number}'></a></td>" if thumb else "<td></td>")
    return f"<tr {attrs}>{''.join(cells)}</tr>"


def _filters(flags: Sequence[str], has_truth: bool) -> str:
    def select(id_, label, options):
        opts = "".join(f"<option value='{html.escape(v)}'>{html.escape(t)}</option>" for v, t in options)
        return f"<label>{label} <select id={id_}>{opts}</select></label>"

    parts = ["<label>search <input id=f-text type=search placeholder='file, rationale, error'></label>",
             select("f-label", "label", [("", "all"), ("bonafide", "bonafide"), ("spoof", "spoof"),
                                         ("uncertain", "uncertain"), ("no_speech", "no speech"),
                                         ("error", "error")])]
    if flags:
        parts.append(select("f-flag", "flag", [("", "all"), ("*", "any flag"), ("-", "no flag")]
                            + [(f, f) for f in flags]))
    if has_truth:
        parts.append(select("f-correct", "correct", [("", "all"), ("1", "correct"), ("0", "incorrect"),
                                                     ("a", "abstained or failed")]))
    return " ".join(parts) + " <span id=shown></span>"


_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:12px 16px;color:#222}
h1{font-size:20px;margin:0 0 6px}p{margin:4px 0}.small{font-size:12px;color:#555}
#top{display:flex;flex-wrap:wrap;gap:8px 24px;align-items:flex-start}#histogram{font-size:10px}
#filters{margin:8px 0;display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center}
table{border-collapse:collapse;table-layout:fixed;width:100%}
th,td{border:1px solid #ccc;padding:3px 5px;vertical-align:top;text-align:left;overflow-wrap:anywhere;
word-break:break-word;font-size:13px}
thead th{position:sticky;top:0;background:#f3f3f3;z-index:1}
th button{font:inherit;font-weight:bold;border:0;background:none;padding:0;cursor:pointer;text-align:left}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
.path{font-size:12px;color:#555}.spoof,.c-spoof{color:#b00;font-weight:bold}
.bonafide,.c-bonafide{color:#070;font-weight:bold}.uncertain,.c-uncertain{color:#8a6d00}
.no_speech,.c-no_speech{color:#555;font-style:italic}.error,.c-error{color:#a50}
.flag{display:inline-block;font-size:11px;background:#eef;border:1px solid #99b;border-radius:3px;
padding:0 3px;margin:0 3px 2px 0}.ok{color:#070;font-weight:bold}.bad{color:#b00;font-weight:bold}
td img{display:block;max-width:100%;height:auto}tr[hidden]{display:none}"""

_JS = """(function(){
var table=document.getElementById('results'),body=table.tBodies[0],rows=[].slice.call(body.rows);
rows.forEach(function(r){r._t=r.textContent.toLowerCase();});
function val(id){var e=document.getElementById(id);return e?e.value:'';}
function apply(){
 var q=val('f-text').trim().toLowerCase(),l=val('f-label'),f=val('f-flag'),c=val('f-correct'),n=0;
 rows.forEach(function(r){
  var d=r.dataset,fl=d.flags?' '+d.flags+' ':'';
  var ok=(!q||r._t.indexOf(q)>=0)&&(!l||(l==='uncertain'?d.uncertain==='1':d.label===l))
   &&(!f||(f==='*'?fl!=='':f==='-'?fl==='':fl.indexOf(' '+f+' ')>=0))&&(!c||d.correct===c);
  r.hidden=!ok;if(ok)n++;});
 document.getElementById('shown').textContent=n+' of '+rows.length+' rows shown';
}
['f-text','f-label','f-flag','f-correct'].forEach(function(id){
 var e=document.getElementById(id);if(e){e.addEventListener('input',apply);e.addEventListener('change',apply);}});
[].forEach.call(table.tHead.querySelectorAll('button[data-col]'),function(b){
 b.addEventListener('click',function(){
  var th=b.parentNode,col=+b.dataset.col,num=b.dataset.type==='num',asc=th.getAttribute('aria-sort')!=='ascending';
  [].forEach.call(table.tHead.rows[0].cells,function(t){t.removeAttribute('aria-sort');});
  th.setAttribute('aria-sort',asc?'ascending':'descending');
  function key(r){var c=r.cells[col];return c.hasAttribute('data-v')?c.getAttribute('data-v'):c.textContent.trim();}
  var sorted=rows.slice().sort(function(a,b){
   var x=key(a),y=key(b);
   if(x===''||y===''){return x===y?0:(x===''?1:-1);}
   var d=num?(+x)-(+y):x.localeCompare(y,undefined,{numeric:true});return asc?d:-d;});
  sorted.forEach(function(r){body.appendChild(r);});});});
apply();
})();"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title>
<style>{css}</style></head>
<body><h1>{title}</h1>
<div id=top><div>{summary}</div>{histogram}</div>
<div id=filters>{filters}</div>
<table id=results><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead><tbody>
{rows}
</tbody></table>
<script>{js}</script></body></html>
"""

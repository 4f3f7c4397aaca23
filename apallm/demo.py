"""The Gradio demo: upload or record a clip, see its structured spectrogram and verdict, and question it.

``apallm demo`` (or ``python demo/app.py``) serves it. :func:`build_app` takes the detector and the auxiliary
countermeasures as objects, so tests and other programs pass whatever they have loaded. With an audio LLM
(a detector that can :meth:`~apallm.allm.base.ALLMDetector.stream`) the chat is the model's own answers with
the clip in context; with any other detector the chat answers from the measured evidence and says so.

Gradio is imported only inside :func:`build_app` and the command, so ``apallm --help`` stays fast and the
package works without the ``demo`` extra.
"""

from __future__ import annotations

import html
import logging
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from apallm.audio import Clip
from apallm.verdict import NO_SPEECH, UNCERTAIN_BAND, Verdict

log = logging.getLogger(__name__)

#: the spectrogram as the demo draws it: wider than the model's input, for reading by eye
DISPLAY_WIDTH, DISPLAY_HEIGHT = 896, 448
#: follow-up turns kept in an ALLM's context (with the clip turn); older ones scroll out of its memory
ALLM_CONTEXT_TURNS = 4
MAX_QUESTION_CHARS = 1000
CUE_HEADERS = ["cue", "value", "unit", "natural range", "status", "domain"]
CM_HEADERS = ["countermeasure", "P(spoof)", "label"]
EXAMPLE_QUESTIONS = ("Why is it fake?", "What about the high frequencies?", "Where is the edit?")
NO_ALLM_NOTE = ("No audio LLM is loaded, so these answers come from the measured evidence only; free-form "
                "answers need an ALLM (start the demo with --model or --adapter).")


@dataclass(frozen=True)
class DemoLimits:
    """What one request may ask of the server.

    ``max_upload_mb``: largest upload (gradio refuses bigger files before they reach the app).
    ``max_duration_s``: longest clip analysed. ``concurrency``: requests that run at once (the rest queue).
    ``queue_size``: requests that may wait; more are refused with "queue is full".
    ``chat_max_new_tokens``: longest ALLM chat answer. ``cache_minutes``: uploads and rendered images in
    gradio's cache are deleted this long after they were made, and all of them when the server stops.
    """

    max_upload_mb: float = 20.0
    max_duration_s: float = 60.0
    concurrency: int = 1
    queue_size: int = 16
    chat_max_new_tokens: int = 200
    cache_minutes: float = 60.0

    def __post_init__(self):
        for name in ("max_upload_mb", "max_duration_s", "cache_minutes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("concurrency", "queue_size", "chat_max_new_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass
class Analysis:
    """One browser session's clip: what was measured and decided, and the chat about it."""

    clip: Clip
    evidence: object  # apallm.evidence.Evidence (without image)
    verdict: Verdict
    answer: str  # the detector's verdict as the canonical answer text (the ALLM's own words when it has them)
    cm_scores: dict[str, float] = field(default_factory=dict)
    turns: list[tuple[str, str]] = field(default_factory=list)  # (question, answer) after the verdict
    messages: list[dict] = field(default_factory=list)  # the chat as shown


class DemoError(Exception):
    """A request the demo refuses, with the message the user sees."""


def can_chat(detector) -> bool:
    """True for an audio LLM: it streams free-form answers about a clip."""
    return callable(getattr(detector, "stream", None))


# ------------------------------------------------------------------------------------------ analysis

def load_clip(path: str | os.PathLike, limits: DemoLimits) -> Clip:
    """The uploaded or recorded file as a clip, or a :class:`DemoError` that says what is wrong with it."""
    from apallm.audio import load_audio
    from apallm.errors import AudioError

    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DemoError(f"{name}: the upload is gone ({exc.strerror}); upload it again") from exc
    if size > limits.max_upload_bytes:
        raise DemoError(f"{name} is {size / 2**20:.1f} MB; this demo takes files up to {limits.max_upload_mb:g} MB "
                        f"(--max-upload-mb)")
    try:
        return load_audio(path, max_duration_s=limits.max_duration_s, clip_id=name)
    except AudioError as exc:
        message = exc.message
        if exc.kind == "too_long":
            message = f"{message.split(' (raise')[0]} (--max-duration): cut it and try again"
        raise DemoError(f"{name}: {message}") from exc


def analyse_clip(clip: Clip, detector, cms: Sequence = ()) -> Analysis:
    """Explain the clip with the detector, the auxiliary countermeasures' scores beside it; measure its cues."""
    from apallm.detectors import explain_with
    from apallm.evidence import EvidenceConfig, extract_evidence

    verdict = explain_with(detector, [clip], cms, include_evidence=can_chat(detector))[0]
    answer = (verdict.evidence or {}).get("answer", {}).get("text")
    verdict.evidence = None
    if answer is None:
        answer = (verdict.to_answer() if verdict.label != NO_SPEECH else
                  f"no speech\n{verdict.rationale.frequency}")
    evidence = extract_evidence(clip, EvidenceConfig(render_image=False))
    return Analysis(clip=clip, evidence=evidence, verdict=verdict, answer=answer,
                    cm_scores=dict(verdict.cm_scores or {}))


def display_spectrogram(analysis: Analysis, detector=None):
    """The clip's structured spectrogram as the demo shows it (PIL image): band-edge guides, splice
    candidates as white dashed lines, the detector's predicted regions shaded red."""
    from apallm.evidence import SpectrogramConfig, render_spectrogram

    base = detector.evidence_config.spectrogram if can_chat(detector) else SpectrogramConfig()
    cfg = replace(base, width=DISPLAY_WIDTH, height=DISPLAY_HEIGHT)
    splices = analysis.evidence.cue("splice_candidates").detail.get("times_s", [])
    clip = analysis.clip
    spec = render_spectrogram(clip.waveform, clip.sample_rate, cfg, markers_s=splices,
                              regions_s=analysis.verdict.regions)
    return spec.image.convert("RGB")


def cue_rows(evidence) -> list[list[str]]:
    """One row per cue: name, value, unit, natural range, status, domain."""
    from apallm.evidence import cue_specs

    rows = []
    for c in evidence.cues:
        fmt = cue_specs().get(c.name, {}).get("fmt", "{:g}")
        value = "n/a" if c.value is None else fmt.format(c.value)
        status = {"low": "LOW", "high": "HIGH", "na": "n/a"}.get(c.status, c.status)
        rows.append([c.name, value, c.unit, f"{fmt.format(c.range[0])} to {fmt.format(c.range[1])}", status,
                     c.domain])
    return rows


def cm_rows(cm_scores: Mapping[str, float]) -> list[list]:
    return [[name, round(p, 4), "spoof" if p >= 0.5 else "bonafide"] for name, p in cm_scores.items()]


#: label colours: spoof red, bona fide green; uncertain scores and abstentions neutral, never bold red
_COLOURS = {"spoof": "#c62828", "bonafide": "#2e7d32", "uncertain": "#8d6e00", NO_SPEECH: "#616161"}


def verdict_html(verdict: Verdict, band: tuple[float, float] = UNCERTAIN_BAND) -> str:
    """The label (``uncertain`` beside it inside the band; ``no speech`` for an abstention), P(spoof) as a
    bar, the flags, and the detector's name."""
    colour = _COLOURS["uncertain" if verdict.uncertain else verdict.label]
    detector = html.escape(verdict.detector or "detector")
    flags = "".join(f'<span class="apallm-flag" style="display:inline-block;margin:.2em .3em 0 0;padding:0 .4em;'
                    f'border-radius:3px;background:#eceff1;color:#37474f;font-size:.85em">{html.escape(f)}</span>'
                    for f in verdict.flags)
    head = (f'<div class="apallm-verdict" data-label="{verdict.label}" '
            f'data-uncertain="{str(verdict.uncertain).lower()}">'
            f'<div style="font-size:1.9em;font-weight:700;color:{colour}">{html.escape(verdict.display_label)}</div>')
    if verdict.score is None:
        return (head + f'<div style="margin:.3em 0 .1em">No score: the clip holds no speech to judge.</div>'
                f'<div>{flags}</div><div style="font-size:.85em;color:#666;margin-top:.3em">by {detector}</div></div>')
    pct = 100.0 * verdict.score
    low, high = (f"{x:g}" for x in band)
    return (
        head + f'<div style="margin:.3em 0 .1em">P(spoof) = <b>{verdict.score:.3f}</b></div>'
        f'<div style="background:#e0e0e0;border-radius:4px;height:14px;width:100%" role="meter" '
        f'aria-valuemin="0" aria-valuemax="1" aria-valuenow="{verdict.score:.3f}" aria-label="P(spoof)">'
        f'<div style="background:{colour};height:14px;border-radius:4px;width:{pct:.1f}%"></div></div>'
        f'<div>{flags}</div>'
        f'<div style="font-size:.85em;color:#666;margin-top:.3em">by {detector}; 0.5 and above is spoof; '
        f'{low}-{high} is uncertain</div></div>'
    )


def rationale_markdown(analysis: Analysis) -> str:
    v = analysis.verdict
    lines = [f"**Frequency:** {v.rationale.frequency or '(no frequency rationale given)'}",
             f"**Time:** {v.rationale.time or '(no time rationale given)'}"]
    if v.regions:
        lines.append("**Regions:** " + "; ".join(f"{s:.2f}-{e:.2f} s" for s, e in v.regions))
    if v.system:
        lines.append(f"**System:** {v.system}")
    clip = analysis.clip
    flags = f"; flags: {', '.join(v.flags)}" if v.flags else ""
    lines.append(f"<small>{html.escape(clip.id)}: {clip.duration_s:.2f} s, resampled to "
                 f"{clip.sample_rate // 1000} kHz mono from {clip.original_sample_rate} Hz{flags}</small>")
    return "\n\n".join(lines)


# ------------------------------------------------------------------------------------------ chat

_FREQ = re.compile(r"frequenc|band|spectr|\bhz\b|khz|treble|bass|octave|bright|muffled|flat|rolloff|"
                   r"\bhigh[- ]?end\b|\bhighs?\b|\blows?\b|\btone", re.IGNORECASE)
_HIGH = re.compile(r"\bhigh|treble|bright|upper|top\b", re.IGNORECASE)
_LOW = re.compile(r"\blow|bass|bottom|lower", re.IGNORECASE)
_EDIT = re.compile(r"\bwhere\b|\bwhen\b|edit|splic|\bcut|join|stitch|insert|region|segment|tamper", re.IGNORECASE)
_TIME = re.compile(r"\btime|timing|pause|silen|gap|rhythm|pitch|\bf0\b|intonation|prosod|level|loud|\bvoic(ed|ing)\b|"
                   r"clipp|\bdc\b|noise floor", re.IGNORECASE)
_WHY = re.compile(r"\bwhy\b|fake|spoof|real\b|genuine|bona ?fide|authentic|reason|explain|verdict|sure|"
                  r"confiden|score|evidence|how do you know|synthetic|deepfake", re.IGNORECASE)
_CM = re.compile(r"aasist|countermeasure|\bcms?\b|other (model|detector)s?", re.IGNORECASE)
_HIGH_CUES = ("bandwidth_hz", "band_energy_4000_8000", "band_energy_2000_4000", "spectral_rolloff_hz",
              "spectral_flatness")
_LOW_CUES = ("band_energy_125_250", "band_energy_250_500", "band_energy_500_1000")


def _cue_sentence(cue) -> str:
    text = cue.phrase[:1].upper() + cue.phrase[1:]
    if cue.status in ("low", "high"):
        text += f" (**{cue.status}**: outside the natural range)"
    return f"\n- {text}."


def evidence_answer(question: str, analysis: Analysis, detector_name: str = "the detector") -> list[str]:
    """Answer ``question`` about the clip from its measured evidence, as sentences to stream one by one
    (a sentence that starts a paragraph or a list item starts with a newline).

    Frequency words select the frequency-domain cues (the high or low ones when asked), edit and time words
    the splice candidates, predicted regions and time-domain cues, "why" the detector's rationale for its
    label, countermeasure words the auxiliary scores. Nothing is said beyond these measurements.
    """
    ev, v = analysis.evidence, analysis.verdict
    out = ["From the measured evidence (no audio LLM is loaded):"]
    asked = False
    if _WHY.search(question):
        asked = True
        notable = [c for c in ev.cues if c.status in ("low", "high")]
        if v.score is None:
            out.append(f"\n\n{detector_name} gives no verdict: {v.rationale.frequency}.")
        elif re.search(r"fake|spoof|synthetic|deepfake", question, re.IGNORECASE) and v.label == "bonafide":
            out.append(f"\n\n{detector_name} does not call it fake: it labels it bonafide with P(spoof) = "
                       f"{v.score:.2f}.")
        elif re.search(r"real\b|genuine|bona ?fide|authentic", question, re.IGNORECASE) and v.label == "spoof":
            out.append(f"\n\n{detector_name} does not call it real: it labels it spoof with P(spoof) = "
                       f"{v.score:.2f}.")
        else:
            out.append(f"\n\n{detector_name} labels it {v.display_label} with P(spoof) = {v.score:.2f}.")
        if v.rationale.frequency and v.score is not None:
            out.append(f"\n- Frequency: {v.rationale.frequency}.")
        if v.rationale.time and v.score is not None:
            out.append(f"\n- Time: {v.rationale.time}.")
        verb = "lies" if len(notable) == 1 else "lie"
        out.append(f"\n\n{len(notable)} of {len(ev.cues)} measured cues {verb} outside the range of natural speech"
                   + (f" ({', '.join(c.name for c in notable)})." if notable else "."))
        out.append("Such a cue is evidence to weigh, not proof: real recording channels differ too.")
    if _FREQ.search(question):
        asked = True
        high, low = _HIGH.search(question), _LOW.search(question)
        names = _HIGH_CUES if high and not low else _LOW_CUES if low and not high else None
        cues = [ev.cue(n) for n in names] if names else ev.by_domain("frequency")
        which = "high-frequency" if names is _HIGH_CUES else "low-frequency" if names is _LOW_CUES else "frequency"
        out.append(f"\n\nThe {which} cues:")
        out.extend(_cue_sentence(c) for c in cues)
        if names is not _LOW_CUES:
            out.append("\n\nOn the spectrogram the cyan dashed lines mark the band edges; a band limit shows as a "
                       "dark area above one of them.")
    if _EDIT.search(question):
        asked = True
        times = ev.cue("splice_candidates").detail.get("times_s", [])
        if times:
            out.append(f"\n\nSplice candidates (abrupt spectral changes inside speech) at "
                       f"{', '.join(f'{t:.2f} s' for t in times)}; they are the white dashed lines on the "
                       f"spectrogram.")
        else:
            out.append("\n\nNo splice candidate: the spectrum changes nowhere abruptly inside speech.")
        if v.regions:
            out.append("The detector marks " + "; ".join(f"{s:.2f}-{e:.2f} s" for s, e in v.regions)
                       + " as spoofed (shaded red).")
        else:
            out.append("The detector predicts no spoofed region: it labels the clip as a whole.")
    if _TIME.search(question):
        asked = True
        out.append("\n\nThe time-domain cues:")
        out.extend(_cue_sentence(c) for c in ev.by_domain("time") if c.name != "splice_candidates")
    if _CM.search(question):
        asked = True
        if analysis.cm_scores:
            out.append("\n\nThe auxiliary countermeasures:")
            out.extend(f"\n- {name} gives P(spoof) = {p:.2f} ({'spoof' if p >= 0.5 else 'bonafide'})."
                       for name, p in analysis.cm_scores.items())
        else:
            out.append("\n\nNo auxiliary countermeasure is loaded (start the demo with --cm DIR).")
    if not asked:
        notable = [c for c in ev.cues if c.status in ("low", "high")]
        out.append("\n\nThat question needs an audio LLM; from the measurements I can say why, what the "
                   "frequencies show, or where an edit may be.")
        if notable:
            out.append("Out of range here:")
            out.extend(_cue_sentence(c) for c in notable)
        else:
            out.append("Every measured cue lies within the range of natural speech.")
    out.append("\n\n_Free-form answers need an audio LLM: start the demo with --model or --adapter._")
    return out


def _stream_sentences(sentences: Sequence[str]) -> Iterator[str]:
    for i, sentence in enumerate(sentences):
        yield sentence if i == 0 or sentence.startswith("\n") else " " + sentence


def answer_stream(question: str, analysis: Analysis, detector, limits: DemoLimits) -> Iterator[str]:
    """Text chunks of the answer: the ALLM's tokens, or the evidence answer sentence by sentence."""
    if not can_chat(detector):
        yield from _stream_sentences(evidence_answer(question, analysis, getattr(detector, "name", "the detector")))
        return
    history = [(None, analysis.answer), *analysis.turns[-ALLM_CONTEXT_TURNS:]]
    cm = analysis.cm_scores if detector.options.cm_scores else None
    for chunk in detector.stream(analysis.clip, question=question, history=history, cm_scores=cm,
                                 max_new_tokens=limits.chat_max_new_tokens):
        if chunk:
            yield chunk


# ------------------------------------------------------------------------------------------ the app

def _first_message(analysis: Analysis, detector) -> dict:
    if can_chat(detector):
        return {"role": "assistant", "content": f"{analysis.answer}\n\nAsk me about this clip."}
    v = analysis.verdict
    said = (f"{v.display_label}: {v.rationale.frequency}." if v.score is None
            else f"{v.display_label} (P(spoof) = {v.score:.2f}).")
    return {"role": "assistant",
            "content": f"{said} {NO_ALLM_NOTE} Ask why, about the frequencies, or where an edit is."}


def build_app(detector, *, cms: Sequence = (), limits: DemoLimits | None = None, title: str = "apallm demo"):
    """The Gradio Blocks app. ``detector`` gives the verdict (and the chat, when it is an audio LLM); ``cms``
    are auxiliary countermeasures whose scores are shown beside it (and given to an ALLM that takes them).

    Launch it with :func:`launch` (which applies the upload limit) or ``app.launch(max_file_size=...)``.
    """
    import gradio as gr

    limits = limits or DemoLimits()
    chat = can_chat(detector)
    if chat and detector.options.cm_scores and not cms:
        raise ValueError(f"{detector.name} takes auxiliary countermeasure scores in its prompt: load them with "
                         f"--cm DIR (cms=[...])")
    name = getattr(detector, "name", type(detector).__name__)
    empty_cues = {"headers": CUE_HEADERS, "data": []}
    empty_cms = {"headers": CM_HEADERS, "data": []}

    def cleared(status: str):
        return (status, "", "", None, empty_cues, gr.update(value=empty_cms, visible=bool(cms)), None, [], None)

    def analyse(path):
        if not path:
            return cleared("Upload or record a clip.")
        try:
            clip = load_clip(path, limits)
            analysis = analyse_clip(clip, detector, cms)
            image = display_spectrogram(analysis, detector)
        except DemoError as exc:
            gr.Warning(str(exc))
            return cleared(f"**Could not analyse the clip.** {html.escape(str(exc))}")
        except Exception as exc:  # the user sees a message; the log keeps the traceback
            log.exception("analysis failed")
            gr.Warning(f"Analysis failed: {exc}")
            return cleared(f"**Analysis failed.** {type(exc).__name__}: {html.escape(str(exc))}")
        analysis.messages = [_first_message(analysis, detector)]
        v = analysis.verdict
        status = f"Analysed **{html.escape(clip.id)}** ({clip.duration_s:.2f} s)."
        return (status, verdict_html(v, getattr(detector, "uncertain_band", UNCERTAIN_BAND)),
                rationale_markdown(analysis), image,
                {"headers": CUE_HEADERS, "data": cue_rows(analysis.evidence)},
                gr.update(value={"headers": CM_HEADERS, "data": cm_rows(analysis.cm_scores)}, visible=bool(cms)),
                v.to_dict(), list(analysis.messages), analysis)

    def respond(message, analysis: Analysis | None):
        question = (message or "").strip()
        if analysis is None:
            gr.Warning("Upload or record a clip first.")
            yield [], None, message
            return
        if not question:
            yield list(analysis.messages), analysis, ""
            return
        if len(question) > MAX_QUESTION_CHARS:
            gr.Warning(f"The question is {len(question)} characters long; ask in at most {MAX_QUESTION_CHARS}.")
            yield list(analysis.messages), analysis, message
            return
        shown = [*analysis.messages, {"role": "user", "content": question}]
        answer = ""
        try:
            for chunk in answer_stream(question, analysis, detector, limits):
                answer += chunk
                yield [*shown, {"role": "assistant", "content": answer}], analysis, ""
        except Exception as exc:  # shown in the chat, never as a traceback
            log.exception("chat failed")
            answer += f"\n\n(The answer stopped: {type(exc).__name__}: {exc})"
        analysis.turns.append((question, answer))
        analysis.messages = [*shown, {"role": "assistant", "content": answer}]
        yield list(analysis.messages), analysis, ""

    mode = (f"Chat: **{html.escape(name)}** answers with the clip's audio, spectrogram and evidence in context."
            if chat else "Chat: no audio LLM is loaded, so it answers from the measured evidence; free-form answers "
                         "need one (--model or --adapter).")
    cm_note = f" Auxiliary countermeasures: {', '.join(cm.name for cm in cms)}." if cms else ""
    with gr.Blocks(title=title, delete_cache=(600, int(limits.cache_minutes * 60)), analytics_enabled=False) as app:
        gr.Markdown(f"## apallm: explainable speech deepfake detection\nDetector: **{html.escape(name)}**."
                    f"{cm_note} {mode}\n\nClips up to {limits.max_duration_s:g} s and {limits.max_upload_mb:g} MB.")
        state = gr.State(None, time_to_live=limits.cache_minutes * 60)  # a session's clip and chat
        with gr.Row():
            with gr.Column(scale=2, min_width=360):
                audio = gr.Audio(label="Clip: upload or record", sources=["upload", "microphone"], type="filepath",
                                 elem_id="clip")
                status = gr.Markdown("Upload or record a clip.", elem_id="status")
                verdict = gr.HTML(elem_id="verdict")
                rationale = gr.Markdown(elem_id="rationale")
                cm_table = gr.Dataframe(headers=CM_HEADERS, label="Auxiliary countermeasures", interactive=False,
                                        visible=bool(cms), elem_id="cm-scores")
                chatbot = gr.Chatbot(label="Ask about this clip", height=380, elem_id="chat")
                with gr.Row():
                    question = gr.Textbox(placeholder="Why fake? The high frequencies? Where is the edit?",
                                          show_label=False, scale=4, elem_id="question", max_length=MAX_QUESTION_CHARS)
                    ask = gr.Button("Ask", variant="primary", scale=1, min_width=60, elem_id="ask")
                gr.Examples([[q] for q in EXAMPLE_QUESTIONS], inputs=[question], label="Questions")
            with gr.Column(scale=3):
                image = gr.Image(label="Structured spectrogram", show_label=False, type="pil", interactive=False,
                                 format="png", elem_id="spectrogram")
                gr.Markdown("<small>Structured spectrogram. Cyan dashed: band edges. White dashed: splice "
                            "candidates. Red: regions the detector predicts as spoofed.</small>")
                cues = gr.Dataframe(value=empty_cues, label="Measured cues", interactive=False, wrap=True,
                                    max_height=800, column_widths=["31%", "11%", "9%", "21%", "12%", "16%"],
                                    elem_id="cues")
                with gr.Accordion("Verdict as JSON", open=False):
                    verdict_json = gr.JSON(elem_id="verdict-json")

        outputs = [status, verdict, rationale, image, cues, cm_table, verdict_json, chatbot, state]
        # analysis and chat share one concurrency limit: together they never run the models more than N at once
        shared = dict(concurrency_limit=limits.concurrency, concurrency_id="models")
        audio.change(analyse, inputs=[audio], outputs=outputs, api_name="analyse", **shared)
        gr.on([question.submit, ask.click], respond, inputs=[question, state], outputs=[chatbot, state, question],
              api_name="chat", **shared)
    app.queue(default_concurrency_limit=limits.concurrency, max_size=limits.queue_size)
    return app


def launch(app, limits: DemoLimits, *, host: str = "127.0.0.1", port: int | None = None, block: bool = True,
           quiet: bool = False):
    """Serve ``app`` with the upload limit; returns gradio's (app, local url, share url)."""
    return app.launch(server_name=host, server_port=port, max_file_size=limits.max_upload_bytes,
                      prevent_thread_lock=not block, share=False, quiet=quiet, show_error=False,
                      footer_links=["api"], ssr_mode=False)


# ------------------------------------------------------------------------------------------ command

def add_arguments(p) -> None:
    from apallm.detectors import add_arguments as add_detector_arguments

    add_detector_arguments(p)
    p.set_defaults(max_duration=DemoLimits.max_duration_s)
    s = p.add_argument_group("server and limits")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1; 0.0.0.0 for all)")
    s.add_argument("--port", type=int, default=7860, help="port (7860)")
    s.add_argument("--max-upload-mb", type=float, default=DemoLimits.max_upload_mb,
                   help=f"largest upload in MB ({DemoLimits.max_upload_mb:g})")
    s.add_argument("--concurrency", type=int, default=DemoLimits.concurrency,
                   help=f"requests served at once; the rest wait in the queue ({DemoLimits.concurrency})")
    s.add_argument("--queue-size", type=int, default=DemoLimits.queue_size,
                   help=f"requests that may wait ({DemoLimits.queue_size})")
    s.add_argument("--max-new-tokens", type=int, default=DemoLimits.chat_max_new_tokens,
                   help=f"longest ALLM chat answer in tokens ({DemoLimits.chat_max_new_tokens})")


def register(sub) -> None:
    p = sub.add_parser("demo", help="serve the Gradio demo: upload or record a clip, see its verdict, ask about it",
                       description="Serve the web demo. Upload or record a clip; see its structured spectrogram, "
                                   "verdict and measured cues; ask follow-up questions in a streaming chat. With "
                                   "--model/--adapter an audio LLM answers; otherwise the default detector gives "
                                   "the verdict and the chat answers from the measured evidence. Needs the demo "
                                   "extra: pip install 'apallm[demo]'.")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError:
        print("apallm demo needs gradio: pip install 'apallm[demo]'", file=sys.stderr)
        return 2
    try:
        limits = DemoLimits(max_upload_mb=args.max_upload_mb, max_duration_s=args.max_duration,
                            concurrency=args.concurrency, queue_size=args.queue_size,
                            chat_max_new_tokens=args.max_new_tokens)
        from apallm.detectors import auxiliary_from_args, from_args

        detector = from_args(args)
        app = build_app(detector, cms=auxiliary_from_args(args), limits=limits)
    except (ValueError, OSError, KeyError, ImportError) as exc:
        print(f"apallm demo: {exc}", file=sys.stderr)
        return 2
    launch(app, limits, host=args.host, port=args.port)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python demo/app.py [options]``: the same options as ``apallm demo``."""
    import argparse

    parser = argparse.ArgumentParser(prog="demo/app.py", description="Serve the apallm Gradio demo.")
    add_arguments(parser)
    return run(parser.parse_args(argv))

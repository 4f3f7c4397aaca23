"""The Gradio app: the verdict, the structured spectrogram, the measured cues and the chat on one page.

Gradio is imported only inside :func:`build_app`, so the package works without the ``demo`` extra.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence

from apallm.demo.analysis import (
    CM_HEADERS,
    CUE_HEADERS,
    Analysis,
    analyse_clip,
    can_chat,
    cm_rows,
    cue_rows,
    display_spectrogram,
)
from apallm.demo.chat import answer_stream
from apallm.demo.limits import DemoError, DemoLimits, load_clip
from apallm.verdict import NO_SPEECH, UNCERTAIN_BAND, Verdict

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000
EXAMPLE_QUESTIONS = ("Why is it fake?", "What about the high frequencies?", "Where is the edit?")
NO_ALLM_NOTE = ("No audio LLM is loaded, so these answers come from the measured evidence only; free-form "
                "answers need an ALLM (start the demo with --model or --adapter, or install apallm[lite]).")


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


def _first_message(analysis: Analysis, detector, talker=None) -> dict:
    if can_chat(detector):
        return {"role": "assistant", "content": f"{analysis.answer}\n\nAsk me about this clip."}
    if talker is not None:
        return {"role": "assistant", "content": f"{analysis.answer}\n\nAsk {talker.name} about this clip."}
    v = analysis.verdict
    said = (f"{v.display_label}: {v.rationale.frequency}." if v.score is None
            else f"{v.display_label} (P(spoof) = {v.score:.2f}).")
    return {"role": "assistant",
            "content": f"{said} {NO_ALLM_NOTE} Ask why, about the frequencies, or where an edit is."}


def build_app(detector, *, cms: Sequence = (), limits: DemoLimits | None = None, title: str = "apallm demo",
              chat_model=None):
    """The Gradio Blocks app. ``detector`` gives the verdict (and the chat, when it is an audio LLM); ``cms``
    are auxiliary countermeasures whose scores are shown beside it (and given to an ALLM that takes them);
    ``chat_model``, an audio LLM, answers the chat when ``detector`` cannot (the verdict stays the detector's and
    opens the conversation).

    Launch it with :func:`launch` (which applies the upload limit) or ``app.launch(max_file_size=...)``.
    """
    import gradio as gr

    limits = limits or DemoLimits()
    chat = can_chat(detector)
    talker = detector if chat else chat_model
    if talker is not None and not can_chat(talker):
        raise ValueError(f"the chat model {getattr(talker, 'name', talker)!r} is not an audio LLM")
    if talker is not None and talker.options.cm_scores and not cms and not talker.cm_detectors:
        raise ValueError(f"{talker.name} takes auxiliary countermeasure scores in its prompt: load them with "
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
        analysis.messages = [_first_message(analysis, detector, talker)]
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
            for chunk in answer_stream(question, analysis, talker or detector, limits):
                answer += chunk
                yield [*shown, {"role": "assistant", "content": answer}], analysis, ""
        except Exception as exc:  # shown in the chat, never as a traceback
            log.exception("chat failed")
            answer += f"\n\n(The answer stopped: {type(exc).__name__}: {exc})"
        analysis.turns.append((question, answer))
        analysis.messages = [*shown, {"role": "assistant", "content": answer}]
        yield list(analysis.messages), analysis, ""

    if chat:
        mode = f"Chat: **{html.escape(name)}** answers with the clip's audio, spectrogram and evidence in context."
    elif talker is not None:
        mode = (f"Chat: the audio LLM **{html.escape(talker.name)}** answers free-form, with the clip's audio, "
                f"spectrogram, evidence and this verdict in context.")
    else:
        mode = ("Chat: no audio LLM is loaded, so it answers from the measured evidence; free-form answers need one "
                "(--model or --adapter; or pip install 'apallm[lite]' for the shipped lite model).")
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

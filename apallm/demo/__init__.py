"""The Gradio demo: upload or record a clip, see its structured spectrogram and verdict, and question it.

``apallm demo`` (or ``python demo/app.py``) serves it. :func:`build_app` takes the detector and the auxiliary
countermeasures as objects, so tests and other programs pass whatever they have loaded. With an audio LLM
(a detector that can :meth:`~apallm.allm.base.ALLMDetector.stream`) the chat is the model's own answers with
the clip in context; with any other detector the chat answers from the measured evidence and says so.

Modules: :mod:`~apallm.demo.limits` (what a request may ask, the uploaded clip), :mod:`~apallm.demo.analysis`
(the verdict, cues and spectrogram of one clip), :mod:`~apallm.demo.chat` (the answers to questions about it),
:mod:`~apallm.demo.app` (the page). Gradio is imported only inside :func:`build_app` and the command
(:mod:`apallm.commands.demo`), so ``apallm --help`` stays fast and the package works without the ``demo`` extra.
"""

from apallm.demo.analysis import (
    CM_HEADERS,
    CUE_HEADERS,
    DISPLAY_HEIGHT,
    DISPLAY_WIDTH,
    Analysis,
    analyse_clip,
    can_chat,
    cm_rows,
    cue_rows,
    display_spectrogram,
)
from apallm.demo.app import build_app, launch, rationale_markdown, verdict_html
from apallm.demo.chat import answer_stream, evidence_answer
from apallm.demo.limits import DemoError, DemoLimits, load_clip

__all__ = ["CM_HEADERS", "CUE_HEADERS", "DISPLAY_HEIGHT", "DISPLAY_WIDTH", "Analysis", "DemoError", "DemoLimits",
           "analyse_clip", "answer_stream", "build_app", "can_chat", "cm_rows", "cue_rows", "display_spectrogram",
           "evidence_answer", "launch", "load_clip", "rationale_markdown", "verdict_html"]

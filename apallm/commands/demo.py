"""``apallm demo`` (and ``python demo/app.py``): serve the Gradio demo."""

from __future__ import annotations

import sys
from pathlib import Path

from apallm.commands._common import EXIT_OK, EXIT_USAGE, fail
from apallm.demo.limits import DemoLimits


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
    s.add_argument("--chat-model", default="auto", metavar="MODEL",
                   help="the audio LLM that answers the chat when the detector is not one: auto (the shipped lite "
                        "model when apallm[lite] is installed), none, a model or an adapter folder (auto)")
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
        return EXIT_USAGE
    from apallm.demo.app import build_app, launch
    from apallm.detectors import auxiliary_from_args, from_args

    try:
        limits = DemoLimits(max_upload_mb=args.max_upload_mb, max_duration_s=args.max_duration,
                            concurrency=args.concurrency, queue_size=args.queue_size,
                            chat_max_new_tokens=args.max_new_tokens)
        detector = from_args(args)
        app = build_app(detector, cms=auxiliary_from_args(args), limits=limits,
                        chat_model=chat_model(args.chat_model, detector, args.device))
    except (ValueError, OSError, KeyError, ImportError) as exc:
        return fail("demo", exc)
    launch(app, limits, host=args.host, port=args.port)
    return EXIT_OK


def chat_model(spec: str, detector, device: str = "auto"):
    """The ALLM that chats beside a detector that cannot: ``auto`` is the shipped lite model where it is
    installed (else none, and the chat answers from the measured evidence)."""
    from apallm.allm import load_allm
    from apallm.allm.registry import lite_available
    from apallm.demo.analysis import can_chat

    if spec == "none" or can_chat(detector):
        return None
    if spec == "auto":
        return load_allm("lite", device=device) if lite_available() else None
    if (Path(spec) / "adapter").is_dir():  # a fine-tuned folder (apallm train sft, train/lite_allm.py --out)
        return load_allm(adapter=spec, device=device)
    return load_allm(spec, device=device)


def main(argv: list[str] | None = None) -> int:
    """``python demo/app.py [options]``: the same options as ``apallm demo``."""
    import argparse

    parser = argparse.ArgumentParser(prog="demo/app.py", description="Serve the apallm Gradio demo.")
    add_arguments(parser)
    return run(parser.parse_args(argv))

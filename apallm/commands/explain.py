"""``apallm explain``: label, score and rationale for audio clips."""

from __future__ import annotations

import json

from apallm.commands._common import EXIT_FAILED, EXIT_OK, error_line, error_record, fail


def register(sub) -> None:
    from apallm.detectors import add_arguments

    p = sub.add_parser(
        "explain", help="label, score and rationale for audio clips",
        description="Explain each clip: label (bonafide/spoof), score = P(spoof) and a rationale citing frequency- "
                    "and time-domain evidence. With --model/--adapter an ALLM answers; without them the small "
                    "detector shipped in the package scores the clip and the rationale is phrased from the measured "
                    "cues that support its label. A clip without enough speech gets 'no speech' and no score; a "
                    "score inside the uncertain band is shown as uncertain. One line (or JSON record) per clip; a "
                    "clip that fails prints its error and the others go on. Exit status 1 when any clip failed, 2 "
                    "when the detector could not be loaded.")
    p.add_argument("clips", nargs="+", metavar="CLIP")
    add_arguments(p)
    p.add_argument("--json", action="store_true", help="one JSON verdict per line")
    p.add_argument("--evidence", action="store_true", help="include the measured evidence in JSON verdicts")
    p.add_argument("--batch-size", type=int, default=4, help="clips per ALLM call (4)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="longest ALLM answer in tokens")
    p.set_defaults(func=_cmd_explain)


def _cmd_explain(args) -> int:
    from apallm.audio import load_audio
    from apallm.detectors import auxiliary_from_args, explain_with, from_args

    try:
        detector = from_args(args, batch_size=args.batch_size)
        auxiliary = auxiliary_from_args(args)
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        return fail("explain", f"cannot load the model: {exc}")
    failures = 0
    for path in args.clips:
        try:
            clip = load_audio(path, max_duration_s=args.max_duration)
            (verdict,) = explain_with(detector, [clip], auxiliary, include_evidence=args.evidence)
            if args.json:
                print(json.dumps({"path": path, **verdict.to_dict()}, ensure_ascii=False), flush=True)
            else:
                print(format_verdict(verdict, path), flush=True)
        except Exception as exc:  # one clip never ends the run
            failures += 1
            if args.json:
                print(json.dumps(error_record(path, exc)), flush=True)
            else:
                print(error_line(path, exc, width=9), flush=True)
    return EXIT_FAILED if failures else EXIT_OK


def format_verdict(verdict, path: str) -> str:
    """The text form of a verdict: label (uncertain / no speech), score, path, flags, rationale, CM scores."""
    score = "  -  " if verdict.score is None else f"{verdict.score:.3f}"
    flags = f"  [{', '.join(verdict.flags)}]" if verdict.flags else ""
    lines = [f"{verdict.display_label:17s} {score}  {path}{flags}",
             f"  Frequency: {verdict.rationale.frequency}", f"  Time: {verdict.rationale.time}"]
    if verdict.cm_scores:
        lines.append("  Countermeasures: " + ", ".join(f"{k} {v:.3f}" for k, v in verdict.cm_scores.items()))
    return "\n".join(lines)

"""``apallm evidence``: the structured spectrogram and the measured cues of audio clips."""

from __future__ import annotations

import json
from pathlib import Path

from apallm.commands._common import EXIT_FAILED, EXIT_OK, error_line, error_record, fail


def register(sub) -> None:
    p = sub.add_parser(
        "evidence",
        help="measure acoustic cues and render the structured spectrogram of audio clips",
        description="For each clip write <stem>.png (structured spectrogram) and <stem>.json (measured cues) "
                    "into --out, and print one line per clip. A clip that fails prints its specific error and "
                    "the others go on. Exit status: 0 when every clip succeeded, 1 when any failed.",
    )
    p.add_argument("clips", nargs="+", metavar="CLIP", help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument("--out", "-o", required=True, type=Path, help="output folder")
    p.add_argument("--kind", choices=("cqt", "mel", "stft"), default="cqt", help="spectrogram transform (cqt)")
    p.add_argument("--width", type=int, default=448, help="image width in px, snapped to a multiple of 28 (448)")
    p.add_argument("--height", type=int, default=448, help="image height in px, snapped to a multiple of 28 (448)")
    p.add_argument("--max-duration", type=float, default=600.0,
                   help="refuse clips longer than this many seconds (600; 0 = no limit)")
    p.add_argument("--window", type=float, default=30.0,
                   help="analysis window in seconds for long clips, as an ALLM hears them (30)")
    p.add_argument("--window-policy", choices=("sliding", "first", "center", "whole"), default="sliding",
                   help="long clips: 'sliding' writes <stem>_w00, _w01, ... covering the clip; 'first'/'center' "
                        "keep one window; 'whole' analyses the full clip at once (sliding)")
    p.add_argument("--mark-splices", action="store_true", help="draw splice candidates on the image")
    p.add_argument("--json", action="store_true", help="print one JSON record per clip instead of a text line")
    p.add_argument("--attribution", nargs="?", const="default", default=None, metavar="DETECTOR",
                   help="also attribute a detector's P(spoof) over 0.5 s spans and bands (the shipped detector, or "
                        "a registered name or detector folder): writes <stem>_attribution.png (the spectrogram with "
                        "a strip under it, red where masking lowered P(spoof)) and the attribution into <stem>.json")
    p.set_defaults(func=_cmd_evidence)


def _unique_stem(stem: str, used: set[str]) -> str:
    candidate, n = stem, 1
    while candidate in used:
        candidate = f"{stem}-{n}"
        n += 1
    used.add(candidate)
    return candidate


def _attribution(detector, clip, evidence, out: Path, name: str) -> tuple[dict, Path]:
    """Attribute ``detector``'s score on the window and draw it under the spectrogram: the attribution for the
    JSON, and the image's path."""
    from apallm.attribution import attribute, draw_attribution

    att = attribute(detector, clip)
    png = out / f"{name}_attribution.png"
    out.mkdir(parents=True, exist_ok=True)
    png.write_bytes(draw_attribution(evidence.spectrogram, att))
    return {"detector": detector.name, **att.to_dict()}, png


def _cmd_evidence(args) -> int:
    from apallm.audio import load_audio, split_windows
    from apallm.evidence import EvidenceConfig, SpectrogramConfig, extract_evidence

    try:
        config = EvidenceConfig(spectrogram=SpectrogramConfig(kind=args.kind, width=args.width, height=args.height),
                                mark_splices=args.mark_splices)
    except ValueError as exc:
        return fail("evidence", exc)
    detector = None
    if args.attribution:
        from apallm.detectors import load_detector

        try:
            detector = load_detector(args.attribution)
        except (OSError, ValueError, ImportError) as exc:
            return fail("evidence", f"cannot load the detector for --attribution: {exc}")
    used: set[str] = set()
    failures = 0
    for path in args.clips:
        try:
            clip = load_audio(path, max_duration_s=args.max_duration or None)
            windows = [clip] if args.window_policy == "whole" else split_windows(
                clip, window_s=args.window, policy=args.window_policy)
            stem = _unique_stem(Path(path).stem, used)
            outputs, notable, first = [], 0, None
            for i, win in enumerate(windows):
                ev = extract_evidence(win, config)
                first = first or ev
                name = stem if len(windows) == 1 else f"{stem}_w{i:02d}"
                extra, drawn = {}, None
                if detector is not None:
                    attribution, drawn = _attribution(detector, win, ev, args.out, name)
                    extra = {"attribution": attribution}
                png, js = ev.save(args.out, name, extra)
                outputs.append({"png": str(png), "json": str(js), "offset_s": round(win.offset_s, 3)})
                if drawn is not None:
                    outputs[-1]["attribution_png"] = str(drawn)
                notable += sum(c.status in ("low", "high") for c in ev.cues)
            record = {"path": path, "ok": True, "duration_s": round(clip.duration_s, 3), "windows": len(windows),
                      "outputs": outputs, "flags": clip.flags, "bandwidth_hz": first.cue("bandwidth_hz").value,
                      "cues_out_of_range": notable}
            if args.json:
                print(json.dumps(record), flush=True)
            else:
                bw = record["bandwidth_hz"]
                bandwidth = "n/a" if bw is None else f"{bw:.0f} Hz"
                extra = f"; flags: {', '.join(clip.flags)}" if clip.flags else ""
                win = f" in {len(windows)} windows" if len(windows) > 1 else ""
                cues = f"{notable} cue{'' if notable == 1 else 's'} out of range"
                print(f"ok     {path} -> {outputs[0]['png']}{win} ({clip.duration_s:.2f} s; bandwidth {bandwidth}; "
                      f"{cues}{extra})", flush=True)
        except Exception as exc:  # keep going: one clip must never end the run
            failures += 1
            if args.json:
                print(json.dumps(error_record(path, exc, ok=False)), flush=True)
            else:
                print(error_line(path, exc), flush=True)
    return EXIT_FAILED if failures else EXIT_OK

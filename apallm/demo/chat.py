"""The demo's chat: an audio LLM's own streamed answers, or answers from the measured evidence without one."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from apallm.demo.analysis import Analysis, can_chat
from apallm.demo.limits import DemoLimits

#: follow-up turns kept in an ALLM's context (with the clip turn); older ones scroll out of its memory
ALLM_CONTEXT_TURNS = 4

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


def _attribution_sentences(attribution, detector_name: str) -> list[str]:
    from apallm.attribution import Attribution

    top = Attribution.from_dict(attribution).top(3)
    if not top:
        return [f"Masking the clip span by span and band by band lowers {detector_name}'s P(spoof) nowhere: no "
                "part of it carries the spoof evidence on its own."]
    parts = "; ".join(f"{r.describe()} (P(spoof) drops by {r.delta:.2f})" for r in top)
    return [f"Masking the clip span by span and band by band, {detector_name}'s P(spoof) drops most at {parts}.",
            "The strip under the spectrogram shows each half second: the redder, the more it raised P(spoof); "
            "red marks on the right edge show the bands, red boxes where both meet."]


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
        elif v.attribution:
            out.extend(_attribution_sentences(v.attribution, detector_name))
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
    # without auxiliary scores an ALLM that reads them runs its own (ALLMDetector.cm_detectors)
    cm = (analysis.cm_scores or None) if detector.options.cm_scores else None
    for chunk in detector.stream(analysis.clip, question=question, history=history, cm_scores=cm,
                                 max_new_tokens=limits.chat_max_new_tokens):
        if chunk:
            yield chunk

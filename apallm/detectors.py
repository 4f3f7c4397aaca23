"""The interface every detector implements, and a registry to build one by name.

A detector scores validated clips with P(spoof) and explains them with :class:`~apallm.verdict.Verdict`s.
ALLM backends, auxiliary countermeasures (AASIST, SSL + AASIST, WPT) and fusions all implement it, so the
CLI, the batch runner, the evaluation harness and the demo treat them alike.

:meth:`Detector.explain` is the one door every verdict goes through: it takes paths, bytes, arrays or
:class:`~apallm.audio.Clip` objects, abstains with ``no_speech`` on clips without enough speech (see
:mod:`apallm.speech`), carries the clip's flags into the verdict and marks scores in the uncertain band.
Subclasses implement :meth:`~Detector.score` and, when they have words of their own (ALLMs),
:meth:`~Detector.explain_speech`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from apallm._imports import resolve
from apallm.audio import Clip, as_clips
from apallm.verdict import NO_SPEECH, UNCERTAIN_BAND, Rationale, Verdict, is_uncertain

_REGISTRY: dict[str, Callable[..., Detector]] = {}
#: modules whose import registers the package's own detectors
_BUILTIN_MODULES = ("apallm.cm.detector", "apallm.cm.default")


class Detector(ABC):
    """Scores and explains clips. ``name`` identifies it in verdicts and reports."""

    name: str = "detector"
    #: scores in this band are marked uncertain in verdicts (``apallm explain --uncertain-band``)
    uncertain_band: tuple[float, float] = UNCERTAIN_BAND
    #: whether :meth:`explain_speech` attributes the score over time spans and bands
    #: (:mod:`apallm.attribution`) and says in a spoof verdict's rationale where the evidence lies
    attribute_verdicts: bool = False

    @abstractmethod
    def score(self, clips: Sequence[Clip]) -> np.ndarray:
        """P(spoof) in [0, 1] for each clip, as a float array of ``len(clips)``. Implementations accept
        what :func:`~apallm.audio.as_clips` accepts."""

    def explain(self, clips, include_evidence: bool = False, cm_scores=None) -> list[Verdict]:
        """A verdict per clip (a path, bytes, an array taken as 16 kHz, or a Clip; see
        :func:`~apallm.audio.as_clips`). A clip without enough speech gets a ``no_speech`` verdict with no
        score and is never scored; the others get :meth:`explain_speech`'s verdicts. Every verdict carries
        its clip's flags, and ``uncertain`` from :attr:`uncertain_band`. ``cm_scores`` (one mapping per clip)
        go to ALLMs that take countermeasure scores as evidence."""
        from apallm.speech import speech_presence

        clips = as_clips(clips)
        if cm_scores is not None and len(cm_scores) != len(clips):
            raise ValueError("cm_scores needs one mapping per clip")
        presence = [speech_presence(clip) for clip in clips]
        keep = [i for i, p in enumerate(presence) if p.has_speech]
        extra = {} if cm_scores is None else {"cm_scores": [cm_scores[i] for i in keep]}
        spoken = iter(self.explain_speech([clips[i] for i in keep], include_evidence, **extra) if keep else ())
        verdicts = []
        for clip, p in zip(clips, presence, strict=True):
            verdict = next(spoken) if p.has_speech else self._abstain(clip, p, include_evidence)
            verdict.flags = list(dict.fromkeys([*clip.flags, *verdict.flags]))
            verdict.uncertain = verdict.label != NO_SPEECH and is_uncertain(verdict.score, self.uncertain_band)
            verdicts.append(verdict)
        return verdicts

    def _abstain(self, clip: Clip, presence, include_evidence: bool) -> Verdict:
        from apallm.evidence import EvidenceConfig, extract_evidence

        found = "digital silence" if clip.is_silent else (
            f"{presence.speech_s:.2f} s of {clip.duration_s:.2f} s judged speech by voice activity detection")
        why = f"no verdict: the clip holds no speech to judge ({found})"
        evidence = None
        if include_evidence:
            evidence = extract_evidence(clip, EvidenceConfig(render_image=False)).to_dict()
            evidence["speech"] = presence.to_dict()
        return Verdict(label=NO_SPEECH, score=None, rationale=Rationale(why, why), evidence=evidence,
                       detector=self.name, id=clip.id)

    def explain_speech(self, clips: Sequence[Clip], include_evidence: bool = False) -> list[Verdict]:
        """Verdicts for clips that hold speech: labelled by ``score >= 0.5``, with a rationale phrased from the
        clip's measured cues (those that support the label, see :meth:`Evidence.rationale`). ALLMs override
        it with their own words."""
        from apallm.evidence import EvidenceConfig, extract_evidence

        verdicts = []
        scores, attributions = self.scores_and_attributions(clips)
        for clip, p, attribution in zip(clips, scores, attributions, strict=True):
            label = "spoof" if p >= 0.5 else "bonafide"
            evidence = extract_evidence(clip, EvidenceConfig(render_image=False))
            frequency, time = evidence.rationale(label)
            if attribution is not None and label == "spoof":
                frequency, time = _with_where(attribution, clip, frequency, time)
            verdicts.append(Verdict(label=label, score=float(p), rationale=Rationale(frequency, time),
                                    evidence=evidence.to_dict() if include_evidence else None,
                                    detector=self.name, id=clip.id, attribution=attribution))
        return verdicts

    def scores_and_attributions(self, clips: Sequence[Clip]) -> tuple[np.ndarray, list]:
        """P(spoof) of each clip and, when :attr:`attribute_verdicts`, its
        :class:`~apallm.attribution.Attribution` (else None). An attribution scores the clip itself in the same
        pass as its masked copies, so its score is the verdict's."""
        from apallm.attribution import attribute

        if not self.attribute_verdicts:
            return np.asarray(self.score(clips), dtype=float), [None] * len(clips)
        attributions = [attribute(self, clip) for clip in clips]
        return np.array([a.score for a in attributions], dtype=float), attributions


def _with_where(attribution, clip: Clip, frequency: str, time: str) -> tuple[str, str]:
    """The rationale with where the detector's spoof evidence lies and what is measured there, in the domain
    the strongest region names (a time span goes with the time domain, a band or a cell with frequency)."""
    from apallm.attribution import where_rationale
    from apallm.evidence import no_supporting_cue

    top = attribution.top(1)
    where = where_rationale(attribution, clip)

    def joined(text: str, domain: str) -> str:
        if text in where:  # a band's region is the whole clip: its cues were cited "there" already
            return where
        if text == no_supporting_cue(domain, "spoof"):  # the where sentence spoke of the region, this of the clip
            return f"{where}. Over the whole clip, {text}"
        return f"{where}. {text[:1].upper()}{text[1:]}"

    if top and top[0].kind == "span":
        return frequency, joined(time, "time")
    return joined(frequency, "frequency"), time


def register_detector(name: str) -> Callable:
    """Decorator: make a detector factory available to :func:`load_detector` under ``name``."""

    def wrap(factory: Callable[..., Detector]) -> Callable[..., Detector]:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"a detector named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return wrap


@register_detector("allm")
def _allm(model: str | None = None, adapter: str | None = None, **kwargs) -> Detector:
    """An audio LLM: a hub id, a local checkpoint, a built-in tiny model or ``lite``, and/or an adapter folder
    (:func:`apallm.allm.load_allm`; ``apallm explain --model/--adapter``)."""
    from apallm.allm import load_allm

    return load_allm(model, adapter=adapter, **kwargs)


def _import_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def available_detectors() -> list[str]:
    _import_builtins()
    return sorted(_REGISTRY)


def load_detector(spec: str, **kwargs) -> Detector:
    """Build a detector from a registered name, a ``"package.module:factory"`` path, or a folder (a
    countermeasure checkpoint, or a default-detector folder written by ``train/default_detector.py``); ``kwargs``
    go to the factory (e.g. ``load_detector("aasist", checkpoint="runs/aasist")``)."""
    _import_builtins()
    if spec in _REGISTRY:
        return _REGISTRY[spec](**kwargs)
    if (Path(spec) / "detector.json").is_file():
        return _REGISTRY["default"](directory=spec, **kwargs)
    if _is_checkpoint_folder(spec):
        from apallm.cm import CMDetector

        return CMDetector(spec, **kwargs)
    if ":" in spec:
        detector = resolve(spec)(**kwargs)
        if not isinstance(detector, Detector):
            raise TypeError(f"{spec} built a {type(detector).__name__}, not an apallm Detector")
        return detector
    known = ", ".join(available_detectors()) or "none registered"
    raise ValueError(f"unknown detector {spec!r} (registered: {known}; or give 'package.module:factory')")


# ----------------------------------------------------------------------------- one factory for every command

def add_arguments(parser, *, generation: bool = True) -> None:
    """The detector and limit options that ``explain``, ``batch`` and ``demo`` share: which detector
    (an ALLM with ``--model``/``--adapter``, or ``--detector``, by default the one shipped in the package),
    auxiliary countermeasures (``--cm``, always auxiliary: their scores go beside the verdict), the uncertain
    band and the longest clip. ``generation`` adds the ALLM's generation options."""
    g = parser.add_argument_group("detector (default: the detector shipped in the package)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--model", help="an audio LLM: hub id (Qwen/Qwen2.5-Omni-3B), local checkpoint or tiny-*")
    x.add_argument("--adapter", help="an audio LLM: folder written by 'apallm train sft' or 'train grpo'")
    x.add_argument("--detector", default=None,
                   help="a registered detector name (see 'apallm detectors'), 'package.module:factory', or a "
                        "countermeasure checkpoint folder (AASIST, SSL-AASIST, ...) or a default-detector folder "
                        "(train/default_detector.py); default: 'default'")
    g.add_argument("--detector-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="argument for --detector's factory, e.g. checkpoint=runs/aasist (repeatable)")
    g.add_argument("--cm", action="append", default=[], metavar="DIR",
                   help="auxiliary countermeasure checkpoint folder: its P(spoof) goes beside the verdict, and to "
                        "an ALLM whose --inputs include cm (repeatable)")
    g.add_argument("--device", default="auto", help="torch device: auto (CUDA if available), cpu, cuda:1, ...")
    g.add_argument("--uncertain-band", default=f"{UNCERTAIN_BAND[0]:g},{UNCERTAIN_BAND[1]:g}", metavar="LOW,HIGH",
                   help="scores in this band are shown as uncertain beside the label (%(default)s)")
    if generation:
        g.add_argument("--inputs", default=None,
                       help="what an ALLM is given: audio, audio+spectrogram (default), ...+cues, ...+cm")
        g.add_argument("--quantization", choices=("4bit",), default=None, help="load the ALLM base in 4-bit (GPU)")
    parser.add_argument("--max-duration", type=float, default=600.0, metavar="S",
                        help="longest clip in seconds; longer ones are refused with AudioTooLongError (%(default)g)")


def parse_pairs(items: Sequence[str], option: str = "--detector-arg") -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; anything without ``=`` is a ValueError naming the option."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} takes KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def from_args(args, batch_size: int | None = None) -> Detector:
    """The detector the options of :func:`add_arguments` name, with its uncertain band set."""
    from apallm.verdict import parse_band

    band = parse_band(args.uncertain_band)
    kwargs = parse_pairs(args.detector_arg)
    if args.model or args.adapter:
        from apallm.allm import PromptOptions

        options = {}
        if getattr(args, "inputs", None):
            options["options"] = PromptOptions.parse(args.inputs)
        if batch_size:
            options["batch_size"] = batch_size
        if getattr(args, "max_new_tokens", None):
            options["max_new_tokens"] = args.max_new_tokens
        detector = load_detector("allm", model=args.model, adapter=args.adapter, device=args.device,
                                 quantization=getattr(args, "quantization", None), **options, **kwargs)
    else:
        spec = args.detector or "default"
        extra = {"batch_size": batch_size} if batch_size and _is_checkpoint_folder(spec) else {}
        detector = load_detector(spec, **extra, **kwargs)
    detector.uncertain_band = band
    return detector


def auxiliary_from_args(args) -> list[Detector]:
    from apallm.cm import CMDetector

    return [CMDetector(folder) for folder in args.cm]


def _is_checkpoint_folder(spec: str) -> bool:
    return Path(spec).is_dir() and (Path(spec) / "config.json").is_file()


def explain_with(detector: Detector, clips, auxiliary: Sequence[Detector] = (), include_evidence: bool = False
                 ) -> list[Verdict]:
    """``detector.explain(clips)`` with the auxiliary countermeasures' scores in each verdict's ``cm_scores``
    (and given to the detector as evidence when it takes them)."""
    clips = as_clips(clips)
    if not auxiliary:
        return detector.explain(clips, include_evidence=include_evidence)
    columns = {cm.name: cm.score(clips) for cm in auxiliary}
    cm_scores = [{name: float(p[i]) for name, p in columns.items()} for i in range(len(clips))]
    extra = {"cm_scores": cm_scores} if getattr(detector, "takes_cm_scores", False) else {}
    verdicts = detector.explain(clips, include_evidence=include_evidence, **extra)
    for verdict, scores in zip(verdicts, cm_scores, strict=True):
        verdict.cm_scores = scores
    return verdicts

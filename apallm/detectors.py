"""The interface every detector implements, and a registry to build one by name.

A detector scores validated clips with P(spoof) and explains them with :class:`~apallm.verdict.Verdict`s.
ALLM backends, auxiliary countermeasures (AASIST, SSL + AASIST, WPT) and fusions all implement it, so the
CLI, the batch runner, the evaluation harness and the demo treat them alike.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np

from apallm.audio import Clip
from apallm.verdict import Rationale, Verdict

_REGISTRY: dict[str, Callable[..., Detector]] = {}
#: modules whose import registers the package's own detectors
_BUILTIN_MODULES = ("apallm.cm.detector", "apallm.cm.default")


class Detector(ABC):
    """Scores and explains clips. ``name`` identifies it in verdicts and reports."""

    name: str = "detector"

    @abstractmethod
    def score(self, clips: Sequence[Clip]) -> np.ndarray:
        """P(spoof) in [0, 1] for each clip, as a float array of ``len(clips)``."""

    def explain(self, clips: Sequence[Clip], include_evidence: bool = False) -> list[Verdict]:
        """A verdict per clip: labelled by ``score >= 0.5``, with a rationale phrased from the clip's measured
        cues (those that support the label, see :meth:`Evidence.rationale`). ALLMs override it with their
        own words."""
        from apallm.evidence import EvidenceConfig, extract_evidence

        verdicts = []
        for clip, p in zip(clips, self.score(clips), strict=True):
            label = "spoof" if p >= 0.5 else "bonafide"
            evidence = extract_evidence(clip, EvidenceConfig(render_image=False))
            frequency, time = evidence.rationale(label)
            verdicts.append(Verdict(label=label, score=float(p), rationale=Rationale(frequency, time),
                                    evidence=evidence.to_dict() if include_evidence else None,
                                    detector=self.name, id=clip.id))
        return verdicts


def register_detector(name: str) -> Callable:
    """Decorator: make a detector factory available to :func:`load_detector` under ``name``."""

    def wrap(factory: Callable[..., Detector]) -> Callable[..., Detector]:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"a detector named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return wrap


def _import_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def available_detectors() -> list[str]:
    _import_builtins()
    return sorted(_REGISTRY)


def load_detector(spec: str, **kwargs) -> Detector:
    """Build a detector from a registered name or a ``"package.module:factory"`` path; ``kwargs`` go to the
    factory (e.g. ``load_detector("aasist", checkpoint="runs/aasist")``)."""
    _import_builtins()
    if spec in _REGISTRY:
        return _REGISTRY[spec](**kwargs)
    if ":" in spec:
        module, _, attr = spec.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        detector = factory(**kwargs)
        if not isinstance(detector, Detector):
            raise TypeError(f"{spec} built a {type(detector).__name__}, not an apallm Detector")
        return detector
    known = ", ".join(available_detectors()) or "none registered"
    raise ValueError(f"unknown detector {spec!r} (registered: {known}; or give 'package.module:factory')")

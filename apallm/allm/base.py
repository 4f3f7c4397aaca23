"""The ALLM detector: one class for every model family; a family module supplies the model, the processor
and how a conversation becomes model inputs.

- :meth:`ALLMDetector.score`: P(spoof) from the two label-token logits at the first answer position, one
  batched forward pass (left padding), no generation.
- :meth:`ALLMDetector.explain`: a full :class:`~apallm.verdict.Verdict` by generation; its score comes from the
  first generation step's label logits, the same numbers :meth:`score` reads.
- :meth:`ALLMDetector.stream`: token streaming for chat.

Clips longer than the audio encoder's 30 s are cut into sliding windows; a clip's score is its most
suspicious window's (a spoofed stretch anywhere makes the clip spoof), and that window is the one explained.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from apallm import __version__
from apallm.audio import ALLM_WINDOW_S, Clip, as_clips, split_windows
from apallm.detectors import Detector
from apallm.evidence import Evidence, EvidenceConfig, SpectrogramConfig, extract_evidence
from apallm.verdict import LABEL_WORDS, LABELS, Rationale, Verdict, parse_answer

from .prompting import PromptOptions, prompt_texts, user_text

CONFIG_NAME = "apallm.json"
IGNORE_INDEX = -100


@dataclass
class Sample:
    """One window of one clip, ready to be turned into model inputs."""

    clip: Clip
    evidence: Evidence
    text: str  # the user turn's text part
    image: object | None  # PIL image of the spectrogram, or None
    source_id: str
    window: int = 0


class ALLMDetector(Detector):
    """An audio LLM that hears the clip, sees its spectrogram and answers label + rationale.

    A family (one subclass, one line in :data:`apallm.allm.registry.FAMILIES`) owns its settings:
    ``model_types`` (the checkpoint ``model_type`` values it loads), ``lora_targets`` (the regex of the modules
    LoRA adapts by default: the language model's attention and MLP projections, never a tower),
    ``towers`` (``{"audio": module name, "vision": module name or None}``, for ``train_audio_tower`` and
    ``train_vision_tower``), ``tower_lora_targets`` (``{"audio": regex}``: the tower modules LoRA adapts with
    ``lora_audio_tower``), ``projector_modules`` (modules that train in full with the adapter and are saved inside
    it, as PEFT's ``modules_to_save``, with ``train_projector``) and ``reusable_inputs`` (whether :meth:`encode`
    gives inputs that a generation and a scoring pass can both take, so GRPO need not encode a rollout twice).
    """

    family = "base"
    model_types: tuple[str, ...] = ()
    #: the decoder is ``model.layers`` in transformers up to 5.17 and ``model.language_model.layers`` later
    lora_targets = (r"(?:.*\.)?(?:language_model|model)\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)"
                    r"|mlp\.(gate_proj|up_proj|down_proj))")
    towers: dict[str, str | None] = {"audio": "audio_tower", "vision": None}
    tower_lora_targets: dict[str, str] = {}
    projector_modules: tuple[str, ...] = ()
    reusable_inputs = True

    def __init__(self, model, processor, *, options: PromptOptions | None = None,
                 evidence_config: EvidenceConfig | None = None, base_model: str | None = None,
                 label_words: Mapping[str, str] | None = None, max_new_tokens: int = 160, batch_size: int = 4,
                 window_s: float = ALLM_WINDOW_S, prompts: Mapping[str, str] | None = None, name: str | None = None,
                 cm_detectors: Sequence[str] = ()):
        self.model = model
        self.processor = processor
        self.options = options or PromptOptions()
        self.evidence_config = evidence_config or EvidenceConfig(spectrogram=self.default_spectrogram())
        self.base_model = base_model
        self.label_words = dict(label_words or LABEL_WORDS)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.window_s = window_s
        self.prompt_overrides = dict(prompts or {})
        self.prompts = prompt_texts(self.prompt_overrides)
        self.name = name or f"{self.family}:{base_model or 'model'}"
        #: detectors (:func:`apallm.detectors.load_detector` specs) whose P(spoof) the prompt shows when the
        #: ``cm_scores`` option is on and the caller gives none: a model trained on them carries them along
        self.cm_detectors = tuple(cm_detectors)
        self._cm_loaded: list | None = None
        self.label_token_ids = label_token_ids(self.tokenizer, self.label_words)
        self.tokenizer.padding_side = "left"  # the answer position is the last one in every row

    # ------------------------------------------------------------------ family hooks
    def default_spectrogram(self) -> SpectrogramConfig:
        return SpectrogramConfig()

    def conversation(self, sample: Sample, answer: str | None = None,
                     history: Sequence[tuple[str | None, str | None]] = ()) -> list[dict]:
        """The chat messages for one sample: the clip turn (audio, image, text), the ``history`` turns
        (see :func:`follow_ups`) and, for training, the ``answer``."""
        raise NotImplementedError

    def with_turns(self, conv: list[dict], history: Sequence[tuple[str | None, str | None]] = (),
                   answer: str | None = None) -> list[dict]:
        """``conv`` (system and clip turns) followed by the ``history`` turns and, for training, the answer."""
        conv = conv + follow_ups(history, self.prompts)
        if answer is not None:
            conv.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return conv

    def model_inputs(self, texts: list[str], samples: list[Sample]):
        """Rendered chat texts + the samples' audio/images -> a batch of model inputs (left-padded)."""
        raise NotImplementedError

    #: transformers classes of the family, loaded by name
    model_class: str = ""
    processor_class: str = ""

    @classmethod
    def load_model(cls, path: str, dtype, device_map=None, quantization_config=None):
        import transformers

        return getattr(transformers, cls.model_class).from_pretrained(
            path, dtype=dtype, device_map=device_map, quantization_config=quantization_config)

    @classmethod
    def load_processor(cls, path: str):
        import transformers

        return getattr(transformers, cls.processor_class).from_pretrained(path)

    @staticmethod
    def batch_images(samples: list[Sample]) -> list:
        """The samples' spectrogram images: all or none. A batch never mixes modalities: under ZeRO-3 a rank
        whose batch skipped a tower would wait forever for the others to gather its weights."""
        images = [s.image for s in samples if s.image is not None]
        if images and len(images) != len(samples):
            raise ValueError("a batch mixes samples with and without a spectrogram image")
        return images

    @classmethod
    def prepare_model(cls, model, processor):
        """Family-specific additions to a freshly loaded model (e.g. a spectrogram projector)."""
        return model

    @classmethod
    def load_extra(cls, model, directory: str | Path) -> None:
        """Load family-specific trained parts saved beside the adapter (e.g. a spectrogram projector)."""

    def save_extra(self, directory: str | Path) -> None:
        """Save family-specific trained parts beside the adapter."""

    @staticmethod
    @contextlib.contextmanager
    def published_layout(model):
        """Within it, the model has its published class's layout (family additions set aside), for saving."""
        yield model

    @staticmethod
    def trainable_extra(model) -> list:
        """Parameters outside the adapter that train with it (e.g. the spectrogram projector)."""
        return []

    # ------------------------------------------------------------------ common
    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def takes_cm_scores(self) -> bool:
        return self.options.cm_scores

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prepare(self, clips: Sequence[Clip], cm_scores: Sequence[Mapping[str, float]] | None = None
                ) -> list[list[Sample]]:
        """Windows of each clip with their evidence and prompt text."""
        if cm_scores is not None and len(cm_scores) != len(clips):
            raise ValueError("cm_scores needs one mapping per clip")
        if cm_scores is None and self.options.cm_scores and self.cm_detectors:
            cm_scores = self.auxiliary_scores(clips)
        out = []
        for i, clip in enumerate(clips):
            windows = split_windows(clip, window_s=self.window_s, policy="sliding")
            cm = cm_scores[i] if cm_scores is not None else None
            out.append([self.make_sample(win, cm, source_id=clip.id, window=w) for w, win in enumerate(windows)])
        return out

    def auxiliary_scores(self, clips: Sequence[Clip]) -> list[dict[str, float]]:
        """Each clip's P(spoof) by :attr:`cm_detectors` (loaded on first use), by detector name."""
        from apallm.detectors import load_detector

        if self._cm_loaded is None:
            self._cm_loaded = [load_detector(spec) for spec in self.cm_detectors]
        columns = {d.name: d.score(clips) for d in self._cm_loaded}
        return [{name: float(p[i]) for name, p in columns.items()} for i in range(len(clips))]

    def make_sample(self, clip: Clip, cm_scores: Mapping[str, float] | None = None, source_id: str | None = None,
                    window: int = 0) -> Sample:
        """Evidence, prompt text and image for one window (at most ``window_s`` long)."""
        config = self.evidence_config
        if not self.options.spectrogram and config.render_image:
            config = EvidenceConfig(spectrogram=config.spectrogram, render_image=False)
        ev = extract_evidence(clip, config)
        text = user_text(ev, self.options, cm_scores, self.prompts)
        image = ev.spectrogram.image.convert("RGB") if self.options.spectrogram else None
        return Sample(clip=clip, evidence=ev, text=text, image=image, source_id=source_id or clip.id, window=window)

    def render(self, sample: Sample, answer: str | None = None, history=()) -> str:
        conv = self.conversation(sample, answer=answer, history=history)
        return self.processor.apply_chat_template(conv, add_generation_prompt=answer is None, tokenize=False)

    def encode(self, samples: list[Sample], texts: list[str] | None = None):
        """Inference inputs on the model's device (prompts rendered with the generation prompt by default)."""
        texts = texts if texts is not None else [self.render(s) for s in samples]
        return self.model_inputs(texts, samples).to(self.device)

    @torch.inference_mode()
    def score_samples(self, samples: list[Sample]) -> np.ndarray:
        """P(spoof) of each sample: softmax over the two label-token logits at the answer position."""
        self.model.eval()
        out = []
        for start in range(0, len(samples), self.batch_size):
            batch = self.encode(samples[start:start + self.batch_size])
            logits = self.model(**batch, use_cache=False).logits[:, -1, :]
            out.append(self._label_probability(logits))
        return np.concatenate(out) if out else np.zeros(0)

    def _label_probability(self, logits: torch.Tensor) -> np.ndarray:
        pair = logits[:, [self.label_token_ids["bonafide"], self.label_token_ids["spoof"]]].float()
        return torch.softmax(pair, dim=-1)[:, 1].cpu().numpy()

    def score(self, clips: Sequence[Clip], cm_scores: Sequence[Mapping[str, float]] | None = None) -> np.ndarray:
        prepared = self.prepare(as_clips(clips), cm_scores)
        flat = [s for samples in prepared for s in samples]
        probs = self.score_samples(flat)
        scores, k = [], 0
        for samples in prepared:
            scores.append(float(np.max(probs[k:k + len(samples)])))
            k += len(samples)
        return np.asarray(scores, dtype=np.float64)

    def explain(self, clips, include_evidence: bool = True, cm_scores=None) -> list[Verdict]:
        """As :meth:`Detector.explain`, but an ALLM's verdicts keep the evidence and its raw answer by default."""
        return super().explain(clips, include_evidence=include_evidence, cm_scores=cm_scores)

    @torch.inference_mode()
    def explain_speech(self, clips: Sequence[Clip], include_evidence: bool = True,
                       cm_scores: Sequence[Mapping[str, float]] | None = None) -> list[Verdict]:
        prepared = self.prepare(clips, cm_scores)
        chosen = []
        for samples in prepared:
            if len(samples) == 1:
                chosen.append(samples[0])
            else:  # explain the most suspicious window
                chosen.append(samples[int(np.argmax(self.score_samples(samples)))])
        verdicts = []
        self.model.eval()
        for start in range(0, len(chosen), self.batch_size):
            part = chosen[start:start + self.batch_size]
            batch = self.encode(part)
            gen = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      output_scores=True, return_dict_in_generate=True,
                                      pad_token_id=self.tokenizer.pad_token_id)
            probs = self._label_probability(gen.scores[0])
            texts = self.tokenizer.batch_decode(gen.sequences[:, batch["input_ids"].shape[1]:],
                                                skip_special_tokens=True)
            for sample, text, p in zip(part, texts, probs, strict=True):
                verdicts.append(self._verdict(sample, text, float(p), include_evidence))
        return verdicts

    def _verdict(self, sample: Sample, text: str, p_spoof: float, include_evidence: bool) -> Verdict:
        parsed = parse_answer(text)
        label = parsed.label or ("spoof" if p_spoof >= 0.5 else "bonafide")
        offset = sample.clip.offset_s
        regions = [(s + offset, e + offset) for s, e in parsed.regions]
        evidence = sample.evidence.to_dict() if include_evidence else None
        if evidence is not None:
            evidence["answer"] = {"text": text, "parse": parsed.status, "problems": parsed.problems}
        return Verdict(label=label, score=p_spoof, rationale=Rationale(parsed.frequency, parsed.time),
                       evidence=evidence, regions=regions, system=parsed.system, detector=self.name,
                       id=sample.source_id)

    def stream(self, clip: Clip, question: str | None = None, history: Sequence[tuple[str | None, str]] = (),
               cm_scores: Mapping[str, float] | None = None, max_new_tokens: int | None = None) -> Iterator[str]:
        """Stream an answer token by token. Without ``question`` it is the verdict; with one, a follow-up
        after ``history`` (earlier (question, answer) turns; the first question is None: the clip turn)."""
        from transformers import TextIteratorStreamer

        samples = self.prepare([clip], [cm_scores] if cm_scores is not None else None)[0]
        sample = samples[0] if len(samples) == 1 else samples[int(np.argmax(self.score_samples(samples)))]
        history = list(history)
        if question is not None:
            history.append((question, None))
        conv = self.conversation(sample, history=history)
        text = self.processor.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
        batch = self.encode([sample], [text])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(**batch, streamer=streamer, do_sample=False, pad_token_id=self.tokenizer.pad_token_id,
                      max_new_tokens=max_new_tokens or self.max_new_tokens)
        errors: list[BaseException] = []

        def run():
            try:
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as exc:  # surfaced to the caller below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        yield from streamer
        thread.join()
        if errors:
            raise errors[0]

    # ------------------------------------------------------------------ training inputs
    def training_batch(self, samples: list[Sample], answers: list[str], max_length: int | None = None):
        """Model inputs with ``labels``: only the assistant answer (and its end-of-turn token) carries loss;
        the prompt, the expanded audio and image placeholders and the padding are masked.

        Sequences are never cut inside an audio or image span: when ``max_length`` is exceeded the answer is
        shortened (at least its label token is kept), and a prompt that alone exceeds it is an error.
        """
        texts = [self.render(s, answer=a) for s, a in zip(samples, answers, strict=True)]
        batch = self.model_inputs(texts, samples)
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = IGNORE_INDEX
        marker = self.tokenizer(self.assistant_marker(), add_special_tokens=False)["input_ids"]
        for row in range(labels.shape[0]):
            start = _find_last(batch["input_ids"][row].tolist(), marker)
            if start is None:
                raise ValueError("the rendered conversation has no assistant turn marker")
            labels[row, : start + len(marker)] = IGNORE_INDEX
        batch["labels"] = labels
        if max_length is not None and batch["input_ids"].shape[1] > max_length:
            batch = _truncate_answers(batch, max_length)
        return batch

    def assistant_marker(self) -> str:
        return "<|im_start|>assistant\n"

    # ------------------------------------------------------------------ persistence
    def config_dict(self) -> dict:
        spec = self.evidence_config.spectrogram
        return {
            "apallm_version": __version__,
            "family": self.family,
            "base_model": self.base_model,
            "options": self.options.to_dict(),
            "spectrogram": {"kind": spec.kind, "width": spec.width, "height": spec.height,
                            "db_min": spec.db_min, "db_max": spec.db_max},
            "label_words": self.label_words,
            "max_new_tokens": self.max_new_tokens,
            "window_s": self.window_s,
            "prompts": self.prompt_overrides,
            "cm_detectors": list(self.cm_detectors),
        }

    def save_config(self, directory: str | Path, **extra) -> Path:
        path = Path(directory) / CONFIG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**self.config_dict(), **extra}, indent=2) + "\n", encoding="utf-8")
        return path


def follow_ups(history: Sequence[tuple[str | None, str | None]], texts: Mapping[str, str]) -> list[dict]:
    """Chat turns after the clip turn. ``history`` holds (question, answer) pairs: a None question is the
    answer to the clip turn itself; a None answer is a question still to be answered (the last pair)."""
    turns = []
    for i, (question, answer) in enumerate(history):
        if question is None and i > 0:
            raise ValueError("only the first history entry may answer the clip turn (question None)")
        if answer is None and i < len(history) - 1:
            raise ValueError("only the last history entry may be an unanswered question")
        if question is not None:
            text = texts["follow_up"].format(question=question)
            turns.append({"role": "user", "content": [{"type": "text", "text": text}]})
        if answer is not None:
            turns.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return turns


def label_token_ids(tokenizer, label_words: Mapping[str, str]) -> dict[str, int]:
    """First token of each label word as written at the start of the answer; they must differ."""
    ids = {}
    for label in LABELS:
        tokens = tokenizer(label_words[label], add_special_tokens=False)["input_ids"]
        if not tokens:
            raise ValueError(f"label word {label_words[label]!r} tokenizes to nothing")
        ids[label] = int(tokens[0])
    if ids["bonafide"] == ids["spoof"]:
        raise ValueError(
            f"label words {label_words['bonafide']!r} and {label_words['spoof']!r} share their first token "
            f"({ids['spoof']}) in this tokenizer: the score could not tell them apart; choose other label words")
    return ids


def _find_last(seq: list[int], sub: list[int]) -> int | None:
    n = len(sub)
    for i in range(len(seq) - n, -1, -1):
        if seq[i:i + n] == sub:
            return i
    return None


def _truncate_answers(batch, max_length: int):
    """Drop answer tokens from the end until every row fits; left padding keeps rows right-aligned."""
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    excess = ids.shape[1] - max_length
    for row in range(ids.shape[0]):
        answer = (labels[row] != IGNORE_INDEX).nonzero().flatten()
        real = int(mask[row].sum())
        cut = max(0, real - max_length)
        if cut == 0:
            continue
        if len(answer) - cut < 1:
            raise ValueError(f"a prompt of {real - len(answer)} tokens (audio and image placeholders included) "
                             f"does not fit max_length={max_length}; raise it or shorten the audio window")
        # remove the last `cut` answer tokens of this row and shift the row right (left padding)
        keep = torch.ones(ids.shape[1], dtype=torch.bool)
        keep[answer[-cut:]] = False
        for key, pad in (("input_ids", 0), ("attention_mask", 0), ("labels", IGNORE_INDEX)):
            kept = batch[key][row][keep]
            batch[key][row] = torch.cat([torch.full((cut,), pad, dtype=kept.dtype), kept])
    for key in ("input_ids", "attention_mask", "labels"):
        batch[key] = batch[key][:, excess:]
    return batch


def load_config(directory: str | Path) -> dict:
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no {CONFIG_NAME}: not an apallm ALLM folder")
    return json.loads(path.read_text(encoding="utf-8"))

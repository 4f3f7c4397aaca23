"""Qwen2.5-Omni thinker: hears the audio and sees the spectrogram image natively, in the same user turn,
through its own processor (Whisper features for audio, Qwen2-VL patches for the image)."""

from __future__ import annotations

from collections.abc import Sequence

from .base import ALLMDetector, Sample, follow_ups
from .registry import register_family


@register_family("qwen2_5_omni", model_types=("qwen2_5_omni", "qwen2_5_omni_thinker"))
class QwenOmniDetector(ALLMDetector):
    family = "qwen2_5_omni"

    @classmethod
    def load_model(cls, path: str, dtype, device_map=None, quantization_config=None):
        from transformers import Qwen2_5OmniThinkerForConditionalGeneration

        return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
            path, dtype=dtype, device_map=device_map, quantization_config=quantization_config)

    @classmethod
    def load_processor(cls, path: str):
        from transformers import Qwen2_5OmniProcessor

        return Qwen2_5OmniProcessor.from_pretrained(path)

    def conversation(self, sample: Sample, answer: str | None = None,
                     history: Sequence[tuple[str, str | None]] = ()) -> list[dict]:
        content = [{"type": "audio", "audio": sample.clip.waveform}]
        if sample.image is not None:
            content.append({"type": "image", "image": sample.image})
        content.append({"type": "text", "text": sample.text})
        conv = [{"role": "system", "content": [{"type": "text", "text": self.prompts["system"]}]},
                {"role": "user", "content": content}]
        conv.extend(follow_ups(history, self.prompts))
        if answer is not None:
            conv.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return conv

    def model_inputs(self, texts: list[str], samples: list[Sample]):
        images = [s.image for s in samples if s.image is not None]
        if images and len(images) != len(samples):
            # every sample of a batch carries the same modalities: otherwise ZeRO-3 ranks run different
            # submodules and wait on each other forever
            raise ValueError("a batch mixes samples with and without a spectrogram image")
        return self.processor(text=texts, audio=[s.clip.waveform for s in samples], images=images or None,
                              return_tensors="pt", padding=True)

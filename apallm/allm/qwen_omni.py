"""Qwen2.5-Omni thinker: hears the audio and sees the spectrogram image natively, in the same user turn,
through its own processor (Whisper features for audio, Qwen2-VL patches for the image)."""

from __future__ import annotations

from collections.abc import Sequence

from .base import ALLMDetector, Sample

PAD_MARGIN = 8000  # 0.5 s at 16 kHz


class QwenOmniDetector(ALLMDetector):
    family = "qwen2_5_omni"
    model_types = ("qwen2_5_omni", "qwen2_5_omni_thinker")
    towers = {"audio": "audio_tower", "vision": "visual"}
    model_class = "Qwen2_5OmniThinkerForConditionalGeneration"
    processor_class = "Qwen2_5OmniProcessor"

    @classmethod
    def load_model(cls, path: str, dtype, device_map=None, quantization_config=None):
        """The thinker only. A published Qwen2.5-Omni checkpoint holds thinker, talker and token2wav: its
        ``thinker_config`` builds the thinker and transformers maps the ``thinker.*`` weights onto it, so the
        speech-output parts are never loaded."""
        from transformers import AutoConfig, Qwen2_5OmniThinkerForConditionalGeneration

        config = AutoConfig.from_pretrained(path)
        if config.model_type == "qwen2_5_omni":
            config = config.thinker_config
        return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
            path, config=config, dtype=dtype, device_map=device_map, quantization_config=quantization_config)

    def conversation(self, sample: Sample, answer: str | None = None,
                     history: Sequence[tuple[str | None, str | None]] = ()) -> list[dict]:
        content = [{"type": "audio", "audio": sample.clip.waveform}]
        if sample.image is not None:
            content.append({"type": "image", "image": sample.image})
        content.append({"type": "text", "text": sample.text})
        conv = [{"role": "system", "content": [{"type": "text", "text": self.prompts["system"]}]},
                {"role": "user", "content": content}]
        return self.with_turns(conv, history, answer)

    def model_inputs(self, texts: list[str], samples: list[Sample]):
        images = self.batch_images(samples)
        audio = [s.clip.waveform for s in samples]
        # The processor pads every clip's features to 30 s. Omni's audio encoder reads only the valid frames,
        # so pad to the longest clip plus a margin of silence: the valid frames come out bit for bit the same
        # (the margin keeps the STFT at each clip's end seeing zeros, as with full padding) for far less work.
        limit = self.processor.feature_extractor.n_samples
        max_length = min(limit, max(len(a) for a in audio) + PAD_MARGIN)
        return self.processor(text=texts, audio=audio, images=images or None, return_tensors="pt", padding=True,
                              audio_kwargs={"max_length": max_length})

"""Audio LLM detectors: Qwen2.5-Omni (audio + image natively) first; other families as one module each."""

from .base import ALLMDetector, Sample, label_token_ids
from .prompting import PromptOptions, default_target, user_text
from .registry import TINY_MODELS, detect_family, families, family_class, load_allm, register_family

__all__ = ["ALLMDetector", "PromptOptions", "Sample", "TINY_MODELS", "default_target", "detect_family",
           "families", "family_class", "label_token_ids", "load_allm", "register_family", "user_text"]

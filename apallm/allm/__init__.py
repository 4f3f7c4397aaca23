"""Audio LLM detectors: Qwen2.5-Omni (audio + image natively) first; other families as one module each."""

from apallm._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "ALLMDetector": ".base", "Sample": ".base", "label_token_ids": ".base",
    "PromptOptions": ".prompting", "default_target": ".prompting", "user_text": ".prompting",
    "TINY_MODELS": ".registry", "detect_family": ".registry", "families": ".registry",
    "family_class": ".registry", "load_allm": ".registry", "FAMILIES": ".registry", "merge_adapter": ".merge",
})

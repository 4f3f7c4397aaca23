"""Prompt and rationale templates, shipped as data files (installed as ``apallm.prompts``)."""

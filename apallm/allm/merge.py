"""Merging a fine-tuned adapter into its base model: a standalone model folder that ``load_allm`` loads like a
checkpoint (``apallm adapter merge``)."""

from __future__ import annotations

from pathlib import Path


def merge_adapter(adapter: str | Path, output: str | Path, model: str | None = None) -> Path:
    """Load the base model (``model``, else the one the adapter folder records) with the adapter, fold the adapter's
    weights into the base, and write the merged model to ``output`` with the family's extra parts (a projector),
    the processor and ``apallm.json``; returns ``output``. Every family goes through its own hooks:
    ``save_extra`` and ``published_layout`` (Qwen2-Audio saves its spectrogram projector apart), and a composite
    model writes its changed language model in full and its other parts by reference."""
    from .registry import load_allm

    detector = load_allm(model, adapter=adapter, device="cpu")
    merged = detector.model.merge_and_unload()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    detector.save_extra(out)
    with detector.published_layout(merged) as plain:
        plain.save_pretrained(str(out), safe_serialization=True)
    detector.processor.save_pretrained(str(out))
    detector.save_config(out, merged_from=str(Path(adapter).resolve()))
    return out

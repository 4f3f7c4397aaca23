"""LoRA SFT at the real Qwen2.5-Omni-3B size, offline: random weights, no checkpoint, no dataset files.

    python eval/bench_sft_realsize.py --tiny                                                # CPU, seconds
    python eval/bench_sft_realsize.py --batch-size 2 --warmup 3 --steps 8 --out sft.json   # one GPU

Builds a Qwen2.5-Omni *thinker* (audio encoder, vision encoder, language model) with the published 3B
dimensions (``QWEN25_OMNI_3B_THINKER``) and random weights, in bf16, directly on the GPU. The tokenizer and
processor are the offline byte-level ones of :mod:`apallm.allm.tiny`, with Whisper's 128 mel bins and the
published image-size limit, so the audio and image token counts are the real ones (the text, read byte by byte,
takes about four times the tokens of Qwen's BPE). ``--tiny`` builds tiny.py's thinker instead, on the CPU.

The training goes through the package's own SFT path, as ``apallm train sft`` runs it: the run config is
``configs/sft/qwen2.5-omni-3b-lora.yaml`` (LoRA settings, prompt options, spectrogram, max_length, window
policy, training keys) without DeepSpeed and evaluation, with the batch size and step count of the command line;
``apallm.training.sft.build_trainer`` makes the detector, applies PEFT, builds the TrainingArguments (bf16 on
GPU, gradient checkpointing), the SFTDataset over a manifest and the SFTCollator, and the transformers Trainer
trains. Only the model loading is replaced (``load_allm`` cannot load a checkpoint that is not there). The clips
come from :func:`apallm.synth.make_toy_set` (speech-like, half band-limited), written to a temporary folder;
their answers are the package's default targets, built from each clip's evidence.

Reported as one JSON line on stdout (and in ``--out``): parameter counts (total, trainable, by part), the median
seconds per optimizer step after the warm-up steps (forward, backward and optimizer, CUDA-synchronised; also the
wall time from one step's end to the next, which adds the data loading and collation of the main process),
samples/s and tokens/s, the peak GPU memory (torch.cuda.max_memory_allocated) and whether every logged loss and
gradient norm is finite (exit status 1 when one is not). Progress goes to stderr.

Outside an install (the repository on PYTHONPATH) it maps ``prompts/`` as ``apallm.prompts`` itself. Its imports
need, beyond torch, transformers, peft and accelerate: librosa (with numba, llvmlite, joblib, msgpack,
lazy_loader, audioread, decorator, pooch, platformdirs), soundfile (cffi), soxr, scipy, matplotlib, pillow,
pyyaml and torchvision (the Qwen2.5-Omni processor's video processor); and the package's LM-only LoRA targets
(``model.language_model.layers.N``) need a transformers whose thinker names its layers so (5.24.0 does, 5.17.0
does not).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "sft" / "qwen2.5-omni-3b-lora.yaml"
MODEL_NAME = "random-qwen2.5-omni-3b"

# Qwen/Qwen2.5-Omni-3B, config.json -> thinker_config (https://huggingface.co/Qwen/Qwen2.5-Omni-3B), as far as it
# could be checked offline: the text model is Qwen2.5-3B's (2048 hidden, 36 layers, 16 query / 2 key-value
# heads, 11008 MLP, rope theta 1e6, M-RoPE sections 16/24/24), recorded from that config.json in a public port;
# the vision encoder is Qwen2.5-VL's ViT (32 blocks of 1280, 3420 MLP) projecting to 2048, as in
# Qwen2.5-VL-3B's config; the audio encoder is Whisper-large-v3's (transformers' Qwen2_5OmniAudioEncoderConfig
# defaults, 128 mel bins) projecting to 2048; the lm_head is untied (Qwen2_5OmniThinkerConfig's default). Not
# transformers' Qwen2_5OmniThinkerConfig defaults: those are the 7B's (3584 hidden, 28 layers). The vocabulary
# is the published one; the byte-level tokenizer uses only its first few hundred ids (--tokenizer-vocab: just
# those). Built, this is a thinker of 4.70 B parameters (LM 3.09 B with embeddings, lm_head 0.31 B, audio 0.64 B,
# vision 0.67 B).
QWEN25_OMNI_3B_THINKER = {
    "text_config": {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
                    "num_attention_heads": 16, "num_key_value_heads": 2, "hidden_act": "silu",
                    "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "use_sliding_window": False,
                    "tie_word_embeddings": False,
                    "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "default", "type": "default",
                                     "rope_theta": 1000000.0}},
    "audio_config": {"d_model": 1280, "encoder_attention_heads": 20, "encoder_ffn_dim": 5120, "encoder_layers": 32,
                     "num_mel_bins": 128, "max_source_positions": 1500, "n_window": 100, "output_dim": 2048},
    "vision_config": {"depth": 32, "embed_dim": 1280, "hidden_size": 1280, "hidden_act": "silu",
                      "intermediate_size": 3420, "num_heads": 16, "in_channels": 3, "patch_size": 14,
                      "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
                      "fullatt_block_indexes": [7, 15, 23, 31], "out_hidden_size": 2048},
    "tie_word_embeddings": False,
}
#: the published processor's settings (preprocessor_config.json): 128 mel bins, images up to 12845056 pixels
REAL_MEL_BINS = 128
REAL_IMAGE_MAX_PIXELS = 12845056
#: the special-token ids tiny.py's config picks from the tokenizer; the real-size config takes the same ones
TOKEN_ID_KEYS = ("audio_token_index", "image_token_index", "video_token_index", "audio_start_token_id",
                 "audio_end_token_id", "vision_start_token_id", "vision_end_token_id", "user_token_id")


def log(message: str) -> None:
    print(f"[bench_sft_realsize] {message}", file=sys.stderr, flush=True)


def map_prompts_package() -> None:
    """``apallm.prompts`` is the repository's ``prompts/`` folder, mapped there by the installed package; with
    the repository on PYTHONPATH and no install (the GPU machine), map it here."""
    try:
        found = importlib.util.find_spec("apallm.prompts") is not None
    except ModuleNotFoundError:
        found = False
    if found:
        return
    folder = ROOT / "prompts"
    spec = importlib.util.spec_from_file_location("apallm.prompts", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["apallm.prompts"] = module
    spec.loader.exec_module(module)


# ---------------------------------------------------------------------------------------------- the model
def omni_processor(tiny: bool):
    """tiny.py's offline processor; at real size with the published mel bins and image limit."""
    from transformers import WhisperFeatureExtractor

    from apallm.allm.tiny import tiny_omni_processor

    if tiny:
        return tiny_omni_processor()
    processor = tiny_omni_processor(image_max_pixels=REAL_IMAGE_MAX_PIXELS)
    processor.feature_extractor = WhisperFeatureExtractor(feature_size=REAL_MEL_BINS, sampling_rate=16000)
    return processor


def thinker_config(tokenizer, tiny: bool, tokenizer_vocab: bool = False):
    """tiny.py's config (``tiny``), or the 3B dimensions with the special-token ids tiny.py's config picks."""
    from transformers import Qwen2_5OmniThinkerConfig

    from apallm.allm.tiny import tiny_omni_config

    tiny_config = tiny_omni_config(tokenizer)
    if tiny:
        return tiny_config
    dims = json.loads(json.dumps(QWEN25_OMNI_3B_THINKER))
    if tokenizer_vocab:
        dims["text_config"]["vocab_size"] = len(tokenizer)
    if dims["text_config"]["vocab_size"] < len(tokenizer):
        raise ValueError(f"vocab_size {dims['text_config']['vocab_size']} < tokenizer size {len(tokenizer)}")
    return Qwen2_5OmniThinkerConfig(**dims, **{key: getattr(tiny_config, key) for key in TOKEN_ID_KEYS})


def build_thinker(config, processor, device: torch.device, dtype: torch.dtype, seed: int):
    """Random weights, allocated and initialised on ``device`` in ``dtype`` (no CPU copy of the weights)."""
    import torch
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2_5OmniThinkerForConditionalGeneration._from_config(config, dtype=dtype,
                                                                        attn_implementation="sdpa")
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    return model.eval()


def random_allm_loader(args, target: torch.device, dtype: torch.dtype, timings: dict):
    """A stand-in for :func:`apallm.allm.load_allm` as ``build_trainer`` calls it: the same family class,
    ``prepare_model`` and detector construction, around a random thinker instead of a checkpoint."""

    def load(model, *, family=None, options=None, quantization=None, device=None, **kwargs):
        import torch

        from apallm.allm import family_class

        if quantization is not None:
            raise ValueError("the benchmark trains in bf16/fp32, not quantized")
        t0 = time.perf_counter()
        processor = omni_processor(args.tiny)
        config = thinker_config(processor.tokenizer, args.tiny, args.tokenizer_vocab)
        net = build_thinker(config, processor, target, dtype, args.seed)
        if target.type == "cuda":
            torch.cuda.synchronize()
        timings["build_s"] = time.perf_counter() - t0
        cls = family_class(family or "qwen2_5_omni")
        net = cls.prepare_model(net, processor)
        return cls(net, processor, options=options, base_model=model, **kwargs)

    return load


# ---------------------------------------------------------------------------------------------- measuring
def step_timer(device: torch.device):
    """A TrainerCallback: per optimizer step, the compute time (step begin to step end, CUDA-synchronised), the
    wall time since the previous step's end (adds data loading and collation), the logged loss and grad norm."""
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.compute, self.wall, self.losses, self.grad_norms = [], [], [], []
            self._begin = self._last_end = None

        @staticmethod
        def _now() -> float:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter()

        def on_train_begin(self, args, state, control, **kwargs):
            self._last_end = self._now()

        def on_step_begin(self, args, state, control, **kwargs):
            self._begin = self._now()

        def on_step_end(self, args, state, control, **kwargs):
            end = self._now()
            self.compute.append(end - self._begin)
            self.wall.append(end - self._last_end)
            self._last_end = end
            log(f"step {state.global_step}: {self.compute[-1]:.3f} s compute, {self.wall[-1]:.3f} s wall")

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" in logs:
                self.losses.append(float(logs["loss"]))
                log(f"step {state.global_step}: loss {self.losses[-1]:.4f}, grad_norm {logs.get('grad_norm')}")
            if logs.get("grad_norm") is not None:
                self.grad_norms.append(float(logs["grad_norm"]))

    return StepTimer()


class CountingCollator:
    """Wraps the SFT collator unchanged; records each batch's padded length, real tokens and answer tokens."""

    def __init__(self, collator):
        from apallm.allm.base import IGNORE_INDEX

        self.collator = collator
        self.ignore_index = IGNORE_INDEX
        self.batches: list[dict] = []

    def __call__(self, items):
        batch = self.collator(items)
        self.batches.append({"seq_len": int(batch["input_ids"].shape[1]),
                             "tokens": int(batch["attention_mask"].sum()),
                             "answer_tokens": int((batch["labels"] != self.ignore_index).sum())})
        return batch


def parameter_counts(model) -> dict:
    parts = {"language_model": 0, "lm_head": 0, "audio_tower": 0, "visual": 0, "lora": 0, "other": 0}
    total = trainable = 0
    for name, param in model.named_parameters():
        n = param.numel()
        total += n
        trainable += n if param.requires_grad else 0
        dotted = f".{name}"
        if "lora_" in name:
            parts["lora"] += n
        elif ".audio_tower." in dotted:
            parts["audio_tower"] += n
        elif ".visual." in dotted:
            parts["visual"] += n
        elif ".lm_head." in dotted:
            parts["lm_head"] += n
        elif ".language_model." in dotted or ".model.layers." in dotted or ".embed_tokens." in dotted \
                or ".model.norm." in dotted:
            parts["language_model"] += n
        else:
            parts["other"] += n
    return {"params_total": total, "params_trainable": trainable, "params_base": total - parts["lora"],
            "params_trainable_pct": round(100.0 * trainable / total, 4), "params_by_part": parts}


def gib(n_bytes: float) -> float:
    return round(n_bytes / 2**30, 3)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("transformers", "peft", "accelerate", "huggingface_hub", "torchvision", "numpy",
                 "librosa", "numba"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


# ---------------------------------------------------------------------------------------------- the run
def run_config(args, folder: Path, manifest: Path):
    """The 3B run config, with the benchmark's batch, steps and logging; no DeepSpeed, saving or evaluation."""

    from apallm.training.sft import SFTConfig

    overrides = {"model": MODEL_NAME, "family": "qwen2_5_omni", "train_manifest": str(manifest),
                 "eval_manifest": None, "output_dir": str(folder / "run"), "deepspeed": None, "seed": args.seed}
    cfg = SFTConfig.from_yaml(args.config, overrides)
    for key in ("save_steps", "eval_steps", "num_train_epochs"):
        cfg.training.pop(key, None)
    cfg.training.update({
        "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": args.grad_accum,
        "max_steps": args.warmup + args.steps,
        "logging_steps": 1,
        "logging_nan_inf_filter": False,  # log every step's real loss, NaN included
        "save_strategy": "no",
        "eval_strategy": "no",
        "gradient_checkpointing": True,
        "dataloader_num_workers": args.workers,
        "report_to": [],
    })
    adjusted = []
    if args.tiny:  # the tiny processor caps images at 224 x 224 pixels
        from dataclasses import replace

        from apallm.evidence import SpectrogramConfig

        cfg.spectrogram = replace(cfg.spectrogram or SpectrogramConfig(), width=224, height=224)
        adjusted.append("spectrogram 224 x 224 (tiny processor)")
    return cfg, adjusted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny.py's thinker on the CPU (a quick check)")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    ap.add_argument("--warmup", type=int, default=3, help="steps run before the timed ones")
    ap.add_argument("--steps", type=int, default=8, help="timed optimizer steps")
    ap.add_argument("--clips", type=int, default=16, help="generated clips (the Trainer cycles through them)")
    ap.add_argument("--seconds", type=float, default=4.0, help="length of each generated clip (at most 30)")
    ap.add_argument("--workers", type=int, default=0, help="dataloader workers (the recipe's default is 0)")
    ap.add_argument("--config", default=str(CONFIG), help="the SFT run config whose settings are used")
    ap.add_argument("--tokenizer-vocab", action="store_true",
                    help="vocab_size = the byte-level tokenizer's size instead of the published 151936")
    ap.add_argument("--device", default="auto", help="auto: the CPU with --tiny, else CUDA (required)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default 1 with --tiny: its tiny matrices only pay for thread syncs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the JSON line to this path")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1 or args.grad_accum < 1:
        ap.error("--steps, --batch-size and --grad-accum must be at least 1, --warmup at least 0")
    if not 0 < args.seconds <= 30:
        ap.error("--seconds must be in (0, 30]: one ALLM window")

    t_start = time.perf_counter()
    on_cpu = args.device == "cpu" or (args.device == "auto" and args.tiny)
    if on_cpu:  # the recipe picks bf16 and the GPU whenever CUDA is visible: hide it before torch looks
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch

    threads = args.threads or (1 if args.tiny else None)
    if threads:
        torch.set_num_threads(threads)
    if on_cpu:
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        ap.error("no CUDA device: the real-size run needs a GPU (use --tiny, or --device cpu to insist)")
    else:
        device = torch.device(args.device if args.device != "auto" else "cuda")
        if device.type != "cuda":
            ap.error(f"unsupported --device {args.device}: use auto, cpu or cuda[:N]")
        device = torch.device("cuda", device.index if device.index is not None else torch.cuda.current_device())
        torch.cuda.set_device(device)
        torch.cuda.reset_peak_memory_stats(device)
    # the package's recipe: bf16 on GPU, fp32 on the CPU
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32

    map_prompts_package()
    from apallm.synth import make_toy_set
    from apallm.training import sft

    timings: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench_sft_") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        manifest = make_toy_set(folder / "clips", n=args.clips, seed=args.seed, seconds=args.seconds,
                                targets=False)
        timings["clips_s"] = time.perf_counter() - t0
        cfg, adjusted = run_config(args, folder, manifest)
        for note in adjusted:
            log(f"config adjusted: {note}")
        loader = random_allm_loader(args, device, dtype, timings)
        with mock.patch.object(sft, "load_allm", loader):
            detector, trainer = sft.build_trainer(cfg)
        gpu_after_build = torch.cuda.memory_allocated(device) if device.type == "cuda" else None
        counts = parameter_counts(detector.model)
        log(f"model built in {timings['build_s']:.1f} s on {device} ({dtype}): {counts['params_total']:,} "
            f"parameters, {counts['params_trainable']:,} trainable")

        from transformers import PrinterCallback, ProgressCallback

        trainer.remove_callback(ProgressCallback)  # progress goes to stderr; stdout holds the JSON line only
        trainer.remove_callback(PrinterCallback)
        timer = step_timer(device)
        trainer.add_callback(timer)
        counter = CountingCollator(trainer.data_collator)
        trainer.data_collator = counter
        t0 = time.perf_counter()
        trainer.train()
        timings["train_s"] = time.perf_counter() - t0

    timed = slice(args.warmup, None)
    step_s = statistics.median(timer.compute[timed])
    wall_s = statistics.median(timer.wall[timed])
    per_step = args.batch_size * args.grad_accum
    timed_batches = counter.batches[args.warmup * args.grad_accum:]
    tokens_per_step = statistics.mean(b["tokens"] for b in timed_batches) * args.grad_accum
    finite = (len(timer.losses) == len(timer.compute)
              and all(math.isfinite(x) for x in timer.losses + timer.grad_norms))
    text = detector.model.config.get_text_config()
    result = {
        "bench": "sft_realsize",
        "mode": "tiny" if args.tiny else "real",
        "model": "tiny-qwen2_5-omni thinker" if args.tiny else "Qwen2.5-Omni-3B thinker dims, random weights",
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"),
        "dtype": str(dtype).replace("torch.", ""),
        "versions": versions(),
        "dims": {"hidden_size": text.hidden_size, "layers": text.num_hidden_layers, "vocab_size": text.vocab_size},
        **counts,
        "config": os.path.relpath(Path(args.config).resolve(), ROOT),
        "config_adjustments": adjusted,
        "lora": {"method": cfg.peft.method, "r": cfg.peft.r, "alpha": cfg.peft.alpha, "dropout": cfg.peft.dropout},
        "gradient_checkpointing": bool(trainer.args.gradient_checkpointing),
        "bf16": bool(trainer.args.bf16),
        "batch_size": args.batch_size,
        "grad_accum": args.grad_accum,
        "warmup_steps": args.warmup,
        "timed_steps": len(timer.compute[timed]),
        "clip_seconds": args.seconds,
        "step_s_median": round(step_s, 4),
        "step_s": [round(x, 4) for x in timer.compute],
        "wall_step_s_median": round(wall_s, 4),
        "samples_per_s": round(per_step / step_s, 3),
        "samples_per_s_wall": round(per_step / wall_s, 3),
        "seq_len_mean": round(statistics.mean(b["seq_len"] for b in counter.batches), 1),
        "tokens_per_step": round(tokens_per_step, 1),
        "tokens_per_s": round(tokens_per_step / step_s, 1),
        "answer_tokens_per_sample": round(statistics.mean(b["answer_tokens"] for b in counter.batches)
                                          / args.batch_size, 1),
        "peak_gpu_mem_gib": gib(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None,
        "peak_gpu_reserved_gib": gib(torch.cuda.max_memory_reserved(device)) if device.type == "cuda" else None,
        "gpu_mem_after_build_gib": gib(gpu_after_build) if gpu_after_build is not None else None,
        "peak_rss_gib": gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
        "loss_first": timer.losses[0] if timer.losses else None,
        "loss_last": timer.losses[-1] if timer.losses else None,
        "losses": [round(x, 4) for x in timer.losses],
        "loss_finite": finite,
        "build_s": round(timings["build_s"], 2),
        "clips_s": round(timings["clips_s"], 2),
        "train_s": round(timings["train_s"], 2),
        "total_s": round(time.perf_counter() - t_start, 2),
    }
    line = json.dumps(result)
    print(line, flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(line + "\n", encoding="utf-8")
    return 0 if finite else 1


if __name__ == "__main__":
    sys.exit(main())

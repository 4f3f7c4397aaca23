"""ALLM inference and SFT throughput.

    python eval/bench_allm.py                                   # tiny Qwen2.5-Omni on CPU (offline)
    python eval/bench_allm.py --model Qwen/Qwen2.5-Omni-3B --clips 64 --batch-size 16 --sft-steps 20   # GPU

Measures, in one process on the same model and clips:
- batched score-only inference (one forward pass per batch, label logits, no generation), clips/s;
- a naive loop that generates an answer for one clip at a time (what an ALLM demo does), clips/s;
- their ratio, and the peak memory of each phase: on CUDA torch.cuda.max_memory_allocated, on CPU the peak
  resident-set growth over the phase's start (sampled every 5 ms);
- with --sft-steps, LoRA SFT training throughput in tokens/s (prompt + answer tokens per second).
Clips are generated speech-like audio of --seconds each.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import psutil
import torch

from apallm import load_audio
from apallm.allm import load_allm
from apallm.evidence import EvidenceConfig, SpectrogramConfig
from apallm.synth import brickwall_lowpass, speech_like
from apallm.training.answer_loss import answer_loss

SHORT_PROMPTS = {"system": "You detect deepfake speech.", "instruction": "bonafide or spoof?",
                 "spectrogram": "Spectrogram:"}


class PeakMemory:
    """Peak memory growth during a ``with`` block (CUDA allocator on GPU, RSS on CPU)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mb = 0.0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.proc = psutil.Process()
            self.base = self.proc.memory_info().rss
            self.top = self.base
            self.running = True
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.top = max(self.top, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_mb = (torch.cuda.max_memory_allocated() - self.base) / 2**20
        else:
            self.running = False
            self.thread.join()
            self.peak_mb = (self.top - self.base) / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="tiny-qwen2_5-omni")
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--sft-steps", type=int, default=0)
    ap.add_argument("--image", type=int, default=None, help="spectrogram size in px (default 224 tiny, 448 real)")
    args = ap.parse_args()

    tiny = args.model.startswith("tiny-")
    size = args.image or (224 if tiny else 448)
    detector = load_allm(args.model, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                         prompts=SHORT_PROMPTS if tiny else None,
                         evidence_config=EvidenceConfig(spectrogram=SpectrogramConfig(width=size, height=size)))
    device = detector.device
    clips = []
    for i in range(args.clips):
        x = speech_like(args.seconds, seed=i)
        clips.append(load_audio(brickwall_lowpass(x, 3000.0) if i % 2 else x, sample_rate=16000, clip_id=f"b{i}"))
    samples = [s for group in detector.prepare(clips) for s in group]  # evidence once, outside the timings
    detector.score_samples(samples[: args.batch_size])  # warm-up

    with PeakMemory(device) as mem_score:
        t0 = time.perf_counter()
        detector.score_samples(samples)
        t_score = time.perf_counter() - t0

    tok = detector.tokenizer
    with PeakMemory(device) as mem_gen:
        t0 = time.perf_counter()
        with torch.inference_mode():
            for sample in samples:
                batch = detector.encode([sample])
                detector.model.generate(**batch, max_new_tokens=args.max_new_tokens, do_sample=False,
                                        pad_token_id=tok.pad_token_id)
        t_gen = time.perf_counter() - t0

    n = len(samples)
    print(f"model: {args.model} on {device} ({torch.get_num_threads()} CPU threads); {n} clips of "
          f"{args.seconds:g} s; spectrogram {size} px")
    print(f"batched score-only (batch {args.batch_size}): {n / t_score:8.2f} clips/s  "
          f"peak +{mem_score.peak_mb:.0f} MiB")
    print(f"naive generate loop (batch 1, {args.max_new_tokens} new tokens): {n / t_gen:8.2f} clips/s  "
          f"peak +{mem_gen.peak_mb:.0f} MiB")
    print(f"speed-up: {t_gen / t_score:.1f}x")

    if args.sft_steps:
        sft_throughput(args, detector, samples)
    return 0


def sft_throughput(args, detector, samples) -> None:
    from apallm.allm.prompting import default_target
    from apallm.training.sft import PeftSettings, apply_peft

    model = apply_peft(detector.model, detector.family, PeftSettings(r=16, alpha=32, dropout=0.0))
    detector.model = model
    model.train()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    bs = args.batch_size
    tokens, t_total = 0, 0.0
    for step in range(args.sft_steps + 1):
        part = [samples[(step * bs + i) % len(samples)] for i in range(bs)]
        answers = [default_target("spoof" if i % 2 else "bonafide", s.evidence) for i, s in enumerate(part)]
        batch = dict(detector.training_batch(part, answers).to(detector.device))
        t0 = time.perf_counter()
        with torch.autocast(detector.device.type, dtype=torch.bfloat16, enabled=detector.device.type == "cuda"):
            loss, _ = answer_loss(model, batch, batch.pop("labels"))
        loss.backward()
        optim.step()
        optim.zero_grad()
        if detector.device.type == "cuda":
            torch.cuda.synchronize()
        if step:  # the first step warms up
            t_total += time.perf_counter() - t0
            tokens += int(batch["attention_mask"].sum())
    print(f"LoRA SFT: {tokens / t_total:8.0f} tokens/s ({args.sft_steps} steps of batch {bs})")


if __name__ == "__main__":
    sys.exit(main())

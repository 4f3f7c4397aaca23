"""Recipe of the default detector shipped in ``apallm/cm/weights/default`` (see :mod:`apallm.cm.default`).

    python train/default_detector.py --data ../shared/data/realworld-dev --work runs/default-detector \\
        --out apallm/cm/weights/default

Steps, all seeded and cached under ``--work`` (a rerun reuses what is there):

1. Local spoofs: every sentence of :data:`apallm.spoofgen.SENTENCES` spoken by the available espeak-ng,
   flite and festival voices (one voice per sentence, in rotation, so the set is balanced over voices),
   and a Griffin-Lim copy of every bona fide realworld-dev clip (linear and mel magnitudes in turn).
2. Codec round trips of every training clip, both classes (MP3, Vorbis, Opus, mu-law, A-law, GSM).
3. Features: the utterance embeddings of the published AASIST and AASIST-L (MIT; frozen; ``--backbones aasist``
   leaves AASIST-L out) for each crop of each clip, and the measured cues.
4. Leave-one-source-out on realworld-dev for each candidate design: train the head on every source but one
   (local spoofs always in; copies derived from the held-out source out), score the held-out source's
   original clips. The pooled EER over all 282 held-out scores chooses the design; per-source EERs and the
   bona fide error rate of the bona-fide-only source are reported beside it, with the published models as
   the baseline.
5. The chosen design is trained on everything and written to ``--out`` with ``loso.json``.

Needs: ``apt-get install espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts`` and
``../shared/models/aasist-official`` (the published AASIST weights).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from apallm.audio import TARGET_SAMPLE_RATE, load_audio
from apallm.cm.checkpoint import import_aasist, save_cm
from apallm.cm.codecs import CodecConfig, random_round_trip
from apallm.cm.default import FeatureRecipe, LogisticHead, clip_crops
from apallm.cm.detector import CMDetector
from apallm.metrics import bootstrap_eer_ci, compute_eer
from apallm.spoofgen import SENTENCES, VOCODERS, available_voices, synthesize, vocoder_copy

LOCAL = "local-tts"
CUES = ("bandwidth_hz", "band_energy_125_250", "band_energy_250_500", "band_energy_500_1000", "band_energy_1000_2000",
        "band_energy_2000_4000", "band_energy_4000_8000", "spectral_flatness", "spectral_rolloff_hz",
        "pause_floor_dbfs", "speech_to_pause_db", "pause_ratio", "f0_mean_hz", "f0_spread_st", "voiced_ratio",
        "splice_candidates")


@dataclass
class Item:
    id: str
    path: str
    label: str  # bonafide | spoof
    group: str  # the realworld-dev source it comes from (or LOCAL): held out together
    system: str
    original: bool = True  # an unmodified realworld-dev clip (the only kind that is ever tested on)
    variants: list[str] = field(default_factory=list)  # ids of its codec round trips


def realworld_items(data: Path) -> list[Item]:
    with open(data / "manifest.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [Item(id=f"rw/{r['path']}", path=str(data / r["path"]), label=r["label"], group=r["source_repo"],
                 system=r["system"]) for r in rows]


def tts_items(work: Path, seed: int) -> list[Item]:
    voices = available_voices()
    if not voices:
        sys.exit("no TTS engine found: apt-get install espeak-ng flite festival festvox-kallpc16k")
    rng = np.random.default_rng(seed)
    items = []
    for n, sentence in enumerate(SENTENCES):
        # each sentence by two voices of different engines where possible: content never identifies a voice
        order = rng.permutation(len(voices))
        for k in order[:2]:
            voice = voices[k]
            out = work / "tts" / voice.id / f"s{n:02d}.wav"
            if not out.is_file():
                synthesize(sentence, voice, out)
            items.append(Item(id=f"tts/{voice.id}/s{n:02d}", path=str(out), label="spoof", group=LOCAL,
                              system=voice.id, original=False))
    return items


def vocoder_items(work: Path, bonafide: list[Item]) -> list[Item]:
    """One copy of every bona fide clip, the vocoders taken in turn."""
    items = []
    for i, item in enumerate(bonafide):
        vocoder = VOCODERS[i % len(VOCODERS)]
        out = work / "vocoded" / vocoder / (item.id.replace("/", "__") + ".flac")
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            wave = vocoder_copy(load_audio(item.path).waveform, TARGET_SAMPLE_RATE, vocoder, seed=i)
            sf.write(out, wave, TARGET_SAMPLE_RATE)
        items.append(Item(id=f"voc/{vocoder}/{item.id}", path=str(out), label="spoof", group=item.group,
                          system=vocoder, original=False))
    return items


PUBLISHED = {"aasist": "AASIST", "aasist-l": "AASIST-L"}


def backbones(work: Path, models: Path, names: list[str]) -> dict[str, CMDetector]:
    out = {}
    for name in names:
        stem = PUBLISHED[name]
        folder = work / "backbones" / name
        if not (folder / "config.json").is_file():
            import_aasist(models / f"{stem}.pth", models / f"{stem}.conf", folder)
        out[name] = CMDetector(folder, batch_size=16)
    return out


MAX_CROPS = 2  # crops per clip: the first ~4 s and the last ~4 s (one crop when the clip is shorter)


def featurize(items: list[Item], nets: dict[str, CMDetector], work: Path, codec_copies: int, seed: int,
              max_crops: int = MAX_CROPS) -> dict[str, dict]:
    """Per clip id (codec copies included, as ``<id>#<k>``): each backbone's encoder feature maps
    (float16) and utterance embeddings for up to ``max_crops`` crops covering the clip, the logits of the
    first crop, and the cue vector. Cached in ``work/features.npz``."""
    from apallm.cm.default import cue_vector

    cache_file = work / "features.npz"
    cache: dict[str, dict] = {}
    if cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as z:
            for key in z.files:
                cid, _, feat = key.rpartition("|")
                cache.setdefault(cid, {})[feat] = z[key]
    rng = np.random.default_rng(seed)
    codec_cfg = CodecConfig()
    todo = 0
    start = time.time()
    for n, item in enumerate(items):
        draws = [rng.integers(2**31) for _ in range(codec_copies)]  # drawn whether cached or not: stable
        ids = [item.id] + [f"{item.id}#{k}" for k in range(codec_copies)]
        item.variants = ids[1:]
        if all(i in cache and all(f"{name}:crops" in cache[i] for name in nets) for i in ids):
            continue
        clip = load_audio(item.path, clip_id=item.id)
        waves = {item.id: clip.waveform}
        for k, d in enumerate(draws):
            waves[f"{item.id}#{k}"], _ = random_round_trip(clip.waveform, np.random.default_rng(d), codec_cfg)
        for cid, wave in waves.items():
            entry = cache.get(cid, {})
            for name, net in nets.items():
                if f"{name}:crops" in entry:
                    continue
                crops = clip_crops(wave, net.crop_samples, "windows", max_crops)
                with torch.inference_mode():
                    maps = net.model.encode(torch.from_numpy(crops)).half()  # stored in half precision
                    emb = net.model.graph_embed(maps.float())
                    entry[f"{name}:logits"] = net.model.out_layer(emb[:1]).numpy()[0]
                entry[f"{name}:crops"] = emb.numpy()
                entry[f"{name}:encoder"] = maps.numpy()
            if "cues" not in entry:
                entry["cues"] = cue_vector(dataclasses.replace(clip, waveform=wave), CUES)
            cache[cid] = entry
        todo += 1
        if todo % 25 == 0:
            print(f"  features: {n + 1}/{len(items)} clips ({time.time() - start:.0f} s)", flush=True)
            _save_cache(cache, cache_file)
    if todo:
        _save_cache(cache, cache_file)
    return cache


def _save_cache(cache: dict[str, dict], path: Path) -> None:
    flat = {f"{cid}|{feat}": value for cid, entry in cache.items() for feat, value in entry.items()}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **flat)
    tmp.replace(path)


def feature_matrix(ids: list[str], cache: dict[str, dict], recipe: FeatureRecipe) -> np.ndarray:
    rows = []
    for cid in ids:
        entry = cache[cid]
        parts = []
        for b in recipe.backbones:
            crops = entry[f"{b}:crops"]
            parts.append(crops[0] if recipe.crop == "first" else crops.mean(axis=0))
        if recipe.cues:
            parts.append(entry["cues"][[CUES.index(c) for c in recipe.cues]])
        rows.append(np.concatenate(parts))
    return np.stack(rows)


@dataclass
class Design:
    """A candidate. ``finetune``: train the published AASIST's graph-attention back end (encoder frozen) on
    the cached encoder maps for ``epochs`` (Adam, ``lr``), and score with its own output layer; ``calibrate``:
    the published model as it is, its spoof log-odds rescaled by a one-feature logistic regression; otherwise
    fit a logistic head (``c``: inverse L2 strength) on the frozen features of ``recipe``."""

    name: str
    recipe: FeatureRecipe
    tts: bool = True
    vocoded: bool = True
    codec: bool = True
    c: float = 0.1
    finetune: bool = False
    epochs: int = 4
    lr: float = 1e-4
    calibrate: bool = False  # keep the published output layer; fit only a scale and offset of its log-odds


FROZEN_PREFIXES = ("conv_time", "first_bn", "encoder")


def finetune_backend(base: torch.nn.Module, maps: np.ndarray, spoof: np.ndarray, design: Design,
                     seed: int) -> torch.nn.Module:
    """A copy of ``base`` whose back end is trained on encoder ``maps`` (one crop per row) with labels
    ``spoof`` (1 = spoof): class-weighted cross-entropy, batches of 32, weight decay 1e-4, seeded."""
    import copy

    torch.manual_seed(seed)
    model = copy.deepcopy(base).to(memory_format=torch.contiguous_format)
    for name, p in model.named_parameters():
        p.requires_grad = not name.startswith(FROZEN_PREFIXES)
    x = torch.from_numpy(maps.astype(np.float32))
    target = torch.from_numpy(1 - np.asarray(spoof)).long()  # model output: 0 = spoof, 1 = bona fide
    weight = torch.tensor([(target == 1).float().mean(), (target == 0).float().mean()])
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=design.lr, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(design.epochs):
        for idx in torch.randperm(len(x), generator=g).split(32):
            logits = model.out_layer(model.drop(model.graph_embed(x[idx])))
            loss = torch.nn.functional.cross_entropy(logits, target[idx], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def fit_head(features: np.ndarray, spoof: np.ndarray, design: Design, nets: dict) -> LogisticHead:
    """The logistic head of a frozen-feature design (see :class:`Design`)."""
    if not design.calibrate:
        return LogisticHead.fit(features, spoof, c=design.c)
    # each backbone's spoof log-odds (direction . its embedding + offset) is one feature of a logistic fit;
    # the fit folds back into one linear head over the concatenated embeddings
    blocks, start = [], 0
    for name in design.recipe.backbones:
        layer = nets[name].model.out_layer
        w, b = layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()
        blocks.append((slice(start, start + w.shape[1]), w[0] - w[1], float(b[0] - b[1])))
        start += w.shape[1]
    log_odds = np.stack([features[:, sl] @ d + o for sl, d, o in blocks], axis=1)
    platt = LogisticHead.fit(log_odds, spoof, c=design.c)
    scales = platt.coef / platt.scale
    coef = np.concatenate([k * d for k, (_, d, _) in zip(scales, blocks, strict=True)])
    intercept = platt.intercept + sum(k * (o - m) for k, (_, _, o), m in zip(scales, blocks, platt.mean, strict=True))
    return LogisticHead(np.zeros(start), np.ones(start), coef, float(intercept))


def crop_rows(ids: list[str], labels: np.ndarray, cache: dict, backbone: str) -> tuple[np.ndarray, np.ndarray]:
    maps = [cache[cid][f"{backbone}:encoder"] for cid in ids]
    return np.concatenate(maps), np.repeat(labels, [len(m) for m in maps])


def finetuned_p_spoof(model: torch.nn.Module, ids: list[str], cache: dict, backbone: str) -> np.ndarray:
    """P(spoof) of each clip: the softmax of the output layer on its crops' mean embedding (as
    :class:`~apallm.cm.default.DefaultDetector` scores with ``crop: windows``)."""
    out = []
    with torch.inference_mode():
        for cid in ids:
            emb = model.graph_embed(torch.from_numpy(cache[cid][f"{backbone}:encoder"].astype(np.float32)))
            logits = model.out_layer(emb.mean(dim=0))
            out.append(torch.softmax(logits, dim=0)[0].item())
    return np.array(out)


def training_ids(items: list[Item], design: Design, held_out: str | None) -> tuple[list[str], np.ndarray]:
    ids, labels = [], []
    for item in items:
        if item.group == held_out:
            continue
        if item.group == LOCAL and not design.tts or item.id.startswith("voc/") and not design.vocoded:
            continue
        for cid in [item.id] + (item.variants if design.codec else []):
            ids.append(cid)
            labels.append(int(item.label == "spoof"))
    return ids, np.array(labels)


def eer(p_spoof: np.ndarray, labels: np.ndarray) -> float:
    if labels.min() == labels.max():
        return float("nan")
    return compute_eer(-p_spoof[labels == 0], -p_spoof[labels == 1])[0]


def loso(items: list[Item], cache: dict, design: Design, sources: list[str], nets: dict, seed: int) -> dict:
    originals = [i for i in items if i.original]
    scores, labels, groups = [], [], []
    for source in sources:
        ids, y = training_ids(items, design, source)
        test = [i for i in originals if i.group == source]
        if design.finetune:
            backbone = design.recipe.backbones[0]
            model = finetune_backend(nets[backbone].model, *crop_rows(ids, y, cache, backbone), design, seed)
            scores.append(finetuned_p_spoof(model, [i.id for i in test], cache, backbone))
        else:
            head = fit_head(feature_matrix(ids, cache, design.recipe), y, design, nets)
            scores.append(head.predict(feature_matrix([i.id for i in test], cache, design.recipe)))
        labels.append(np.array([int(i.label == "spoof") for i in test]))
        groups += [source] * len(test)
    return summarise(np.concatenate(scores), np.concatenate(labels), np.array(groups), sources)


def summarise(p: np.ndarray, y: np.ndarray, groups: np.ndarray, sources: list[str]) -> dict:
    per_source = {}
    for s in sources:
        m = groups == s
        per_source[s] = {"n_bonafide": int((y[m] == 0).sum()), "n_spoof": int((y[m] == 1).sum()),
                         "eer": eer(p[m], y[m]),
                         "error_at_0.5": float(np.mean((p[m] >= 0.5) != (y[m] == 1)))}
    ci = bootstrap_eer_ci(-p[y == 0], -p[y == 1], n_boot=500) if 0 < y.sum() < len(y) else (np.nan, np.nan)
    return {"pooled_eer": eer(p, y), "pooled_eer_ci95": [float(ci[0]), float(ci[1])],
            "n_bonafide": int((y == 0).sum()), "n_spoof": int((y == 1).sum()),
            "accuracy_at_0.5": float(np.mean((p >= 0.5) == (y == 1))), "per_source": per_source}


def baseline(items: list[Item], cache: dict, name: str, sources: list[str]) -> dict:
    test = [i for i in items if i.original]
    logits = np.stack([cache[i.id][f"{name}:logits"] for i in test])
    p = 1 / (1 + np.exp(logits[:, 1] - logits[:, 0]))
    return summarise(p, np.array([int(i.label == "spoof") for i in test]), np.array([i.group for i in test]),
                     sources)


def windows(backbones: tuple[str, ...], cues: tuple[str, ...] = ()) -> FeatureRecipe:
    """Features over the crops :func:`featurize` keeps (the mean embedding of up to MAX_CROPS crops)."""
    return FeatureRecipe(backbones, crop="windows", max_crops=MAX_CROPS, cues=cues)


def designs(backbones: list[str]) -> list[Design]:
    """The candidates compared by leave-one-source-out EER."""
    a = ("aasist",)
    out = [
        Design("aasist-emb", windows(a), c=0.01),
        Design("aasist-emb+cues", windows(a, cues=CUES), c=0.01),
        Design("cues-only", windows((), cues=CUES), c=1.0),
        Design("published aasist, recalibrated", windows(a), calibrate=True, c=1.0),
        Design("aasist-backend-ft", windows(a), finetune=True),
        Design("aasist-backend-ft, no local spoofs", windows(a), finetune=True, tts=False,
               vocoded=False),
        Design("aasist-backend-ft, no vocoder copies", windows(a), finetune=True, vocoded=False),
        Design("aasist-backend-ft, no TTS", windows(a), finetune=True, tts=False),
        Design("aasist-backend-ft, no codec", windows(a), finetune=True, codec=False),
        Design("aasist-backend-ft, 2 epochs", windows(a), finetune=True, epochs=2),
        Design("aasist-backend-ft, lr 1e-5", windows(a), finetune=True, lr=1e-5),
        Design("aasist-backend-ft, lr 3e-5, 2 epochs", windows(a), finetune=True, lr=3e-5, epochs=2),
    ]
    if "aasist-l" in backbones:
        out += [Design("published aasist-l, recalibrated", windows(("aasist-l",)), calibrate=True, c=1.0),
                Design("published aasist + aasist-l, recalibrated", windows(("aasist", "aasist-l")), calibrate=True,
                       c=1.0)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/realworld-dev"))
    ap.add_argument("--models", type=Path, default=Path("../shared/models/aasist-official"))
    ap.add_argument("--work", type=Path, default=Path("runs/default-detector"))
    ap.add_argument("--out", type=Path, default=None, help="write the chosen detector here")
    ap.add_argument("--design", default=None, help="ship this design instead of the best by pooled LOSO EER")
    ap.add_argument("--codec-copies", type=int, default=1)
    ap.add_argument("--backbones", nargs="+", default=["aasist", "aasist-l"], choices=sorted(PUBLISHED),
                    help="published models whose embeddings are features (aasist aasist-l)")
    ap.add_argument("--only", nargs="+", default=None, metavar="DESIGN",
                    help="evaluate only these candidates (to share the work between processes)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    # the back end's small graph operations run fastest on one thread (several contend for nothing)
    torch.set_num_threads(1)
    if not (args.data / "manifest.tsv").is_file():
        sys.exit(f"{args.data}: no manifest.tsv (realworld-dev is needed)")
    args.work.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    real = realworld_items(args.data)
    sources = sorted({i.group for i in real})
    bonafide = [i for i in real if i.label == "bonafide"]
    items = real + tts_items(args.work, args.seed) + vocoder_items(args.work, bonafide)
    print(f"{len(items)} clips ({len(real)} realworld-dev, {len(items) - len(real)} made here) "
          f"in {time.time() - t0:.0f} s", flush=True)
    nets = backbones(args.work, args.models, args.backbones)
    cache = featurize(items, nets, args.work, args.codec_copies, args.seed)
    print(f"features ready after {time.time() - t0:.0f} s", flush=True)

    report = {"sources": sources, "baselines": {}, "designs": {}}
    for name in args.backbones:
        report["baselines"][f"published {name}"] = baseline(items, cache, name, sources)
    candidates = [d for d in designs(args.backbones) if not args.only or d.name in args.only]
    for d in candidates:
        # each design's result is cached with its settings: several processes can share the candidates
        done = args.work / "loso" / (d.name.replace(" ", "_").replace(",", "") + ".json")
        if done.is_file() and json.loads(done.read_text())["settings"] == design_settings(d):
            report["designs"][d.name] = {**json.loads(done.read_text())["result"], **design_settings(d)}
            continue
        t = time.time()
        result = loso(items, cache, d, sources, nets, args.seed)
        report["designs"][d.name] = {**result, **design_settings(d)}
        done.parent.mkdir(exist_ok=True)
        done.write_text(json.dumps({"settings": design_settings(d), "result": result}, indent=2))
        print(f"  {d.name}: pooled LOSO EER {result['pooled_eer'] * 100:.1f} % ({time.time() - t:.0f} s)", flush=True)
    rows = [(f"{k} (no training)", v) for k, v in report["baselines"].items()] + list(report["designs"].items())
    print(f"\n{'design':40s} pooled  " + "  ".join(s.split("/")[0][:10] for s in sources))
    for name, r in rows:
        per = "  ".join(f"{r['per_source'][s]['eer'] * 100:5.1f}" if r["per_source"][s]["n_spoof"] else
                        f"fa{r['per_source'][s]['error_at_0.5'] * 100:4.1f}" for s in sources)
        print(f"{name:40s} {r['pooled_eer'] * 100:5.1f}   {per}")

    chosen = args.design or min(report["designs"], key=lambda k: report["designs"][k]["pooled_eer"])
    report["chosen"] = chosen
    (args.work / "loso.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nchosen: {chosen} (pooled LOSO EER {report['designs'][chosen]['pooled_eer'] * 100:.1f} %)")
    if args.out:
        write_detector(args, items, cache, next(d for d in candidates if d.name == chosen), report, nets)
    print(f"done in {time.time() - t0:.0f} s")


def design_settings(d: Design) -> dict:
    return {"recipe": d.recipe.to_dict(), "tts": d.tts, "vocoded": d.vocoded, "codec": d.codec,
            **({"finetune": True, "epochs": d.epochs, "lr": d.lr} if d.finetune else
               {"C": d.c, "calibrate": d.calibrate})}


def write_detector(args, items, cache, design: Design, report: dict, nets) -> None:
    ids, y = training_ids(items, design, None)
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    backbone = design.recipe.backbones[0]
    if design.finetune:
        model = finetune_backend(nets[backbone].model, *crop_rows(ids, y, cache, backbone), design, args.seed)
        published = json.loads((args.work / "backbones" / backbone / "config.json").read_text())["provenance"]
        save_cm(model, out / backbone, name=backbone, license_text=published["license_notice"], provenance={
            **published, "fine_tuned": "graph-attention back end and output layer retrained by "
                                       f"train/default_detector.py (design {design.name!r}); encoder as published"})
        # the head is the model's own output layer read as a logistic regression on the embedding
        w, b = model.out_layer.weight.detach().double().numpy(), model.out_layer.bias.detach().double().numpy()
        dim = w.shape[1]
        head = LogisticHead(np.zeros(dim), np.ones(dim), w[0] - w[1], float(b[0] - b[1]))
    else:
        for b in design.recipe.backbones:
            shutil.copytree(args.work / "backbones" / b, out / b)
        head = fit_head(feature_matrix(ids, cache, design.recipe), y, design, nets)
    shutil.copy(args.work / "backbones" / backbone / "LICENSE", out / "LICENSE")
    head.save(out / "head.safetensors")
    counts = {"realworld-dev": sum(i.original for i in items),
              "tts": sum(i.group == LOCAL for i in items) if design.tts else 0,
              "vocoded": sum(i.id.startswith("voc/") for i in items) if design.vocoded else 0}
    config = {
        "name": "apallm-default",
        "features": design.recipe.to_dict(),
        "design": design.name,
        "training": {"clips": counts, "codec_copies_per_clip": args.codec_copies if design.codec else 0,
                     "examples": len(ids), **design_settings(design), "seed": args.seed,
                     "voices": sorted({i.system for i in items if i.group == LOCAL}),
                     "recipe": "train/default_detector.py"},
        "loso": {"pooled_eer": report["designs"][design.name]["pooled_eer"],
                 "per_source": report["designs"][design.name]["per_source"]},
        "license": "MIT (published AASIST weights, NAVER Corp.; see LICENSE); head trained by apallm",
    }
    (out / "detector.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "loso.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

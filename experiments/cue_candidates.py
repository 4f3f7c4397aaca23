"""Candidate cues screened for the rationale vocabulary, and not shipped: none adds enough to the 29 cues of
``apallm.evidence`` (experiments/README.md).

    python experiments/cue_candidates.py [--jobs 2] [--out runs/cue_candidates/report.json]

Every clip of realworld-dev and train-corpus (as eval/cue_ranges.py reads them) is measured for 36 more cues
from the families the literature ties to synthesis (group-delay spread per band and per frame class,
instantaneous-frequency deviation and coherence, fine spectral structure, the coupling and modulation of the
4-8 kHz envelope, the long-term slope near Nyquist, high-band periodicity at the pitch period, pause noise,
leading and trailing silence, peak level). Per cue, as eval/cue_ranges.py judges the shipped ones: the LOSO AUC
(the direction from the other sources) and the shares of spoof and bona fide clips outside the bona fide
5-95 % range; then the informativeness ceiling (eval/cue_ranges.py's greedy, in-sample bound) over the shipped
cues and the candidates together. Per-clip values are cached in ``runs/cue_candidates/values.jsonl``; the shipped
cues' values are read from eval/cue_ranges.py's cache (run it first).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "runs" / "cue_candidates"
GD_BANDS = ((500, 1000), (1000, 2000), (2000, 4000), (4000, 6000), (6000, 8000), (4000, 8000))


def _cue_ranges():
    spec = importlib.util.spec_from_file_location("cue_ranges", REPO / "eval" / "cue_ranges.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gd_spread(stft, freqs, frames, lo, hi, stat=np.median):
    """``stat`` over the chosen frames of the standard deviation of the group delay across lo-hi Hz."""
    band = (freqs >= lo) & (freqs <= hi)
    sel = stft[:, frames]
    if sel.shape[1] < 10:
        return None
    phase = np.unwrap(np.angle(sel[band]), axis=0)
    return float(stat(np.std(np.diff(phase, axis=0), axis=0)))


def candidates(wave: np.ndarray, sr: int) -> dict:
    """The candidate cues of one 16 kHz clip (None where not measurable)."""
    import librosa
    import scipy.signal as ss

    from apallm.evidence import cues as C

    out: dict = {}
    stft = librosa.stft(np.pad(wave, (0, max(0, C.N_FFT - len(wave)))), n_fft=C.N_FFT, hop_length=C.HOP,
                        center=False)
    power = np.abs(stft) ** 2
    freqs = librosa.fft_frequencies(sr=sr, n_fft=C.N_FFT)
    levels = C.frame_levels_dbfs(wave)
    n = min(power.shape[1], len(levels))
    stft, power, levels = stft[:, :n], power[:, :n], levels[:n]
    active, speech, floor = C.activity(levels)
    f0, periodicity = C.pitch_track(wave, sr)
    m = min(len(f0), n)
    voiced = np.zeros(n, bool)
    voiced[:m] = (periodicity[:m] > C.VOICING_CORR) & active[:m]
    unvoiced, pause = active & ~voiced, ~active
    hf, mid = (freqs >= 4000) & (freqs <= 8000), (freqs >= 1000) & (freqs <= 4000)

    for lo, hi in GD_BANDS:
        out[f"gd_{lo}_{hi}"] = gd_spread(stft, freqs, active, lo, hi)
    out["gd_hf_voiced"] = gd_spread(stft, freqs, voiced, 4000, 8000)
    out["gd_hf_unvoiced"] = gd_spread(stft, freqs, unvoiced, 4000, 8000)
    out["gd_lf_voiced"] = gd_spread(stft, freqs, voiced, 300, 2000)
    out["gd_hf_pause"] = gd_spread(stft, freqs, pause, 4000, 8000) if floor > C.DIGITAL_SILENCE_DBFS else None
    out["gd_hf_p10"] = gd_spread(stft, freqs, active, 4000, 8000, lambda x: np.percentile(x, 10))
    out["gd_hf_p90"] = gd_spread(stft, freqs, active, 4000, 8000, lambda x: np.percentile(x, 90))
    out["gd_hf_mean"] = gd_spread(stft, freqs, active, 4000, 8000, np.mean)

    # instantaneous frequency: each bin's phase advance from frame to frame, less the advance of its centre
    k = np.arange(stft.shape[0])[:, None]
    dev = np.angle(stft[:, 1:] * np.conj(stft[:, :-1]) * np.exp(-2j * np.pi * k * C.HOP / C.N_FFT))
    pairs = active[1:] & active[:-1]
    if pairs.sum() >= 10:
        out["ifdev_hf"] = float(np.median(np.std(dev[hf][:, pairs], axis=0)))
        out["ifdev_mid"] = float(np.median(np.std(dev[mid][:, pairs], axis=0)))
        weight = np.abs(stft[:, 1:])[:, pairs]
        coherence = np.abs((np.exp(1j * dev[:, pairs]) * weight).sum(1)) / (weight.sum(1) + 1e-12)
        out["ifcoh_hf"], out["ifcoh_mid"] = float(np.mean(coherence[hf])), float(np.mean(coherence[mid]))
        vpairs = voiced[1:] & voiced[:-1]
        if vpairs.sum() >= 10:
            out["ifdev_hf_voiced"] = float(np.median(np.std(dev[hf][:, vpairs], axis=0)))

    log_power = C._db(power)
    if active.sum() >= 10:
        residual = log_power - ss.medfilt2d(log_power, kernel_size=(9, 1))  # fine structure about the envelope
        out["hf_fine_std"] = float(np.median(np.std(residual[hf][:, active], axis=0)))
        out["mid_fine_std"] = float(np.median(np.std(residual[mid][:, active], axis=0)))
        ltas = power[:, active].mean(1)

        def level(lo, hi):
            return float(10 * np.log10(ltas[(freqs >= lo) & (freqs < hi)].mean() + 1e-20))

        out["slope_7_8"] = level(7000, 7800) - level(6000, 7000)
        out["slope_5_7"] = level(6000, 7000) - level(4500, 5500)
        out["lt_ripple_hf"] = float(np.std(np.diff(10 * np.log10(ltas[hf] + 1e-20))))

    hf_env = C._db(power[hf].sum(0), 1e-20)
    lf_env = C._db(power[(freqs >= 300) & (freqs < 4000)].sum(0), 1e-20)
    if active.sum() >= 30:
        out["hf_lf_corr"] = float(np.corrcoef(hf_env[active], lf_env[active])[0, 1])
        tilt = hf_env - lf_env
        out["hf_tilt_std"] = float(np.std(tilt[active]))
        out["hf_tilt_voiced"] = float(np.median(tilt[voiced])) if voiced.sum() >= 10 else None
        out["hf_tilt_unvoiced"] = float(np.median(tilt[unvoiced])) if unvoiced.sum() >= 10 else None
        if len(hf_env) >= 64:
            f, p = ss.welch(hf_env - hf_env.mean(), fs=100, nperseg=64)
            fast, slow = p[(f >= 10) & (f <= 40)].sum(), p[(f >= 2) & (f <= 8)].sum()
            out["hf_mod_ratio"] = float(10 * np.log10(fast / (slow + 1e-12) + 1e-12))

    loud = np.where(levels > speech - 40)[0]
    if len(loud):
        out["lead_sil_s"] = loud[0] * C.HOP / sr
        out["trail_sil_s"] = (len(levels) - 1 - loud[-1]) * C.HOP / sr
    out["peak_dbfs"] = float(20 * np.log10(np.max(np.abs(wave)) + 1e-9))
    out["crest_db"] = out["peak_dbfs"] - speech
    if pause.sum() >= 10 and floor > C.DIGITAL_SILENCE_DBFS:
        out["pause_level_std"] = float(np.std(levels[pause]))
        out["pause_flatness"] = float(np.mean(librosa.feature.spectral_flatness(S=np.sqrt(power[:, pause]),
                                                                                 power=2.0)))

    if voiced.sum() >= 10:  # the 4-8 kHz band's periodicity (and its envelope's) at the pitch period
        band = ss.sosfilt(ss.butter(8, [4000, 7900], btype="band", fs=sr, output="sos"), wave)
        env = np.abs(ss.hilbert(band))
        corr, env_corr = [], []
        for t in np.where(voiced)[0][::2]:
            if t >= len(f0) or f0[t] <= 0:
                continue
            lag, a = int(round(sr / f0[t])), t * C.HOP
            if a + 800 + lag > len(band):
                continue
            x, y = band[a:a + 800], band[a + lag:a + lag + 800]
            corr.append(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-12))
            ex, ey = env[a:a + 800], env[a + lag:a + lag + 800]
            ex, ey = ex - ex.mean(), ey - ey.mean()
            env_corr.append(np.dot(ex, ey) / (np.linalg.norm(ex) * np.linalg.norm(ey) + 1e-12))
        if len(corr) >= 5:
            out["hf_harm"], out["hf_env_harm"] = float(np.median(corr)), float(np.median(env_corr))
    return {k: None if v is None or not np.isfinite(v) else float(v) for k, v in out.items()}


def measure(row: dict) -> dict:
    from apallm import load_audio

    try:
        clip = load_audio(row["abspath"])
        return {"key": row["key"], "cues": candidates(np.asarray(clip.waveform, np.float32), clip.sample_rate)}
    except Exception as exc:  # an unreadable clip is reported and left out
        return {"key": row["key"], "error": f"{type(exc).__name__}: {exc}"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=CACHE / "report.json")
    args = ap.parse_args()
    cr = _cue_ranges()
    from apallm.datasets.adapters.project_corpora import REALWORLD_DEV, TRAIN_CORPUS, corpus_root

    rows = []
    for name in (REALWORLD_DEV, TRAIN_CORPUS):
        root = corpus_root(name, None)
        if root is not None:
            rows.extend(cr.read_rows(root, name))
    if not rows:
        print("neither corpus found: skipping")
        return 0
    for r in rows:
        r["key"] = f"{r['corpus']}/{r['path']}"
    shipped_cache = cr.CACHE / f"cues-{cr.code_hash()}.jsonl"
    if not shipped_cache.is_file():
        print(f"{shipped_cache} is missing: run eval/cue_ranges.py first", file=sys.stderr)
        return 2
    shipped = {rec["key"]: rec for rec in map(json.loads, shipped_cache.read_text(encoding="utf-8").splitlines())}

    CACHE.mkdir(parents=True, exist_ok=True)
    cache_file = CACHE / "values.jsonl"
    done = {}
    if cache_file.is_file():
        done = {rec["key"]: rec for rec in map(json.loads, cache_file.read_text(encoding="utf-8").splitlines())}
    todo = [r for r in rows if r["key"] not in done]
    if todo:
        print(f"measuring {len(todo)} clip(s) with {args.jobs} process(es)", file=sys.stderr)
        with open(cache_file, "a", encoding="utf-8") as fh, ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for rec in pool.map(measure, todo, chunksize=8):
                fh.write(json.dumps(rec) + "\n")
                done[rec["key"]] = rec
    rows = [r for r in rows if "cues" in done[r["key"]] and "cues" in shipped.get(r["key"], {})]
    names = sorted({n for r in rows for n in done[r["key"]]["cues"]})
    matrix = np.array([[cr._num(done[r["key"]]["cues"].get(n)) for n in names] for r in rows], dtype=float)
    spoof = np.array([r["label"] == "spoof" for r in rows])
    groups = np.array([r["source"] for r in rows])
    table = cr.cue_table(names, matrix, spoof, groups, SimpleArgs())

    shipped_names = list(next(iter(shipped.values()))["cues"])
    shipped_matrix = np.array([[cr._num(shipped[r["key"]]["cues"].get(n)) for n in shipped_names] for r in rows],
                              dtype=float)
    shipped_table = cr.cue_table(shipped_names, shipped_matrix, spoof, groups, SimpleArgs())
    outside = np.c_[cr.outside_matrix(shipped_names, shipped_matrix, shipped_table),
                    cr.outside_matrix(names, matrix, table)]
    ceiling = {"shipped": cr.informativeness_ceiling(shipped_names, outside[:, :len(shipped_names)], spoof),
               "shipped_and_candidates": cr.informativeness_ceiling(shipped_names + names, outside, spoof)}
    print("\ncandidates by LOSO AUC:")
    for name in sorted(names, key=lambda n: -table[n]["loso_auc"]):
        t = table[name]
        print(f"  {name:18s} LOSO {t['loso_auc']:.3f}  outside the bona fide 5-95 %: spoof "
              f"{t['out_of_range']['spoof']:.2f}, bona fide {t['out_of_range']['bonafide']:.2f}")
    for key, c in ceiling.items():
        print(f"informativeness ceiling ({key}): {c['spoof']:.3f} of spoof clips, {c['bonafide']:.3f} of bona fide "
              f"clips, with " + ", ".join(s["cue"] for s in c["steps"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(cr._rounded({"clips": len(rows), "candidates": table, "ceiling": ceiling}),
                                   indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


class SimpleArgs:
    low, high, min_auc = 5.0, 95.0, 0.65


if __name__ == "__main__":
    sys.exit(main())

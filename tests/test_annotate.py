"""apallm annotate: grounded, seeded training targets from measured cues; bad clips skipped; rephrase guarded."""

import json
import random
import re

import pytest

from apallm import load_audio
from apallm.annotate import annotate_manifest, annotate_row, make_target
from apallm.commands import main
from apallm.evidence import EvidenceConfig, extract_evidence
from apallm.grounding import check_grounding
from apallm.rationale import CONSISTENT, find_claims, judge_consistency
from apallm.verdict import parse_answer


@pytest.fixture(autouse=True)
def every_cue_citable(monkeypatch):
    """The toy spoofs are band limits, which the data-derived vocabulary does not cite (bandwidth_hz does not
    separate real from fake sources): the plumbing tests cite every cue; the vocabulary has its own tests."""
    import apallm.evidence

    monkeypatch.setattr(apallm.evidence, "citable", lambda name: True)


@pytest.fixture(scope="module")
def toy(toy_set):
    manifest = toy_set(n=4, targets=False)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    evidence = {r["id"]: extract_evidence(load_audio(r["path"]), EvidenceConfig(render_image=False)) for r in rows}
    return manifest, rows, evidence


@pytest.fixture(scope="module")
def annotated(toy, tmp_path_factory):
    manifest, rows, _ = toy
    folder = tmp_path_factory.mktemp("annotate")
    (folder / "not_audio.wav").write_text("this is text, not audio")
    bad = [{"id": "broken", "path": str(folder / "not_audio.wav"), "label": "spoof", "dataset": "toy"},
           {"id": "gone", "path": "missing.wav", "label": "bonafide", "dataset": "toy"},
           {"id": "nolabel", "path": rows[0]["path"], "label": "maybe", "dataset": "toy"}]
    with_bad = folder / "manifest.jsonl"
    lines = [json.dumps(r) for r in rows[:2] + bad + rows[2:]] + ["{not json"]
    with_bad.write_text("\n".join(lines) + "\n")
    out = folder / "sft.jsonl"
    return with_bad, out, folder


def test_cli_writes_a_target_per_good_clip_and_skips_bad_ones(toy, annotated, capsys):
    _, rows, evidence = toy
    manifest, out, _ = annotated
    assert main(["annotate", str(manifest), "-o", str(out), "--seed", "0"]) == 1  # something was skipped
    captured = capsys.readouterr()
    for name in ("broken", "gone", "nolabel", "not valid JSON"):
        assert name in captured.err
    assert "annotated 4 clip(s), skipped 4" in captured.out
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in written] == [r["id"] for r in rows]
    for row, record in zip(rows, written, strict=True):
        assert {k: record[k] for k in row} == row  # the manifest row, plus its target
        parsed = parse_answer(record["target"])
        assert parsed.ok and parsed.label == row["label"]
        assert parsed.system == ("lowpass" if row["label"] == "spoof" else None)
        claims = find_claims(record["target"])
        assert claims and judge_consistency(row["label"], claims) == CONSISTENT
        wanted = {"low", "high"} if row["label"] == "spoof" else {"normal"}
        assert {c.status for c in claims} <= wanted
        report = check_grounding(record["target"], evidence[row["id"]])
        assert report.precision == 1.0 and report.n_contradicted == 0, report.to_dict()
        assert all(c.value is not None for c in claims)  # numbers are cited


def test_targets_of_every_seed_are_grounded_and_the_seed_changes_wording_not_facts(toy):
    _, rows, evidence = toy
    for row in rows:
        ev = evidence[row["id"]]
        texts, facts = set(), set()
        for seed in range(6):
            target = make_target(ev, row["label"], rng=random.Random(f"{seed}:{row['id']}")).text
            report = check_grounding(target, ev)
            assert report.precision == 1.0 and report.n_contradicted == 0
            texts.add(target)
            facts.add(tuple((c.cue, c.status, c.value) for c in find_claims(target)))
        assert len(facts) == 1
        assert len(texts) > 1
    # the same seed gives the same target
    ev, row = evidence[rows[1]["id"]], rows[1]
    assert (make_target(ev, "spoof", rng=random.Random("0:x")).text
            == make_target(ev, "spoof", rng=random.Random("0:x")).text)


def test_spoof_coverage_and_bona_fide_fallback(toy):
    _, rows, evidence = toy
    spoof = next(r for r in rows if r["label"] == "spoof")
    ev = evidence[spoof["id"]]
    target = make_target(ev, "spoof", rng=random.Random(0), max_cues=50).text
    assert check_grounding(target, ev).coverage == 1.0  # every out-of-range cue cited when not capped
    capped = make_target(ev, "spoof", rng=random.Random(0), max_cues=1).text
    assert len(find_claims(capped)) <= 2


def test_regions_and_system_come_from_the_manifest(toy, tmp_path):
    manifest, rows, _ = toy
    row = dict(rows[1], segments=[{"start": 0.0, "end": 0.5, "label": "bonafide"},
                                  {"start": 0.5, "end": 1.25, "label": "spoof"}])
    record, _ = annotate_row(row, manifest, seed=3)
    parsed = parse_answer(record["target"])
    assert parsed.regions == [(0.5, 1.25)] and parsed.system == "lowpass"
    cut, _ = annotate_row(row, manifest, seed=3, window_s=1.0)  # regions are cut to the measured window
    assert parse_answer(cut["target"]).regions == [(0.5, 1.0)]
    bona, _ = annotate_row(dict(rows[0], attack="bonafide"), manifest)
    assert "System:" not in bona["target"] and "Regions:" not in bona["target"]


def test_rephrase_hook_is_off_by_default_and_number_changes_are_rejected(toy, tmp_path):
    manifest, rows, evidence = toy
    row = next(r for r in rows if r["label"] == "spoof")
    plain, _ = annotate_row(row, manifest, seed=0)

    def change_a_number(text):  # the first number of each rationale, plus one
        return re.sub(r"\d+", lambda m: str(int(m.group()) + 1), text, count=1)

    def reorder(text):
        return "; ".join(reversed(text.split("; ")))

    def crash(text):
        raise RuntimeError("model fell over")

    rejected, target = annotate_row(row, manifest, seed=0, rephrase=change_a_number)
    with_numbers = sum(bool(re.search(r"\d", line)) for line in plain["target"].splitlines()[1:3])
    assert with_numbers >= 1
    assert rejected["target"] == plain["target"] and target.rephrase_rejected == with_numbers
    kept, target = annotate_row(row, manifest, seed=0, rephrase=reorder)
    assert target.rephrase_rejected == 0
    assert kept["target"] != plain["target"]
    assert find_claims(kept["target"])
    assert check_grounding(kept["target"], evidence[row["id"]]).precision == 1.0
    crashed, target = annotate_row(row, manifest, seed=0, rephrase=crash)
    assert crashed["target"] == plain["target"] and target.rephrase_rejected == 2

    out = tmp_path / "sft.jsonl"
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps(row) + "\n")
    stats = annotate_manifest(one, out, rephrase=change_a_number)
    assert (stats.written, stats.skipped, stats.rephrase_rejected) == (1, 0, with_numbers)
    assert json.loads(out.read_text())["target"] == plain["target"]


def test_targets_cite_only_the_rationale_vocabulary(toy, monkeypatch):
    """With cues.yaml's own cite flags, a cue marked cite: false is never cited, and without a citable cue
    that supports the label the target says so."""
    import apallm.evidence
    from apallm.evidence.cues import cue_specs

    monkeypatch.undo()
    assert apallm.evidence.citable("hf_phase_spread") and not apallm.evidence.citable("bandwidth_hz")
    _, rows, evidence = toy
    for row in rows:
        ev = evidence[row["id"]]
        target = make_target(ev, row["label"], rng=random.Random(0), max_cues=50).text
        cited = {c.cue for c in find_claims(target)}
        assert all(cue_specs()[name].get("cite", True) for name in cited), cited
        assert check_grounding(target, ev).n_contradicted == 0
        parsed = parse_answer(target)
        for domain, text in (("frequency", parsed.frequency), ("time", parsed.time)):
            if not ev.supporting_cues(domain, row["label"], 50):
                assert text.startswith(f"no {domain}-domain cue that separates real from synthetic speech")

"""apallm eval --predictions: P(spoof) scores, label accuracy, rationale validity, consistency, error records."""

import json
import math

import numpy as np
import pytest

from apallm import metrics
from apallm.commands import main
from apallm.evaluation import (
    P_CLIP,
    DuplicateIdError,
    MalformedInputError,
    MissingIdsError,
    NonFiniteScoreError,
    SingleClassError,
    UnknownLabelError,
    bonafide_log_odds,
    evaluate_files,
)
from apallm.evidence import make_cue
from apallm.verdict import format_answer

BAND_LIMIT = make_cue("bandwidth_hz", 4000.0).phrase  # low: out of range
SILENT_PAUSES = make_cue("pause_floor_dbfs", -110.0).phrase  # low
WIDE_BAND = make_cue("bandwidth_hz", 7900.0).phrase  # normal
NOISE_FLOOR = make_cue("pause_floor_dbfs", -50.0).phrase  # normal

KEYS = ["filename\tcm-label\tattack", "b1\tbonafide\t-", "b2\tbonafide\t-", "b3\tbonafide\t-", "b4\tbonafide\t-",
        "s1\tspoof\tA01", "s2\tspoof\tA01", "s3\tspoof\tA02", "s4\tspoof\tA02"]

RECORDS = [
    # consistent bona fide: two in-range cues; valid dict rationale
    {"id": "b1", "label": "bonafide", "score": 0.1, "rationale": {"frequency": WIDE_BAND, "time": NOISE_FLOOR}},
    # inconsistent bona fide: two out-of-range cues, one in range; a valid canonical answer, label from it
    {"path": "/data/b2.flac", "score": 0.3,
     "answer": format_answer("bonafide", f"{BAND_LIMIT}; {WIDE_BAND}", SILENT_PAUSES)},
    # predicted spoof (wrong); rationale missing time: invalid; cites an anomaly: consistent
    {"id": "b3", "label": "fake", "score": 0.8, "rationale": {"frequency": BAND_LIMIT, "time": ""}},
    # the batch failed on this clip: counted, not evaluated
    {"id": "b4", "error": "UnreadableAudioError: truncated file"},
    # consistent spoof; valid
    {"id": "s1", "label": "spoof", "score": 1.0, "rationale": {"frequency": BAND_LIMIT, "time": SILENT_PAUSES}},
    # inconsistent spoof: only an in-range cue; answer without a Time line: invalid
    {"id": "s2", "label": "spoof", "score": 0.9, "answer": f"spoof\nFrequency: {WIDE_BAND}"},
    # no rationale at all, no label: label from the score (0.4 -> bonafide, wrong); unverifiable, invalid
    {"id": "s3", "score": 0.4},
    # free text the cue templates do not know: unverifiable but valid format
    {"id": "s4", "label": "spoof", "score": 0.0,
     "rationale": {"frequency": "sounds robotic", "time": "odd rhythm"}},
]


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def files(tmp_path, records=RECORDS, keys=KEYS):
    return (write(tmp_path / "p.jsonl", [json.dumps(r) for r in records]), write(tmp_path / "k.tsv", keys))


def test_bonafide_log_odds_is_documented_clipped_logit():
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    expected = [math.log((1 - P_CLIP) / P_CLIP), math.log(9), 0.0, -math.log(9), -math.log((1 - P_CLIP) / P_CLIP)]
    assert np.allclose(bonafide_log_odds(p), expected, rtol=1e-9, atol=0)


def test_predictions_metrics_rationales_consistency_and_error_records(tmp_path, capsys):
    p, k = files(tmp_path)
    code = main(["eval", "--predictions", str(p), "--keys", str(k), "--out", str(tmp_path / "o"), "--n-boot", "0"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads((tmp_path / "o" / "metrics.json").read_text())
    block = result["predictions"]

    # scores: log-odds of bona fide from P(spoof), error record b4 left out
    bona, spoof = bonafide_log_odds([0.1, 0.3, 0.8]), bonafide_log_odds([1.0, 0.9, 0.4, 0.0])
    for key, value in metrics.compute_metrics(bona, spoof).items():
        assert result[key] == value, key
    assert {r["attack"]: r["n_spoof"] for r in result["per_attack"]} == {"A01": 2, "A02": 2}

    assert (block["n_records"], block["n_scored"], block["n_errors"]) == (8, 7, 1)
    assert block["errors"] == [{"id": "b4", "line": 4, "error": "UnreadableAudioError: truncated file"}]
    # predicted: b1 bonafide, b2 bonafide (answer), b3 spoof, s1 spoof, s2 spoof, s3 bonafide (score), s4 spoof
    assert block["accuracy"] == pytest.approx(5 / 7)
    assert block["balanced_accuracy"] == pytest.approx(0.5 * (2 / 3 + 3 / 4))
    f1_bona, f1_spoof = 2 * 2 / (2 * 2 + 1 + 1), 2 * 3 / (2 * 3 + 1 + 1)
    assert block["macro_f1"] == pytest.approx(0.5 * (f1_bona + f1_spoof))
    assert block["n_labels_from_score"] == 1
    assert block["rationale"] == {"n_valid": 4, "valid_rate": pytest.approx(4 / 7)}
    cons = block["consistency"]
    assert (cons["consistent"], cons["inconsistent"], cons["unverifiable"]) == (3, 2, 2)
    assert cons["rate"] == pytest.approx(3 / 5) and cons["verifiable_rate"] == pytest.approx(5 / 7)
    assert cons["by_label"]["bonafide"]["consistent"] == 1 and cons["by_label"]["bonafide"]["inconsistent"] == 1
    assert cons["by_label"]["spoof"]["consistent"] == 2 and cons["by_label"]["spoof"]["unverifiable"] == 1
    assert "ln((1 - p) / p)" in block["score_conversion"]

    summary = (tmp_path / "o" / "summary.md").read_text()
    assert "## Predictions" in summary and "`b4` (line 4): UnreadableAudioError" in summary
    assert "3 / 2 / 2" in summary
    assert "error records 1" in out and "rationale format valid 4/7" in out


def test_error_records_may_leave_one_class(tmp_path):
    records = [{"id": "b1", "label": "bonafide", "score": 0.1}, {"id": "s1", "error": "timeout"}]
    p, k = files(tmp_path, records, ["filename\tcm-label", "b1\tbonafide", "s1\tspoof"])
    with pytest.raises(SingleClassError, match="all 1 trials are bonafide"):
        evaluate_files(predictions=p, keys=k)


@pytest.mark.parametrize("lines, error, needle", [
    (['{"id": "b1", "score": 0.2}', "not json"], MalformedInputError, "p.jsonl:2: not valid JSON"),
    (['{"id": "b1", "score": 0.2}', "[1, 2]"], MalformedInputError, "p.jsonl:2: expected a JSON object"),
    (['{"score": 0.2}'], MalformedInputError, "p.jsonl:1: the record has neither 'id' nor 'path'"),
    (['{"id": "b1", "label": "spoof"}'], MalformedInputError, "p.jsonl:1: the record has no 'score'"),
    (['{"id": "b1", "score": "high"}'], MalformedInputError, "p.jsonl:1: score 'high' is not a number"),
    (['{"id": "b1", "score": 1.5}'], MalformedInputError, "p.jsonl:1: score 1.5 is P(spoof)"),
    (['{"id": "b1", "score": NaN}', '{"id": "s1", "score": Infinity}'], NonFiniteScoreError,
     "2 score(s) are NaN or infinite: line 1 (b1: nan), line 2 (s1: inf)"),
    (['{"id": "b1", "score": 0.2, "label": "maybe"}'], UnknownLabelError, "line 1 ('maybe')"),
    (['{"id": "b1", "score": 0.2}', '{"id": "b1", "error": "x"}'], DuplicateIdError, "'b1' (lines 1, 2)"),
    (['{"id": "b1", "score": 0.2}', '{"id": "s9", "score": 0.2}'], MissingIdsError,
     "1 id(s) in the keys"),
])
def test_bad_predictions_get_specific_errors(tmp_path, capsys, lines, error, needle):
    p = write(tmp_path / "p.jsonl", lines)
    k = write(tmp_path / "k.tsv", ["filename\tcm-label", "b1\tbonafide", "s1\tspoof"])
    with pytest.raises(error) as info:
        evaluate_files(predictions=p, keys=k)
    assert needle in info.value.message
    code = main(["eval", "--predictions", str(p), "--keys", str(k), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"apallm eval: {error.__name__}: ") and "Traceback" not in err


def test_missing_ids_name_both_sides(tmp_path):
    p = write(tmp_path / "p.jsonl", ['{"id": "b1", "score": 0.2}', '{"id": "x1", "score": 0.2}',
                                     '{"id": "x2", "error": "boom"}'])
    k = write(tmp_path / "k.tsv", ["filename\tcm-label", "b1\tbonafide", "s1\tspoof"])
    with pytest.raises(MissingIdsError) as info:
        evaluate_files(predictions=p, keys=k)
    assert "1 id(s) in the keys" in info.value.message and ": s1" in info.value.message
    assert "2 id(s) in" in info.value.message and "x1, x2" in info.value.message

"""apallm.inputs: folders, list files and tables (TSV/CSV/JSONL) become items with one id scheme."""

import json
from pathlib import Path

import pytest
import soundfile as sf
from conftest import SR, speech_like

from apallm.inputs import InputError, Item, assign_ids, collect_inputs, derive_ids

REALWORLD = Path("/work/shared/data/realworld-dev/manifest.tsv")
HEADER = "path\tlabel\tsystem\tsource_repo\tlicense\tduration_s\tsample_rate\tchannels\tnotes\tsource_commit\n"


def tree(root):
    """Repeated stems in several folders, as real corpora have them."""
    for sub in ("a", "b", "c/d"):
        (root / sub).mkdir(parents=True)
        sf.write(root / sub / "00001.wav", speech_like(0.3, seed=len(sub)), SR)
    return root


def test_a_folder_gives_one_item_per_file_named_by_its_path_below_the_folder(tmp_path):
    root = tree(tmp_path / "clips")
    sf.write(root / "a" / "00001.flac", speech_like(0.3), SR)  # same path but the suffix: numbered
    (root / "a" / "notes.txt").write_text("not audio")
    items = collect_inputs(root)
    assert [i.id for i in items] == ["a/00001", "a/00001#1", "b/00001", "c/d/00001"]
    assert items[0] == Item("a/00001", str(root / "a" / "00001.flac"))
    assert all(i.label is None and i.meta == {} for i in items)


def test_a_plain_path_label_tsv_with_free_label_spellings(tmp_path):
    tree(tmp_path / "audio")
    table = tmp_path / "clips.tsv"
    table.write_text("path\tlabel\naudio/a/00001.wav\tbona fide\naudio/b/00001.wav\tFake\naudio/c/d/00001.wav\t\n")
    items = collect_inputs(table)
    assert [(i.id, i.label) for i in items] == [
        ("audio/a/00001", "bonafide"), ("audio/b/00001", "spoof"), ("audio/c/d/00001", None)]
    assert items[0].path == str(tmp_path / "audio" / "a" / "00001.wav") and items[0].meta == {}


def test_a_realworld_dev_shaped_tsv_keeps_its_other_columns_as_meta(tmp_path):
    tree(tmp_path / "audio")
    table = tmp_path / "manifest.tsv"
    table.write_text(HEADER + "audio/a/00001.wav\tbonafide\tground_truth\to/r\tCC-BY-4.0\t0.3\t16000\t1\t\tabc\n"
                     "audio/b/00001.wav\tspoof\tvits\to/r\tCC-BY-4.0\t0.3\t16000\t1\tTTS\tabc\n")
    items = collect_inputs(table)
    assert [i.id for i in items] == ["audio/a/00001", "audio/b/00001"]
    assert items[1].meta == {"system": "vits", "source_repo": "o/r", "license": "CC-BY-4.0", "duration_s": "0.3",
                             "sample_rate": "16000", "channels": "1", "notes": "TTS", "source_commit": "abc"}
    assert items[0].meta["notes"] is None  # an empty cell


def test_csv_and_jsonl_tables_and_an_id_column(tmp_path):
    (tmp_path / "t.csv").write_text("id,path,label,speaker\nLA_1,x/1.wav,spoof,s1\n,x/2.wav,real,s2\n")
    assert [(i.id, i.label, i.meta) for i in collect_inputs(tmp_path / "t.csv")] == [
        ("LA_1", "spoof", {"speaker": "s1"}), ("x/2", "bonafide", {"speaker": "s2"})]
    (tmp_path / "t.jsonl").write_text(json.dumps({"path": "x/1.wav", "label": "deepfake", "system": "vits"}) + "\n"
                                      + json.dumps({"id": 7, "path": "y/1.wav"}) + "\n")
    assert [(i.id, i.label, i.meta) for i in collect_inputs(tmp_path / "t.jsonl")] == [
        ("x/1", "spoof", {"system": "vits"}), ("7", None, {})]


def test_ids_are_never_absolute_and_never_only_the_stem(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    listing = lists / "clips.txt"
    listing.write_text(f"# clips\n{tmp_path / 'x' / '00001.wav'}\n{tmp_path / 'y' / '00001.wav'}\nlocal/00001.wav\n"
                       f"{tmp_path / 'x' / '00001.wav'}\n\n")
    ids = [i.id for i in collect_inputs(listing)]
    assert ids == ["x/00001", "y/00001", "local/00001", "x/00001#1"]
    assert derive_ids(["/data/x/1.wav", "sub/2.wav"], "/data/lists") == ["x/1", "sub/2"]
    assert derive_ids(["../a/b.flac"], "/data/lists") == ["a/b"]
    # explicit ids are kept; a derived id that repeats one gets a number
    assert assign_ids(["a", None, None], ["q.wav", "a.wav", "a.flac"], "/d") == ["a", "a#1", "a#2"]


def test_unknown_labels_and_repeated_ids_are_clear_errors(tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text("path\tlabel\na.wav\tbonafide\nb.wav\tmaybe\n")
    with pytest.raises(InputError, match=r"t.tsv:3: label 'maybe' is neither bonafide nor spoof") as err:
        collect_inputs(table)
    assert err.value.line == 3
    table.write_text("id\tpath\nk1\ta.wav\nk2\tb.wav\nk1\tc.wav\n")
    with pytest.raises(InputError, match=r"t.tsv:4: id 'k1' is used twice: lines 2 and 4"):
        collect_inputs(table)
    table.write_text("file\tlabel\na.wav\tspoof\n")
    with pytest.raises(InputError, match="needs a 'path' column"):
        collect_inputs(table)
    table.write_text("path\tlabel\na.wav\tspoof\textra\n\tspoof\n")
    errors = []
    assert collect_inputs(table, errors=errors) == []  # with an error list, bad rows are skipped and reported
    assert [(e.line, e.message) for e in errors] == [(2, "1 more cell(s) than header columns"),
                                                     (3, "the row has no 'path'")]
    with pytest.raises(FileNotFoundError):
        collect_inputs(tmp_path / "none")
    (tmp_path / "t.yaml").write_text("path: a.wav\n")
    with pytest.raises(InputError, match="unknown input kind '.yaml'"):
        collect_inputs(tmp_path / "t.yaml")


@pytest.mark.skipif(not REALWORLD.is_file(), reason="the shared realworld-dev data is not on this machine")
def test_the_realworld_dev_manifest_as_it_is():
    items = collect_inputs(REALWORLD)
    assert len(items) == len(REALWORLD.read_text().splitlines()) - 1
    assert len({i.id for i in items}) == len(items)
    assert {i.label for i in items} == {"bonafide", "spoof"}
    assert all(not i.id.startswith("/") and "/" in i.id and Path(i.path).is_file() for i in items)
    assert {"system", "source_repo"} <= set(items[0].meta)

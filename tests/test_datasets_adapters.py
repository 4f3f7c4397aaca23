"""Each corpus adapter on protocol fixtures written in the corpus's published line format
(tests/fixtures/datasets), with tiny audio files generated here where an adapter looks at files."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from apallm.datasets import (
    ADAPTERS,
    DatasetError,
    LayoutError,
    ProtocolError,
    Segment,
    build_manifest,
    read_manifest,
    write_manifest,
)
from apallm.datasets.adapters.partialspoof import frames_to_segments
from apallm.datasets.adapters.project_corpora import corpus_root

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"


def corpus(tmp_path, name):
    """A writable copy of one fixture corpus."""
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def write_audio(path, seconds=0.5, sr=16_000):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    return path


def by_id(entries):
    return {e.id: e for e in entries}


# --------------------------------------------------------------------------------------------- ASVspoof 2019

def test_asvspoof2019_reads_every_split_with_paths_attacks_and_speakers(tmp_path):
    root = corpus(tmp_path, "asvspoof2019")
    entries = build_manifest("asvspoof2019_la", root, probe=False)
    assert [e.id for e in entries] == ["LA_T_1138215", "LA_T_1271820", "LA_T_1485023", "LA_D_1047731",
                                       "LA_D_1105538", "LA_E_2834763", "LA_E_8688292", "LA_E_4512336"]
    e = by_id(entries)
    assert (e["LA_T_1138215"].label, e["LA_T_1138215"].attack, e["LA_T_1138215"].speaker) == ("bonafide", "bonafide",
                                                                                                "LA_0079")
    assert (e["LA_T_1271820"].label, e["LA_T_1271820"].attack) == ("spoof", "A01")
    assert e["LA_E_4512336"].attack == "A19" and e["LA_E_4512336"].split == "eval"
    assert e["LA_D_1105538"].path == str(root.resolve() / "LA" / "ASVspoof2019_LA_dev" / "flac" / "LA_D_1105538.flac")
    assert {x.dataset for x in entries} == {"asvspoof2019_la"} and {x.language for x in entries} == {"en"}
    assert all(x.duration is None and x.sample_rate is None for x in entries)


def test_asvspoof2019_split_option_and_la_folder_as_root(tmp_path):
    root = corpus(tmp_path, "asvspoof2019")
    dev = build_manifest("asvspoof2019_la", root / "LA", split="dev", probe=False)
    assert [(x.id, x.split) for x in dev] == [("LA_D_1047731", "dev"), ("LA_D_1105538", "dev")]


def test_asvspoof2019_probe_fills_duration_and_rate_only_where_audio_exists(tmp_path):
    root = corpus(tmp_path, "asvspoof2019")
    write_audio(root / "LA" / "ASVspoof2019_LA_train" / "flac" / "LA_T_1138215.flac", seconds=1.25)
    e = by_id(build_manifest("asvspoof2019_la", root, split="train"))
    assert e["LA_T_1138215"].duration == pytest.approx(1.25) and e["LA_T_1138215"].sample_rate == 16_000
    assert e["LA_T_1271820"].duration is None and e["LA_T_1271820"].sample_rate is None


def test_asvspoof2019_malformed_line_names_file_and_line(tmp_path):
    root = corpus(tmp_path, "asvspoof2019")
    protocol = root / "LA" / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt"
    protocol.write_text("LA_0069 LA_D_1047731 - - bonafide\n\nLA_0069 LA_D_1105538 A05 spoof\n")
    with pytest.raises(ProtocolError) as err:
        build_manifest("asvspoof2019_la", root, split="dev")
    assert err.value.source == str(protocol) and err.value.line == 3
    assert f"{protocol}:3: expected 5 columns, found 4" in str(err.value)


def test_asvspoof2019_shifted_system_column_is_refused(tmp_path):
    root = corpus(tmp_path, "asvspoof2019")
    protocol = root / "LA" / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.train.trn.txt"
    protocol.write_text("LA_0079 LA_T_1271820 - - spoof\n")
    with pytest.raises(ProtocolError, match="SYSTEM_ID '-' does not fit key 'spoof'"):
        build_manifest("asvspoof2019_la", root, split="train")
    protocol.write_text("LA_0079 LA_T_1271820 - A01 genuine\n")
    with pytest.raises(ProtocolError, match="key must be 'bonafide' or 'spoof', got 'genuine'"):
        build_manifest("asvspoof2019_la", root, split="train")


def test_asvspoof2019_missing_protocol_folder_says_where_it_looked(tmp_path):
    with pytest.raises(LayoutError, match="ASVspoof2019_LA_cm_protocols"):
        build_manifest("asvspoof2019_la", tmp_path)


# --------------------------------------------------------------------------------------------- ASVspoof 2021

def test_asvspoof2021_la_keys_eight_columns_with_subsets(tmp_path):
    root = corpus(tmp_path, "asvspoof2021")
    entries = build_manifest("asvspoof2021_la", root, probe=False)
    e = by_id(entries)
    assert [x.split for x in entries] == ["eval", "progress", "eval", "hidden"]
    assert (e["LA_E_7294490"].label, e["LA_E_7294490"].attack, e["LA_E_7294490"].speaker) == ("bonafide", "bonafide",
                                                                                                "LA_0020")
    assert (e["LA_E_9332881"].label, e["LA_E_9332881"].attack) == ("spoof", "A07")
    assert e["LA_E_9332881"].path == str(root.resolve() / "ASVspoof2021_LA_eval" / "flac" / "LA_E_9332881.flac")
    assert [x.id for x in build_manifest("asvspoof2021_la", root, split="eval", probe=False)] == [
        "LA_E_9332881", "LA_E_7294490"]


def test_asvspoof2021_df_keys_thirteen_columns_and_dash_attack_for_bona_fide(tmp_path):
    root = corpus(tmp_path, "asvspoof2021")
    e = by_id(build_manifest("asvspoof2021_df", root, probe=False))
    assert e["DF_E_2000013"].attack == "Task1-team20" and e["DF_E_2000013"].speaker == "TEF2"
    assert e["DF_E_2000011"].attack == "A14" and e["DF_E_2000011"].split == "progress"
    assert (e["DF_E_2088017"].label, e["DF_E_2088017"].attack) == ("bonafide", "bonafide")
    assert e["DF_E_2000034"].path.endswith("ASVspoof2021_DF_eval/flac/DF_E_2000034.flac")
    assert {x.dataset for x in e.values()} == {"asvspoof2021_df"}


def test_asvspoof2021_df_reader_refuses_an_la_key_file(tmp_path):
    root = corpus(tmp_path, "asvspoof2021")
    df_keys = root / "DF-keys-full" / "keys" / "DF" / "CM" / "trial_metadata.txt"
    shutil.copy(root / "LA-keys-full" / "keys" / "LA" / "CM" / "trial_metadata.txt", df_keys)
    with pytest.raises(ProtocolError, match="expected 13 columns, found 8") as err:
        build_manifest("asvspoof2021_df", root)
    assert err.value.line == 1


def test_asvspoof2021_attack_key_mismatch_and_unknown_subset(tmp_path):
    root = corpus(tmp_path, "asvspoof2021")
    keys = root / "LA-keys-full" / "keys" / "LA" / "CM" / "trial_metadata.txt"
    keys.write_text("LA_0020 LA_E_7294490 g722 loc_tx bonafide spoof notrim eval\n")
    with pytest.raises(ProtocolError, match="attack 'bonafide' does not fit key 'spoof'"):
        build_manifest("asvspoof2021_la", root)
    keys.write_text("LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim final\n")
    with pytest.raises(ProtocolError, match="subset must be one of eval, progress, hidden"):
        build_manifest("asvspoof2021_la", root)


# --------------------------------------------------------------------------------------------- ASVspoof 5

def test_asvspoof5_ten_column_protocols(tmp_path):
    root = corpus(tmp_path, "asvspoof5")
    entries = build_manifest("asvspoof5", root, probe=False)
    e = by_id(entries)
    assert len(entries) == 8
    assert (e["D_0000000169"].label, e["D_0000000169"].attack, e["D_0000000169"].speaker) == ("spoof", "A14", "D_4461")
    assert (e["T_0000000000"].label, e["T_0000000000"].attack) == ("bonafide", "bonafide")
    assert e["E_0000000001"].attack == "A28" and e["E_0000000001"].split == "eval"
    assert e["T_0000000001"].path == str(root.resolve() / "flac_T" / "T_0000000001.flac")
    assert e["E_0000000002"].path == str(root.resolve() / "flac_E_eval" / "E_0000000002.flac")


def test_asvspoof5_nested_audio_folders_and_key_mismatch(tmp_path):
    root = corpus(tmp_path, "asvspoof5")
    (root / "ASVspoof5_dev" / "flac_D").mkdir(parents=True)
    dev = build_manifest("asvspoof5", root, split="dev", probe=False)
    assert dev[0].path == str(root.resolve() / "ASVspoof5_dev" / "flac_D" / "D_0000000169.flac")
    (root / "ASVspoof5_protocols" / "ASVspoof5.dev.track_1.tsv").write_text(
        "D_4461 D_0000000169 F - - - AC1 A14 spoof -\nD_0461 D_0000000190 M - - - - A14 bonafide -\n")
    with pytest.raises(ProtocolError, match="ATTACK_LABEL 'A14' does not fit KEY 'bonafide'") as err:
        build_manifest("asvspoof5", root, split="dev")
    assert err.value.line == 2


# --------------------------------------------------------------------------------------------- In-the-Wild

def test_in_the_wild_meta_csv(tmp_path):
    root = corpus(tmp_path, "in_the_wild")
    entries = build_manifest("in_the_wild", root, probe=False)
    assert [(x.id, x.label, x.speaker) for x in entries] == [
        ("0", "spoof", "Alec Guinness"), ("1", "spoof", "Alec Guinness"), ("2", "bonafide", "Barack Obama"),
        ("3", "bonafide", "Martin Luther King, Jr.")]
    assert entries[0].attack is None and entries[2].attack == "bonafide" and entries[0].split is None
    assert entries[0].path == str(root.resolve() / "release_in_the_wild" / "0.wav")


def test_in_the_wild_refuses_other_label_words_and_headers(tmp_path):
    root = corpus(tmp_path, "in_the_wild")
    meta = root / "release_in_the_wild" / "meta.csv"
    meta.write_text("file,speaker,label\n0.wav,Alec Guinness,bonafide\n")
    with pytest.raises(ProtocolError, match="key must be 'bona-fide' or 'spoof', got 'bonafide'") as err:
        build_manifest("in_the_wild", root)
    assert err.value.line == 2
    meta.write_text("file,label\n0.wav,spoof\n")
    with pytest.raises(ProtocolError, match="header must be file,speaker,label"):
        build_manifest("in_the_wild", root)


# --------------------------------------------------------------------------------------------- Codecfake

def test_codecfake_label_files(tmp_path):
    root = corpus(tmp_path, "codecfake")
    entries = build_manifest("codecfake", root, probe=False)
    e = by_id(entries)
    assert [x.split for x in entries] == ["train"] * 5 + ["dev"] * 2 + ["C7"] * 2
    assert (e["train/SSB13650058"].label, e["train/SSB13650058"].attack) == ("bonafide", "bonafide")
    assert (e["train/F02_SSB13650058"].label, e["train/F02_SSB13650058"].attack) == ("spoof", "F02")
    assert e["train/F06_p225_001"].attack == "F06" and e["dev/F03_SSB07270101"].attack == "F03"
    assert e["C7/p226_003_C7"].attack == "C7"
    assert e["train/F01_SSB13650058"].path == str(root.resolve() / "train" / "F01_SSB13650058.wav")
    assert e["C7/p226_003"].path == str(root.resolve() / "test" / "C7" / "p226_003.wav")


def test_codecfake_test_set_at_root_and_bad_lines(tmp_path):
    root = corpus(tmp_path, "codecfake")
    (root / "C7").mkdir()
    assert build_manifest("codecfake", root, split="C7", probe=False)[0].path == str(root.resolve() / "C7" /
                                                                                      "p226_003.wav")
    (root / "label" / "dev.txt").write_text("SSB07270101.wav real 0\nF03_SSB07270101.wav spoof 3\n")
    with pytest.raises(ProtocolError, match="key must be 'real' or 'fake', got 'spoof'"):
        build_manifest("codecfake", root, split="dev")
    (root / "label" / "dev.txt").write_text("F03_SSB07270101.wav fake three\n")
    with pytest.raises(ProtocolError, match="codec index must be a number"):
        build_manifest("codecfake", root, split="dev")
    with pytest.raises(LayoutError, match="no label file"):
        build_manifest("codecfake", root, split="A1")


# --------------------------------------------------------------------------------------------- MLAAD

def test_mlaad_meta_csv_per_model_folder(tmp_path):
    root = corpus(tmp_path, "mlaad")
    entries = build_manifest("mlaad", root, probe=False)
    e = by_id(entries)
    assert list(e) == ["de/tts_models_de_thorsten_vits/thorsten_vits_0001",
                       "de/tts_models_de_thorsten_vits/thorsten_vits_0002", "en/facebook_mms-tts-eng/mms_eng_0001"]
    first = e["de/tts_models_de_thorsten_vits/thorsten_vits_0001"]
    assert (first.label, first.attack, first.language) == ("spoof", "tts_models/de/thorsten/vits", "de")
    assert first.path == str(root.resolve() / "fake" / "de" / "tts_models_de_thorsten_vits" / "thorsten_vits_0001.wav")
    assert e["en/facebook_mms-tts-eng/mms_eng_0001"].attack == "facebook/mms-tts-eng"


def test_mlaad_with_mailabs_bona_fide(tmp_path):
    root = corpus(tmp_path, "mlaad")
    mailabs = tmp_path / "M-AILABS"
    write_audio(mailabs / "en_US/by_book/female/judy_bieber/ozma_of_oz/wavs/ozma_of_oz_01_f000012.wav")
    write_audio(mailabs / "de_DE/by_book/mix/grune_haus/wavs/grune_haus_01_f000001.wav")
    entries = build_manifest("mlaad", root, mailabs=str(mailabs))
    bona = [x for x in entries if x.label == "bonafide"]
    assert [(x.id, x.speaker, x.language) for x in bona] == [
        ("m-ailabs/de_DE/by_book/mix/grune_haus/wavs/grune_haus_01_f000001", None, "de"),
        ("m-ailabs/en_US/by_book/female/judy_bieber/ozma_of_oz/wavs/ozma_of_oz_01_f000012", "judy_bieber", "en")]
    assert bona[0].duration == pytest.approx(0.5) and len(entries) == 5
    with pytest.raises(LayoutError, match="no M-AILABS audio"):
        build_manifest("mlaad", root, mailabs=str(tmp_path / "empty"))


def test_mlaad_without_path_column_is_refused(tmp_path):
    root = corpus(tmp_path, "mlaad")
    (root / "fake/en/facebook_mms-tts-eng/meta.csv").write_text("file|language\nmms_eng_0001.wav|en\n")
    with pytest.raises(ProtocolError, match="no 'path' column"):
        build_manifest("mlaad", root)


# --------------------------------------------------------------------------------------------- Fake-or-Real

def test_fake_or_real_versions_splits_and_labels(tmp_path):
    root = tmp_path / "FoR"
    for version in ("for-norm", "for-2sec"):
        write_audio(root / version / "training" / "real" / "file1.wav")
        write_audio(root / version / "training" / "fake" / "file2.wav_16k.wav")
        write_audio(root / version / "testing" / "fake" / "file3.wav")
    write_audio(root / "for-norm" / "validation" / "real" / "file4.flac")
    (root / "for-norm" / "training" / "real" / "notes.txt").write_text("not audio")
    entries = build_manifest("fake_or_real", root)
    assert [(x.id, x.label, x.split) for x in entries if x.id.startswith("for-norm")] == [
        ("for-norm/training/real/file1", "bonafide", "train"),
        ("for-norm/training/fake/file2.wav_16k", "spoof", "train"),
        ("for-norm/validation/real/file4", "bonafide", "dev"), ("for-norm/testing/fake/file3", "spoof", "eval")]
    assert len(entries) == 7 and all(x.sample_rate == 16_000 for x in entries)
    only = build_manifest("fake_or_real", root, split="eval", version="for-2sec", probe=False)
    assert [x.id for x in only] == ["for-2sec/testing/fake/file3"]
    one_version = build_manifest("fake_or_real", root / "for-norm", split="dev", probe=False)
    assert [x.id for x in one_version] == ["validation/real/file4"]
    with pytest.raises(LayoutError, match="no Fake-or-Real version folder"):
        build_manifest("fake_or_real", root, version="for-rerec")


# --------------------------------------------------------------------------------------------- WaveFake

def test_wavefake_sets_and_bona_fide_sources(tmp_path):
    root = tmp_path / "WaveFake"
    write_audio(root / "generated_audio" / "ljspeech_melgan" / "LJ001-0001_gen.wav")
    write_audio(root / "generated_audio" / "jsut_parallel_wavegan" / "BASIC5000_0001_gen.wav")
    write_audio(root / "LJSpeech-1.1" / "wavs" / "LJ001-0001.wav")
    write_audio(root / "jsut_ver1.1" / "basic5000" / "wav" / "BASIC5000_0001.wav")
    e = by_id(build_manifest("wavefake", root, probe=False))
    assert list(e) == ["jsut_parallel_wavegan/BASIC5000_0001_gen", "ljspeech_melgan/LJ001-0001_gen",
                       "LJSpeech/LJ001-0001", "JSUT/basic5000/BASIC5000_0001"]
    fake_ja = e["jsut_parallel_wavegan/BASIC5000_0001_gen"]
    assert (fake_ja.label, fake_ja.attack, fake_ja.language, fake_ja.speaker) == ("spoof", "jsut_parallel_wavegan",
                                                                                  "ja", "JSUT")
    assert (e["ljspeech_melgan/LJ001-0001_gen"].attack, e["ljspeech_melgan/LJ001-0001_gen"].language) == (
        "ljspeech_melgan", "en")
    assert e["LJSpeech/LJ001-0001"].label == "bonafide" and e["LJSpeech/LJ001-0001"].speaker == "LJ"
    assert e["JSUT/basic5000/BASIC5000_0001"].language == "ja"
    with pytest.raises(LayoutError, match="LJSpeech folder"):
        build_manifest("wavefake", root, ljspeech=str(tmp_path / "nowhere"))


# --------------------------------------------------------------------------------------------- PartialSpoof

def test_partialspoof_protocol_with_con_attack(tmp_path):
    root = corpus(tmp_path, "partialspoof")
    entries = build_manifest("partialspoof", root, split="train", probe=False)
    assert [(x.id, x.label, x.attack) for x in entries] == [
        ("CON_T_0000029", "spoof", "CON"), ("CON_T_0000069", "spoof", "CON"), ("LA_T_9497115", "bonafide", "bonafide")]
    assert entries[0].path == str(root.resolve() / "database" / "train" / "con_wav" / "CON_T_0000029.wav")
    assert all(x.segments is None for x in entries)


def test_partialspoof_rttm_segments(tmp_path):
    root = corpus(tmp_path, "partialspoof")
    e = by_id(build_manifest("partialspoof", root / "database", split="dev", segments="rttm", probe=False))
    assert e["CON_D_0000000"].segments == (Segment(0.0, 1.12, "bonafide"), Segment(1.12, 1.7, "spoof"),
                                           Segment(1.7, 2.6, "bonafide"))
    assert e["LA_D_1105538"].segments == (Segment(0.0, 2.31, "bonafide"),)
    with pytest.raises(LayoutError, match="rttm_2cls_0sil"):
        build_manifest("partialspoof", root, split="train", segments="rttm")


def test_partialspoof_rttm_unknown_label_is_refused(tmp_path):
    root = corpus(tmp_path, "partialspoof")
    rttm = root / "database" / "dev" / "con_data" / "rttm_2cls_0sil"
    rttm.write_text("SPEAKER CON_D_0000000 1 0.00000 1.12000 <NA> <NA> nonspeech <NA> <NA>\n")
    with pytest.raises(ProtocolError, match="got 'nonspeech'") as err:
        build_manifest("partialspoof", root, split="dev", segments="rttm")
    assert err.value.line == 1


def test_partialspoof_frame_labels_from_npz_and_pickled_npy_refused(tmp_path):
    root = corpus(tmp_path, "partialspoof")
    labels = root / "database" / "segment_labels"
    labels.mkdir()
    np.savez(labels / "dev_seglab_0.16.npz", CON_D_0000000=np.array(["1", "1", "0", "0", "0", "1"]),
             LA_D_1105538=np.array(["1", "1", "1"]))
    e = by_id(build_manifest("partialspoof", root, split="dev", segments="0.16", probe=False))
    assert e["CON_D_0000000"].segments == (Segment(0.0, 0.32, "bonafide"), Segment(0.32, 0.8, "spoof"),
                                           Segment(0.8, 0.96, "bonafide"))
    assert e["LA_D_1105538"].segments == (Segment(0.0, 0.48, "bonafide"),)

    # the published form: a dict saved as a pickled object array; it must be refused, never unpickled
    np.save(labels / "train_seglab_0.16.npy", {"CON_T_0000029": np.array(["1", "0"])}, allow_pickle=True)
    with pytest.raises(DatasetError, match="pickled Python object") as err:
        build_manifest("partialspoof", root, split="train", segments="0.16")
    assert err.value.source.endswith("train_seglab_0.16.npy")
    with pytest.raises(DatasetError, match="segments must be 'rttm' or one of"):
        build_manifest("partialspoof", root, split="dev", segments="0.05")


def test_frames_to_segments_run_lengths():
    assert frames_to_segments(np.array([1, 1, 0]), 0.02) == (Segment(0.0, 0.04, "bonafide"), Segment(0.04, 0.06,
                                                                                                     "spoof"))
    assert frames_to_segments(np.array([], dtype=str), 0.02) == ()
    with pytest.raises(ValueError, match="frame label must be '0' or '1'"):
        frames_to_segments(np.array(["1", "2"]), 0.02)


# --------------------------------------------------------------------------------------------- generic

def test_generic_folder_labels_and_splits_from_folder_names(tmp_path):
    root = tmp_path / "corpus"
    write_audio(root / "train" / "Real" / "a.wav")
    write_audio(root / "train" / "fake" / "tts1" / "b.flac")
    write_audio(root / "test" / "spoof" / "c.wav")
    write_audio(root / "bonafide" / "d.wav")
    write_audio(root / "real" / "vocoded" / "spoof" / "e.wav")  # the nearest label folder decides
    e = by_id(build_manifest("generic", root, probe=False, dataset="mycorpus"))
    assert {k: (v.label, v.split) for k, v in e.items()} == {
        "bonafide/d": ("bonafide", None), "real/vocoded/spoof/e": ("spoof", None), "test/spoof/c": ("spoof", "eval"),
        "train/Real/a": ("bonafide", "train"), "train/fake/tts1/b": ("spoof", "train")}
    assert {v.dataset for v in e.values()} == {"mycorpus"}
    assert [x.id for x in build_manifest("generic", root, split="eval", probe=False)] == ["test/spoof/c"]
    write_audio(root / "noise" / "e.wav")
    with pytest.raises(LayoutError, match=r"1 audio file\(s\) have no label folder"):
        build_manifest("generic", root)


def test_generic_csv_list(tmp_path):
    root = corpus(tmp_path, "generic")
    entries = build_manifest("generic", root / "list.csv", probe=False)
    assert [(x.id, x.label, x.attack, x.speaker, x.split) for x in entries] == [
        ("audio/0001", "bonafide", "bonafide", "spk1", "train"), ("audio/0002", "spoof", "elevenlabs", "spk1", "train"),
        ("audio/0003", "bonafide", "bonafide", "spk2", "eval")]
    assert entries[0].path == str(root.resolve() / "audio" / "0001.wav")
    (root / "list.csv").write_text("path,label\naudio/0001.wav,maybe\n")
    with pytest.raises(ProtocolError, match="label 'maybe' is neither bonafide nor spoof") as err:
        build_manifest("generic", root / "list.csv")
    assert err.value.line == 2
    (root / "list.csv").write_text("file,label\naudio/0001.wav,real\n")
    with pytest.raises(ProtocolError, match="header needs path and label"):
        build_manifest("generic", root / "list.csv")


def test_generic_list_takes_extra_columns_and_names_clips_relative_to_the_list(tmp_path):
    # a realworld-dev-shaped TSV: extra columns, 'bona fide' spelled freely, repeated stems, absolute paths
    for sub in ("a", "b", "c/d"):
        write_audio(tmp_path / "data" / "audio" / sub / "00001.wav")
    far = tmp_path / "elsewhere" / "x" / "00001.wav"
    write_audio(far)
    table = tmp_path / "data" / "manifest.tsv"
    table.write_text("path\tlabel\tsystem\tsource_repo\tnotes\n"
                     "audio/a/00001.wav\tbona fide\tground_truth\towner/repo\tfrom a page\n"
                     f"{tmp_path / 'data' / 'audio' / 'b' / '00001.wav'}\tfake\tvits\towner/repo\t\n"
                     "audio/c/d/00001.wav\tspoof\tvits\towner/repo\tx\n"
                     f"{far}\treal\tground_truth\tother/repo\t\n")
    entries = build_manifest("generic", table, probe=False)
    assert [(x.id, x.label, x.attack) for x in entries] == [
        ("audio/a/00001", "bonafide", "bonafide"), ("audio/b/00001", "spoof", None),
        ("audio/c/d/00001", "spoof", None), ("elsewhere/x/00001", "bonafide", "bonafide")]
    assert not any(x.id.startswith("/") for x in entries)
    table.write_text("id\tpath\tlabel\nk1\taudio/a/00001.wav\tspoof\nk1\taudio/b/00001.wav\tspoof\n")
    with pytest.raises(ProtocolError, match="id 'k1' is used twice: lines 2 and 3"):
        build_manifest("generic", table, probe=False)


# --------------------------------------------------------------------------------------------- registry

def test_registry_checks_adapter_split_option_and_root(tmp_path):
    root = corpus(tmp_path, "asvspoof2019")
    assert set(ADAPTERS) == {"asvspoof2019_la", "asvspoof2021_la", "asvspoof2021_df", "asvspoof5", "in_the_wild",
                             "codecfake", "mlaad", "fake_or_real", "wavefake", "partialspoof", "generic",
                             "realworld-dev", "train-corpus"}
    with pytest.raises(DatasetError, match="unknown adapter 'asvspoof2017'"):
        build_manifest("asvspoof2017", root)
    with pytest.raises(DatasetError, match="has splits train, dev, eval, not 'test'"):
        build_manifest("asvspoof2019_la", root, split="test")
    with pytest.raises(DatasetError, match="has no splits, not 'train'"):
        build_manifest("in_the_wild", root, split="train")
    with pytest.raises(DatasetError, match="has no options, not mailabs"):
        build_manifest("asvspoof2019_la", root, mailabs="/x")
    with pytest.raises(LayoutError, match="no such file or folder"):
        build_manifest("asvspoof2019_la", tmp_path / "absent")
    (root / "LA" / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt").write_text("\n")
    with pytest.raises(LayoutError, match="found no entries in split dev"):
        build_manifest("asvspoof2019_la", root, split="dev")


# --------------------------------------------------------------------------------------------- the project's corpora

CORPUS_COLUMNS = "path\tlabel\tsystem\tsource_repo\tlicense\tduration_s\tsample_rate\tchannels\tnotes\tsource_commit"


def project_corpus(root, rows):
    """A folder laid out as realworld-dev and train-corpus are: manifest.tsv (their columns) and audio/<source>/."""
    lines = [CORPUS_COLUMNS]
    for path, label, system, source in rows:
        write_audio(root / path)
        lines.append(f"{path}\t{label}\t{system}\t{source}\tCC-BY-4.0\t0.500\t16000\t1\tmade here\t{'0' * 40}")
    (root / "manifest.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("name", ["realworld-dev", "train-corpus"])
def test_project_corpora_give_each_clip_its_label_attack_and_source(tmp_path, name):
    root = project_corpus(tmp_path / name, [
        ("audio/vits-demo/wavs/ms_01_gt.wav", "bonafide", "ground_truth", "jaywalnut310/vits-demo"),
        ("audio/vits-demo/wavs/ms_01_vits.wav", "spoof", "vits", "jaywalnut310/vits-demo"),
        ("audio/Resemblyzer/84-121123-0000.flac", "bonafide", "libritts(name_pattern)", "resemble-ai/Resemblyzer"),
        ("audio/mobilespeech/a/0.flac", "spoof", "", "MobileSpeech/MobileSpeech.github.io")])
    entries = build_manifest(name, root)
    assert [(e.id, e.label, e.attack, e.source, e.dataset, e.split) for e in entries] == [
        ("audio/vits-demo/wavs/ms_01_gt.wav", "bonafide", "bonafide", "jaywalnut310/vits-demo", name, None),
        ("audio/vits-demo/wavs/ms_01_vits.wav", "spoof", "vits", "jaywalnut310/vits-demo", name, None),
        ("audio/Resemblyzer/84-121123-0000.flac", "bonafide", "bonafide", "resemble-ai/Resemblyzer", name, None),
        ("audio/mobilespeech/a/0.flac", "spoof", None, "MobileSpeech/MobileSpeech.github.io", name, None)]
    assert entries[1].path == str(root.resolve() / "audio" / "vits-demo" / "wavs" / "ms_01_vits.wav")
    assert (entries[2].duration, entries[2].sample_rate) == (0.5, 16_000)  # probed from the file
    for suffix in ("jsonl", "tsv"):  # the source survives a manifest file
        write_manifest(entries, tmp_path / f"m.{suffix}")
        assert read_manifest(tmp_path / f"m.{suffix}") == entries


def test_project_corpora_refuse_bad_rows_with_their_line_and_missing_manifests(tmp_path):
    root = project_corpus(tmp_path / "realworld-dev", [
        ("audio/a/gt.wav", "bonafide", "ground_truth", "o/a"), ("audio/a/x.wav", "fake", "vits", "o/a")])
    with pytest.raises(ProtocolError, match="key must be 'bonafide' or 'spoof', got 'fake'") as err:
        build_manifest("realworld-dev", root, probe=False)
    assert err.value.line == 3
    (root / "manifest.tsv").write_text("path\tlabel\tsystem\naudio/a/gt.wav\tbonafide\tground_truth\n")
    with pytest.raises(ProtocolError, match="missing source_repo"):
        build_manifest("train-corpus", root, probe=False)
    (root / "manifest.tsv").write_text(CORPUS_COLUMNS + "\naudio/a/gt.wav\tbonafide\n")
    with pytest.raises(ProtocolError, match="tab-separated cells") as err:
        build_manifest("realworld-dev", root, probe=False)
    assert err.value.line == 2
    (root / "manifest.tsv").unlink()
    with pytest.raises(LayoutError, match="cannot find the train-corpus manifest"):
        build_manifest("train-corpus", root, probe=False)


def test_corpus_root_takes_the_argument_then_the_environment_and_says_none_when_absent(tmp_path, monkeypatch):
    here = project_corpus(tmp_path / "here", [("audio/a/gt.wav", "bonafide", "ground_truth", "o/a")])
    there = project_corpus(tmp_path / "there", [("audio/a/gt.wav", "bonafide", "ground_truth", "o/a")])
    monkeypatch.setenv("APALLM_TRAIN_CORPUS", str(there))
    assert corpus_root("train-corpus") == there
    assert corpus_root("train-corpus", here) == here
    assert corpus_root("train-corpus", tmp_path / "absent") is None
    monkeypatch.setenv("APALLM_TRAIN_CORPUS", str(tmp_path / "absent"))
    assert corpus_root("train-corpus") is None
    with pytest.raises(DatasetError, match="unknown project corpus 'realworld'"):
        corpus_root("realworld")


@pytest.mark.parametrize("name, clips, bonafide, spoof, sources", [
    ("realworld-dev", 282, 131, 151, 4), ("train-corpus", 1806, 908, 898, 28)])
def test_the_project_corpora_as_they_are(name, clips, bonafide, spoof, sources):
    root = corpus_root(name)
    if root is None:
        pytest.skip(f"{name} is not on this machine (../shared/data/{name} or its environment variable)")
    entries = build_manifest(name, root, probe=False)
    assert len(entries) == clips and len({e.id for e in entries}) == clips
    assert (sum(e.label == "bonafide" for e in entries), sum(e.label == "spoof" for e in entries)) == (bonafide, spoof)
    assert len({e.source for e in entries}) == sources and None not in {e.source for e in entries}
    assert all(e.attack for e in entries if e.label == "spoof")
    assert all(Path(e.path).is_file() for e in entries)

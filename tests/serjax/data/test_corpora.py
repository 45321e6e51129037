import collections

import numpy as np
import pytest
from data_testlib import real_folder, tone, touch, write_audio

from serjax.data import AudioCache, Preprocessing, load_corpus, resolve_data_root, scan_corpus


def _by_id(utts):
    return {u.extra["id"]: u for u in utts}


# --- data root ----------------------------------------------------------------------------------


def test_data_root_flag_wins_over_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SERJAX_DATA_DIR", "/from/env")
    assert resolve_data_root(str(tmp_path)) == tmp_path
    assert str(resolve_data_root(None)) == "/from/env"


def test_missing_data_root_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("SERJAX_DATA_DIR", raising=False)
    with pytest.raises(ValueError, match="SERJAX_DATA_DIR"):
        resolve_data_root(None)
    with pytest.raises(ValueError, match="--data_dir"):
        resolve_data_root("")


def test_unknown_corpus_lists_the_valid_names(tmp_path):
    with pytest.raises(ValueError, match="emodb, ravdess, tess, savee, cremad"):
        load_corpus("iemocap", tmp_path)


def test_unknown_option_lists_the_valid_ones(tmp_path):
    touch(tmp_path, "ravdess/Actor_01/03-01-01-01-01-01-01.wav")
    with pytest.raises(ValueError, match="include_song"):
        load_corpus("ravdess", tmp_path, include_speech=True)


def test_missing_corpus_folder_says_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"03a01Fa\.wav"):
        load_corpus("emodb", tmp_path)


def test_folder_without_usable_files_is_an_error(tmp_path):
    touch(tmp_path, "emodb/wav/readme.txt", "emodb/wav/garbage.wav")
    with pytest.raises(ValueError, match=r"No usable emodb file.*03a01Fa"):
        load_corpus("emodb", tmp_path)


# --- Emo-DB ----------------------------------------------------------------------------------


def test_emodb_names(tmp_path):
    touch(tmp_path, "emodb/wav/03a01Fa.wav", "emodb/wav/16b10Wb.wav", "emodb/wav/08a02Ac.wav")
    utts = _by_id(load_corpus("emodb", tmp_path))
    u = utts["03a01Fa"]
    assert (u.corpus, u.speaker, u.label, u.gender) == ("emodb", "03", "happiness", "male")
    assert u.extra == {"id": "03a01Fa", "code": "F", "text": "a01", "version": "a"}
    assert (utts["16b10Wb"].label, utts["16b10Wb"].gender) == ("anger", "female")
    assert utts["08a02Ac"].label == "fear"
    assert u.speaker_id == "emodb:03"


@pytest.mark.parametrize("code", list("WLEAFTN"))
def test_emodb_every_emotion_letter(tmp_path, code):
    expected = dict(
        W="anger", L="boredom", E="disgust", A="fear", F="happiness", T="sadness", N="neutral"
    )
    touch(tmp_path, f"emodb/wav/11b03{code}a.wav")
    (u,) = load_corpus("emodb", tmp_path)
    assert u.label == expected[code]


def test_emodb_flat_and_official_layouts_give_the_same_records(tmp_path):
    names = ["15a01Wa.wav", "03b02Na.wav", "09a05Tc.wav"]
    touch(tmp_path / "official", *(f"emodb/wav/{n}" for n in names), "emodb/lablaut/x.lab")
    touch(tmp_path / "flat", *(f"emodb/{n}" for n in reversed(names)))
    official = load_corpus("emodb", tmp_path / "official")
    flat = load_corpus("emodb", tmp_path / "flat")
    assert [(u.extra, u.speaker, u.label) for u in official] == [
        (u.extra, u.speaker, u.label) for u in flat
    ]
    assert [u.speaker for u in flat] == ["03", "09", "15"]  # sorted by speaker, then id


def test_malformed_names_are_skipped_with_one_warning_each(tmp_path, caplog):
    bad = touch(tmp_path, "emodb/wav/03a01Xa.wav", "emodb/wav/3a01Fa.wav", "emodb/wav/03a01FA.wav")
    touch(tmp_path, "emodb/wav/03a01Fa.wav", "emodb/wav/notes.txt")
    caplog.set_level("INFO")
    utts = load_corpus("emodb", tmp_path)
    assert [u.extra["id"] for u in utts] == ["03a01Fa"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 3
    for path in bad:
        assert sum(str(path) in w for w in warnings) == 1
    assert "skipped 3 malformed names" in caplog.text
    assert "notes.txt" not in caplog.text  # not audio: ignored, not a malformed name


def test_archive_debris_is_ignored(tmp_path, caplog):
    touch(
        tmp_path,
        "emodb/wav/03a01Fa.wav",
        "emodb/wav/._03a01Fa.wav",
        "emodb/__MACOSX/wav/._03a01Fa.wav",
    )
    assert len(load_corpus("emodb", tmp_path)) == 1
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_duplicate_copies_are_counted_once(tmp_path, caplog):
    touch(tmp_path, "emodb/wav/03a01Fa.wav", "emodb/copy/wav/03a01Fa.wav")
    utts = load_corpus("emodb", tmp_path)
    assert len(utts) == 1
    assert "1 files that repeat" in caplog.text


# --- RAVDESS ---------------------------------------------------------------------------------


def test_ravdess_names(tmp_path):
    touch(
        tmp_path,
        "ravdess/Actor_12/03-01-06-01-02-01-12.wav",
        "ravdess/Actor_07/03-01-02-02-01-02-07.flac",
    )
    utts = _by_id(load_corpus("ravdess", tmp_path))
    u = utts["03-01-06-01-02-01-12"]
    assert (u.speaker, u.label, u.gender) == ("12", "fear", "female")
    assert u.extra["intensity"] == "normal"
    assert u.extra["statement"] == "dogs are sitting by the door"
    assert u.extra["repetition"] == "1"
    assert u.extra["vocal_channel"] == "speech"
    v = utts["03-01-02-02-01-02-07"]
    assert (v.speaker, v.label, v.gender) == ("07", "calm", "male")
    assert v.extra["intensity"] == "strong"
    assert v.path.suffix == ".flac"


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("01", "neutral"),
        ("02", "calm"),
        ("03", "happiness"),
        ("04", "sadness"),
        ("05", "anger"),
        ("06", "fear"),
        ("07", "disgust"),
        ("08", "surprise"),
    ],
)
def test_ravdess_every_emotion(tmp_path, code, label):
    touch(tmp_path, f"ravdess/Actor_03/03-01-{code}-02-01-01-03.wav")
    (u,) = load_corpus("ravdess", tmp_path)
    assert u.label == label


def test_ravdess_song_and_video_are_excluded_by_default(tmp_path, caplog):
    touch(
        tmp_path,
        "ravdess/Actor_01/03-01-01-01-01-01-01.wav",
        "ravdess/Actor_01/03-02-03-01-01-01-01.wav",  # song
        "ravdess/Actor_01/01-01-03-01-01-01-01.wav",  # audio-video, if ever saved as audio
        "ravdess/Actor_01/02-01-03-01-01-01-01.mp4",  # video only
    )
    caplog.set_level("INFO")
    assert [u.extra["id"] for u in load_corpus("ravdess", tmp_path)] == ["03-01-01-01-01-01-01"]
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert "excluded 2 by option" in caplog.text
    with_song = load_corpus("ravdess", tmp_path, include_song=True)
    assert [u.extra["vocal_channel"] for u in with_song] == ["speech", "song"]


@pytest.mark.parametrize(
    "name",
    ["03-01-09-01-01-01-01", "03-01-01-03-01-01-01", "03-01-01-01-01-01-25", "03-01-01-01-01-01"],
)
def test_ravdess_malformed(tmp_path, name, caplog):
    touch(tmp_path, "ravdess/Actor_01/03-01-01-01-01-01-01.wav", f"ravdess/Actor_01/{name}.wav")
    assert len(load_corpus("ravdess", tmp_path)) == 1
    assert name in caplog.text


# --- TESS ------------------------------------------------------------------------------------


def test_tess_names_and_quirks(tmp_path):
    touch(
        tmp_path,
        "tess/TESS Toronto emotional speech set data/OAF_angry/OAF_back_angry.wav",
        "tess/TESS Toronto emotional speech set data/OAF_neutral/OA_bite_neutral.wav",
        "tess/TESS Toronto emotional speech set data/YAF_pleasant_surprised/YAF_chair_ps.wav",
        "tess/TESS Toronto emotional speech set data/OAF_Sad/OAF_base_sad.wav",
    )
    utts = _by_id(load_corpus("tess", tmp_path))
    assert set(utts) == {"OAF_back_angry", "OAF_bite_neutral", "YAF_chair_ps", "OAF_base_sad"}
    misnamed = utts["OAF_bite_neutral"]
    assert (misnamed.speaker, misnamed.label, misnamed.extra["word"]) == ("OAF", "neutral", "bite")
    assert utts["YAF_chair_ps"].label == "surprise"
    assert all(u.gender == "female" for u in utts.values())


def test_tess_unknown_speaker_is_malformed(tmp_path, caplog):
    touch(tmp_path, "tess/OAF_angry/OAF_back_angry.wav", "tess/XYZ_angry/XYZ_back_angry.wav")
    assert len(load_corpus("tess", tmp_path)) == 1
    assert "unknown speaker 'XYZ'" in caplog.text


def test_tess_fixtures(fixtures_dir):
    utts = scan_corpus("tess", fixtures_dir / "tess")
    assert len(utts) == 17
    assert collections.Counter(u.speaker for u in utts) == {"OAF": 9, "YAF": 8}
    assert {u.label for u in utts} == {
        "anger",
        "disgust",
        "fear",
        "happiness",
        "neutral",
        "surprise",
        "sadness",
    }
    assert _by_id(utts)["OAF_bite_neutral"].path.name == "OA_bite_neutral.wav"


# --- SAVEE -----------------------------------------------------------------------------------


def test_savee_flat_and_per_speaker_layouts(tmp_path):
    touch(
        tmp_path / "flat", "savee/ALL/DC_a01.wav", "savee/ALL/KL_sa15.wav", "savee/ALL/JE_su3.wav"
    )
    touch(tmp_path / "nested", "savee/AudioData/DC/a01.wav", "savee/AudioData/KL/sa15.wav")
    touch(tmp_path / "nested", "savee/AudioData/JE/su03.wav", "savee/AudioData/DC/info.txt")
    flat = load_corpus("savee", tmp_path / "flat")
    nested = load_corpus("savee", tmp_path / "nested")
    summary = [(u.speaker, u.label, u.extra["id"]) for u in flat]
    assert summary == [
        ("DC", "anger", "DC_a01"),
        ("JE", "surprise", "JE_su03"),
        ("KL", "sadness", "KL_sa15"),
    ]
    assert [(u.speaker, u.label, u.extra["id"]) for u in nested] == summary
    assert all(u.gender == "male" for u in flat + nested)


def test_savee_unprefixed_name_needs_a_speaker_folder(tmp_path, caplog):
    touch(tmp_path, "savee/DC_a01.wav", "savee/audio/a02.wav")
    assert len(load_corpus("savee", tmp_path)) == 1
    assert "unknown speaker 'AUDIO'" in caplog.text


def test_savee_fixtures(fixtures_dir):
    utts = scan_corpus("savee", fixtures_dir / "savee")
    assert [(u.speaker, u.extra["code"]) for u in utts] == [
        ("DC", "a"),
        ("DC", "d"),
        ("JE", "f"),
        ("JE", "su"),
        ("JK", "h"),
        ("KL", "n"),
        ("KL", "sa"),
    ]
    assert len({u.label for u in utts}) == 7


# --- CREMA-D (synthetic files) ---------------------------------------------------------------

CREMAD_NAMES = [
    "1001_DFA_ANG_XX",
    "1001_IEO_HAP_HI",
    "1002_TIE_SAD_LO",
    "1002_ITS_NEU_MD",
    "1091_WSI_FEA_XX",
    "1091_MTI_DIS_HI",
]


def _write_cremad(root, with_demographics: bool):
    for i, name in enumerate(CREMAD_NAMES):
        write_audio(root / "cremad/AudioWAV" / f"{name}.wav", tone(0.3, 16000, 200 + 50 * i), 16000)
    if with_demographics:
        (root / "cremad/VideoDemographics.csv").write_text(
            '"ActorID","Age","Sex","Race","Ethnicity"\n'
            '1001,51,"Male","Caucasian","Not Hispanic"\n'
            '1002,21,"Female","Caucasian","Not Hispanic"\n'
            '1091,29,"Female","Asian","Not Hispanic"\n'
        )


def test_cremad_names_labels_and_demographics(tmp_path):
    _write_cremad(tmp_path, with_demographics=True)
    utts = load_corpus("cremad", tmp_path)
    assert [u.extra["id"] for u in utts] == sorted(CREMAD_NAMES)
    by_id = _by_id(utts)
    u = by_id["1001_DFA_ANG_XX"]
    assert (u.speaker, u.label, u.gender) == ("1001", "anger", "male")
    assert (u.extra["sentence"], u.extra["level"]) == ("DFA", "XX")
    assert by_id["1002_TIE_SAD_LO"].gender == "female"
    assert {u.label for u in utts} == {
        "anger",
        "happiness",
        "sadness",
        "neutral",
        "fear",
        "disgust",
    }
    # The synthetic audio decodes through the same path as real corpora.
    kept, waves = AudioCache().load_many(utts, Preprocessing(sample_rate=8000))
    assert len(kept) == 6
    assert all(w.shape == (2400,) and w.dtype == np.float32 for w in waves)


def test_cremad_without_demographics_has_unknown_gender(tmp_path):
    _write_cremad(tmp_path, with_demographics=False)
    assert {u.gender for u in load_corpus("cremad", tmp_path)} == {None}


def test_cremad_malformed(tmp_path, caplog):
    _write_cremad(tmp_path, with_demographics=False)
    touch(tmp_path, "cremad/AudioWAV/1001_DFA_ANX_XX.wav", "cremad/AudioWAV/1001_DFA_ANG_QQ.wav")
    assert len(load_corpus("cremad", tmp_path)) == len(CREMAD_NAMES)
    assert "unknown emotion code 'ANX'" in caplog.text
    assert "unknown level 'QQ'" in caplog.text


# --- the real corpora ------------------------------------------------------------------------


def test_real_emodb_counts():
    root = real_folder("emodb").parent
    utts = load_corpus("emodb", root)
    assert len(utts) == 535
    assert len({u.speaker for u in utts}) == 10
    assert collections.Counter(u.label for u in utts) == {
        "anger": 127,
        "boredom": 81,
        "neutral": 79,
        "happiness": 71,
        "fear": 69,
        "sadness": 62,
        "disgust": 46,
    }
    genders = {u.speaker: u.gender for u in utts}
    assert sorted(s for s, g in genders.items() if g == "male") == ["03", "10", "11", "12", "15"]
    assert sorted(s for s, g in genders.items() if g == "female") == ["08", "09", "13", "14", "16"]


def test_real_ravdess_counts():
    root = real_folder("ravdess").parent
    utts = load_corpus("ravdess", root)
    assert len(utts) == 1440
    per_actor = collections.Counter(u.speaker for u in utts)
    assert sorted(per_actor) == [f"{i:02d}" for i in range(1, 25)]
    assert set(per_actor.values()) == {60}
    labels = collections.Counter(u.label for u in utts)
    assert len(labels) == 8
    assert labels["neutral"] == 96  # neutral has no strong intensity
    assert {n for label, n in labels.items() if label != "neutral"} == {192}
    assert collections.Counter(u.gender for u in utts) == {"male": 720, "female": 720}

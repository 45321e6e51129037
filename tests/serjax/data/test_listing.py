"""Listing a folder's audio: symbolic-link loops, duplicates, unsupported formats, LFS pointers."""

import os
import threading

import pytest
from data_testlib import tone, touch, write_audio

from serjax import data
from serjax.data import download as cli
from serjax.data import fetch
from serjax.data.listing import is_lfs_pointer, list_audio
from serjax.predict.predictor import expand_inputs
from serjax.predict.results import FileFailure

# A pointer file as `git clone` without Git LFS leaves it (130 bytes, as in CREMA-D's clone).
LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 12345\n"
)


def _listing_within(folder, seconds=20.0):
    """``list_audio(folder)``, failing the test if it does not return in ``seconds``."""
    result = []
    worker = threading.Thread(target=lambda: result.append(list_audio(folder)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert result, f"listing {folder} did not finish in {seconds} s"
    return result[0]


def test_symbolic_link_loops_list_each_file_once(tmp_path):
    root = tmp_path / "emodb"
    touch(root, "wav/03a01Fa.wav", "wav/sub/03a01Wa.wav", "other/16b10Ab.wav")
    os.symlink("..", root / "wav" / "sub" / "up")  # points back up: a loop
    os.symlink("../..", root / "other" / "again")  # a second loop, to the data root
    os.symlink("../wav", root / "other" / "wav_link")  # a second path to a real folder
    listing = _listing_within(root)
    names = [p.name for p in listing.files]
    assert sorted(names) == ["03a01Fa.wav", "03a01Wa.wav", "16b10Ab.wav"]
    assert len(set(map(os.path.realpath, listing.files))) == len(listing.files)
    assert listing.skipped == ()
    # Corpus loading sees each utterance once, without a duplicates warning.
    utts = data.load_corpus("emodb", tmp_path)
    assert sorted(u.extra["id"] for u in utts) == ["03a01Fa", "03a01Wa", "16b10Ab"]


def test_a_folder_linked_from_two_places_is_walked_once_and_links_to_files_count_once(tmp_path):
    real = tmp_path / "real"
    touch(real, "a.wav", "b.flac")
    folder = tmp_path / "inputs"
    folder.mkdir()
    os.symlink(real, folder / "one")
    os.symlink(real, folder / "two")
    os.symlink(real / "a.wav", folder / "a_again.wav")
    os.link(real / "b.flac", folder / "b_hard.flac")
    listing = _listing_within(folder)
    assert len(listing.files) == 2
    inodes = {(p.stat().st_dev, p.stat().st_ino) for p in listing.files}
    assert inodes == {
        ((real / n).stat().st_dev, (real / n).stat().st_ino) for n in ("a.wav", "b.flac")
    }


def test_a_dangling_link_is_skipped_with_a_reason(tmp_path):
    touch(tmp_path, "ok.wav")
    os.symlink(tmp_path / "gone.wav", tmp_path / "broken.wav")
    listing = list_audio(tmp_path)
    assert listing.files == (tmp_path / "ok.wav",)
    assert listing.skipped == ((tmp_path / "broken.wav", listing.skipped[0][1]),)
    assert "does not exist" in listing.skipped[0][1]


def test_unsupported_formats_are_named_with_what_to_convert_to(tmp_path):
    touch(tmp_path, "a.wav", "b.M4A", "sub/c.m4a", "d.wma", "notes.txt", "cover.pdf")
    listing = list_audio(tmp_path)
    assert listing.files == (tmp_path / "a.wav",)
    assert [p.name for p, _ in listing.skipped] == ["b.M4A", "d.wma", "c.m4a"]
    for path, reason in listing.skipped:
        assert path.suffix.lower() in reason and "convert it to WAV or FLAC" in reason
        assert f"ffmpeg -i {path.name} {path.stem}.wav" in reason
    summary = listing.skipped_summary(tmp_path)
    assert "skipped 3 files" in summary and "b.M4A" in summary and "c.m4a" in summary
    assert ".m4a, .wma audio cannot be decoded" in summary and "WAV or FLAC" in summary
    assert "notes.txt" not in summary and "cover.pdf" not in summary


def test_corpus_loading_warns_once_about_skipped_formats(tmp_path, caplog):
    touch(tmp_path, "emodb/wav/03a01Fa.wav", "emodb/wav/03a01Wa.m4a", "emodb/wav/03a02Wa.m4a")
    caplog.set_level("INFO")
    utts = data.load_corpus("emodb", tmp_path)
    assert [u.extra["id"] for u in utts] == ["03a01Fa"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "skipped 2 files" in warnings[0] and "03a01Wa.m4a" in warnings[0]
    assert "convert to WAV or FLAC" in warnings[0]


def test_a_corpus_of_only_unsupported_formats_says_so(tmp_path):
    touch(tmp_path, "emodb/wav/03a01Wa.m4a")
    with pytest.raises(
        ValueError, match=r"No usable emodb file .*\. .*skipped 1 file \(03a01Wa\.m4a\)"
    ):
        data.load_corpus("emodb", tmp_path)


def test_predict_inputs_give_a_failure_row_per_skipped_file(tmp_path):
    mixed = tmp_path / "mixed"
    touch(mixed, "a.wav", "b.m4a")
    only = tmp_path / "only_m4a"
    touch(only, "x.m4a", "y.m4a")
    empty = tmp_path / "empty"
    touch(empty, "notes.txt")
    sources = expand_inputs([mixed, only, empty])
    assert sources[0] == str(mixed / "a.wav")
    failures = [s for s in sources if isinstance(s, FileFailure)]
    assert [f.source for f in failures] == [
        str(mixed / "b.m4a"),
        str(only / "x.m4a"),
        str(only / "y.m4a"),
        str(empty),
    ]
    assert all("convert it to WAV or FLAC" in f.reason for f in failures[:3])
    assert failures[3].reason == "no audio files in this folder"


def test_predict_inputs_survive_a_symbolic_link_loop(tmp_path):
    touch(tmp_path, "clips/a.wav")
    os.symlink("..", tmp_path / "clips" / "loop")
    assert expand_inputs([tmp_path / "clips"]) == [str(tmp_path / "clips" / "a.wav")]


# --- Git LFS pointer files --------------------------------------------------------------------


def _cremad_pointers(root, count=3):
    folder = root / "cremad" / "AudioWAV"
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"100{i + 1}_DFA_ANG_XX.wav").write_bytes(LFS_POINTER)
    return root / "cremad"


def test_lfs_pointers_are_recognised(tmp_path):
    pointer = _cremad_pointers(tmp_path, 1) / "AudioWAV" / "1001_DFA_ANG_XX.wav"
    assert pointer.stat().st_size == 130
    assert is_lfs_pointer(pointer)
    wav = write_audio(tmp_path / "real.wav", tone(0.1, 16000), 16000)
    assert not is_lfs_pointer(wav)
    assert not is_lfs_pointer(tmp_path / "missing.wav")
    text = tmp_path / "text.wav"
    text.write_text("version 2\n")
    assert not is_lfs_pointer(text)


def test_download_command_reports_lfs_pointers_instead_of_success(tmp_path, capsys):
    _cremad_pointers(tmp_path)
    assert cli.main(["cremad", "--dest", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "already in" not in out
    assert "3 of the 3 audio files" in out and "Git LFS pointer files" in out
    assert "git lfs pull" in out and "github.com/CheyneyComputerScience/CREMA-D" in out


def test_ensure_and_download_refuse_a_folder_of_lfs_pointers(tmp_path):
    _cremad_pointers(tmp_path)
    with pytest.raises(FileNotFoundError, match="Git LFS pointer files.*git lfs pull"):
        data.ensure_corpus("cremad", tmp_path)
    with pytest.raises(fetch.DownloadError, match="Git LFS pointer files"):
        fetch.download_corpus("cremad", tmp_path)


def test_a_partly_fetched_clone_counts_its_pointers(tmp_path):
    folder = _cremad_pointers(tmp_path, 2)
    write_audio(folder / "AudioWAV" / "1009_DFA_ANG_XX.wav", tone(0.1, 16000), 16000)
    with pytest.raises(FileNotFoundError, match="2 of the 3 audio files"):
        data.ensure_corpus("cremad", tmp_path)


def test_loading_a_pointer_file_names_it_as_such(tmp_path):
    pointer = _cremad_pointers(tmp_path, 1) / "AudioWAV" / "1001_DFA_ANG_XX.wav"
    with pytest.raises(data.AudioError) as error:
        data.decode(pointer, 16000)
    assert "Git LFS pointer file, not audio" in error.value.reason
    assert "git lfs pull" in error.value.reason


def test_streamed_reading_names_an_lfs_pointer_file(tmp_path):
    from serjax.data.audio import AudioError
    from serjax.data.stream import open_audio

    path = tmp_path / "1001_DFA_ANG_XX.wav"
    path.write_bytes(LFS_POINTER)
    with pytest.raises(AudioError, match="Git LFS pointer file"), open_audio(path):
        pass

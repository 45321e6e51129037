"""Corpora, audio I/O, speaker-independent splits, padded batches and downloads.

A typical pipeline::

    root = resolve_data_root(config.data.data_dir)
    utts = select_labels(load_corpus("emodb", root), classes)
    split = emodb_s1_split(utts)
    cache = AudioCache()
    train, waves = cache.load_many(split.train, Preprocessing(sample_rate=16000))
    for batch in iterate_batches(waves, encode_labels(train, classes), batch_size=32,
                                 buckets=default_buckets([len(w) for w in waves]),
                                 shuffle=True, seed=config.seed, epoch=epoch):
        ...
"""

from serjax.data.audio import AudioCache, AudioError, decode
from serjax.data.batching import (
    Batch,
    bucket_length,
    class_weights,
    default_buckets,
    iterate_batches,
    iterate_segment_batches,
    length_ladder,
    num_batches,
    num_segment_batches,
    plan_segment_batches,
)
from serjax.data.corpora import (
    CORPORA,
    corpus_dir,
    load_corpus,
    resolve_data_root,
    scan_corpus,
)
from serjax.data.fetch import DownloadError, download_corpus, ensure_corpus
from serjax.data.labels import (
    CANONICAL_EMOTIONS,
    CORPUS_CLASSES,
    CORPUS_LABEL_CODES,
    encode_labels,
    select_labels,
)
from serjax.data.listing import AudioListing, audio_files, is_lfs_pointer, list_audio
from serjax.data.preprocess import Preprocessing, load_audio
from serjax.data.silence import speech_bounds, trim_bounds
from serjax.data.splits import (
    Split,
    emodb_s1_split,
    file_fraction_split,
    filter_speakers,
    loso_folds,
    merge_splits,
    per_corpus_speaker_fraction_split,
    ravdess_s3_split,
    speaker_fraction_split,
    speaker_kfold,
    speaker_split,
)
from serjax.data.utterance import Utterance

__all__ = [
    "CANONICAL_EMOTIONS",
    "CORPORA",
    "CORPUS_CLASSES",
    "CORPUS_LABEL_CODES",
    "AudioCache",
    "AudioError",
    "AudioListing",
    "Batch",
    "DownloadError",
    "Preprocessing",
    "Split",
    "Utterance",
    "speaker_kfold",
    "audio_files",
    "bucket_length",
    "class_weights",
    "corpus_dir",
    "decode",
    "default_buckets",
    "download_corpus",
    "emodb_s1_split",
    "per_corpus_speaker_fraction_split",
    "encode_labels",
    "ensure_corpus",
    "file_fraction_split",
    "filter_speakers",
    "is_lfs_pointer",
    "iterate_batches",
    "iterate_segment_batches",
    "length_ladder",
    "list_audio",
    "load_audio",
    "load_corpus",
    "loso_folds",
    "merge_splits",
    "num_batches",
    "num_segment_batches",
    "plan_segment_batches",
    "ravdess_s3_split",
    "resolve_data_root",
    "scan_corpus",
    "select_labels",
    "speaker_fraction_split",
    "speaker_split",
    "speech_bounds",
    "trim_bounds",
]

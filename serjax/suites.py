"""Suites of runs: each reference system's variants, under the report's and an honest protocol.

A suite is data: which config (``configs/<name>.py``) each variant starts from, the overrides
that make the variant, the report's figure beside it, and the protocols to run it under. The
report's protocol is the split the report describes (as far as serjax can reproduce it); the
honest protocol is speaker-independent cross-validation of the corpus (Emo-DB leave one
speaker out, RAVDESS 6 actor-disjoint folds, TESS across its two speakers), whose pooled
figures are the comparable ones. :func:`serjax.experiments.run_suite` runs a suite;
:mod:`serjax.suite_report` writes its table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["QUICK", "SUITES", "Protocol", "Suite", "Variant"]


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How a variant's corpus is split for one kind of figure.

    Attributes:
      kind: ``"report"`` (the report's own protocol) or ``"honest"`` (speaker-independent
        cross-validation); the run directory's name.
      description: the split in a few words, as the table shows it.
      overrides: dotted config fields -> values (``{"data.protocol": "loso"}``).
      quick: further overrides for ``--quick`` (e.g. one fold of ten).
    """

    kind: str
    description: str
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=_frozen)
    quick: Mapping[str, Any] = dataclasses.field(default_factory=_frozen)

    @property
    def speaker_dependent(self) -> bool:
        """Whether the split puts a speaker's files in both training and test (a split by
        file): the table labels such figures, which are not comparable with the others."""
        return self.overrides.get("data.protocol") in SPEAKER_DEPENDENT_PROTOCOLS


@dataclasses.dataclass(frozen=True)
class Variant:
    """One system's variant: a config plus overrides, and what the report says of it.

    Attributes:
      system: ``"S1"`` ... ``"S5"`` (:mod:`serjax.references`).
      name: its directory name, unique within the system.
      title: what it is, in a few words.
      config: the config file's stem in ``configs/``.
      overrides: dotted config fields -> values, applied on the config.
      reported: the report's figure (a fraction), or None where it gives none.
      reported_as: what that figure measures ("test accuracy", "validation accuracy").
      protocols: the protocols to run it under (a report's protocol first).
      quick: further overrides for ``--quick``.
      note: what the table says beside it (a gap's likely cause, missing data).
    """

    system: str
    name: str
    title: str
    config: str
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=_frozen)
    reported: float | None = None
    reported_as: str = "test accuracy"
    protocols: tuple[Protocol, ...] = ()
    quick: Mapping[str, Any] = dataclasses.field(default_factory=_frozen)
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Suite:
    """Variants and how many seeds each protocol runs (``--quick``: one seed of each)."""

    name: str
    variants: tuple[Variant, ...]
    report_seeds: int = 3
    honest_seeds: int = 1  # cross-validation already averages over folds

    def seeds(self, protocol: Protocol, quick: bool) -> range:
        if quick:
            return range(1)
        return range(self.report_seeds if protocol.kind == "report" else self.honest_seeds)

    def systems(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.system for v in self.variants))


# Values of ``data.protocol`` that split by file rather than by speaker.
SPEAKER_DEPENDENT_PROTOCOLS = ("file_fraction",)

# ``--quick`` everywhere: one epoch, and one padded length (one compilation of each step, which
# the compilation cache then shares between runs of the same shapes); plus each variant's and
# protocol's own quick overrides.
QUICK = _frozen({"train.epochs": 1, "train.patience": 0, "data.num_buckets": 1})

# -- protocols ---------------------------------------------------------------------------------

S1_SPLIT = Protocol("report", "Emo-DB, validation speaker 15, test speaker 16")
EMODB_LOSO = Protocol(
    "honest",
    "Emo-DB, leave one speaker out (10 folds, pooled)",
    {"data.protocol": "loso"},
    quick={"data.run_folds": ("03",)},
)
RAVDESS_FOLDS = Protocol(
    "honest",
    "RAVDESS, 6 actor-disjoint folds (pooled)",
    {"data.protocol": "speaker_kfold", "data.folds": 6},
    quick={"data.run_folds": ("fold0",)},
)
MIXED_FOLDS = Protocol(
    "honest",
    "female speakers, 6 speaker-disjoint folds over both corpora (pooled)",
    {"data.protocol": "speaker_kfold", "data.folds": 6},
    quick={"data.run_folds": ("fold0",)},
)

# -- S1: features and cells --------------------------------------------------------------------

_S1_QUICK = {"features.segment_shift": 12, "train.segment_group": 8}


def _s1(name: str, title: str, reported: float, **overrides) -> Variant:
    fields = {k.replace("__", "."): v for k, v in overrides.items()}
    return Variant(
        system="S1",
        name=name,
        title=title,
        config="emodb_lstm",
        overrides=_frozen(fields),
        reported=reported,
        protocols=(S1_SPLIT, EMODB_LOSO),
        quick=_frozen(_S1_QUICK),
    )


_MFCC = {"features__kind": "mfcc", "features__n_mfcc": 13}
S1 = (
    _s1("lstm_mfcc", "LSTM, MFCC 13", 0.531, **_MFCC, features__deltas=0),
    _s1("lstm_mfcc_d", "LSTM, MFCC + Δ", 0.531, **_MFCC, features__deltas=1),
    _s1("lstm_mfcc_dd", "LSTM, MFCC + Δ + ΔΔ", 0.540, **_MFCC, features__deltas=2),
    _s1("lstm_mspec", "LSTM, log-mel 40", 0.545, features__deltas=0),
    _s1("lstm_mspec_d", "LSTM, log-mel + Δ", 0.566, features__deltas=1),
    _s1("lstm_mspec_dd", "LSTM, log-mel + Δ + ΔΔ (the main job)", 0.578),
    _s1("rnn_mspec_dd", "RNN, log-mel + Δ + ΔΔ", 0.517, model__name="rnn"),
    _s1(
        "bilstm_mspec_dd",
        "BiLSTM 2 × 64, log-mel + Δ + ΔΔ",
        0.577,
        model__name="bilstm",
        model__hidden_sizes=(64, 64),
    ),
    _s1("rnn_mfcc_dd", "RNN, MFCC + Δ + ΔΔ", 0.484, **_MFCC, model__name="rnn"),
    _s1(
        "bilstm_mfcc_dd",
        "BiLSTM 2 × 64, MFCC + Δ + ΔΔ",
        0.577,
        **_MFCC,
        model__name="bilstm",
        model__hidden_sizes=(64, 64),
    ),
)

# -- S2 -----------------------------------------------------------------------------------------

S2_SPLIT = Protocol("report", "RAVDESS, 20 % of the actors as test (5), 10 % validation")
# The report's "20 % of the data as test" does not say by actor: most likely files at random.
S2_FILE_SPLIT = Protocol(
    "report",
    "RAVDESS, 20 % of the files as test, 10 % validation, at random: every actor in every "
    "part (speaker-dependent)",
    {"data.protocol": "file_fraction"},
)
_S2_QUICK = _frozen({"train.epochs": 2})
_S2_FIRST = {"model.hidden_sizes": (128, 64)}
S2 = (
    Variant(
        "S2",
        "first",
        "first model: LSTM 128 → 64 → Dense 128",
        "ravdess_lstm_s2",
        _frozen(_S2_FIRST),
        reported=0.35,
        protocols=(S2_SPLIT, RAVDESS_FOLDS),
        quick=_S2_QUICK,
        note="the report's 20 % test set is likely drawn by file, so its actors are also in "
        "training (variant first_by_file)",
    ),
    Variant(
        "S2",
        "first_by_file",
        "first model, files split at random (speaker-dependent)",
        "ravdess_lstm_s2",
        _frozen(_S2_FIRST),
        reported=0.35,
        protocols=(S2_FILE_SPLIT,),
        quick=_S2_QUICK,
        note="speaker-dependent, as the report's split likely was: each test actor's voice is "
        "also in training",
    ),
    Variant(
        "S2",
        "first_standardised",
        "first model, inputs standardised with the training part's statistics",
        "ravdess_lstm_s2",
        _frozen({**_S2_FIRST, "features.frame_standardise": "training"}),
        reported=0.35,
        protocols=(S2_SPLIT, RAVDESS_FOLDS),
        quick=_S2_QUICK,
        note="the report feeds the MFCCs unscaled (c0 is in the hundreds); the statistics are "
        "the training part's valid frames', kept in the checkpoint",
    ),
    Variant(
        "S2",
        "first_offline",
        "first model, three offline copies per file",
        "ravdess_lstm_s2",
        _frozen({"model.hidden_sizes": (128, 64), "augment.offline": True}),
        reported=0.55,
        protocols=(S2_SPLIT, RAVDESS_FOLDS),
        quick=_S2_QUICK,
        note="copies of a file in both training and test (a split after copying) would "
        "explain the report's gain",
    ),
    Variant(
        "S2",
        "first_offline_by_file",
        "first model, three offline copies per file, files split at random (speaker-dependent)",
        "ravdess_lstm_s2",
        _frozen({**_S2_FIRST, "augment.offline": True}),
        reported=0.55,
        protocols=(S2_FILE_SPLIT,),
        quick=_S2_QUICK,
        note="speaker-dependent; the copies are made from the training files only, after the split",
    ),
    Variant(
        "S2",
        "final_offline",
        "final model: LSTM 256 → 64 → Dense 128, offline copies",
        "ravdess_lstm_s2",
        _frozen({"augment.offline": True}),
        reported=0.73,
        reported_as="validation accuracy",
        protocols=(S2_SPLIT, RAVDESS_FOLDS),
        quick=_S2_QUICK,
    ),
)

# -- S3 -----------------------------------------------------------------------------------------

S3_SPLIT = Protocol("report", "RAVDESS, test actors 1 and 2, validation 3 and 4")
# One epoch of the 2 × 1024 LSTM over RAVDESS's whole files takes over ten minutes on a shared
# 2-core CPU: ``--quick`` cuts every file to its first second (about 44 frames), which
# keeps the architecture and the split and only shortens the sequences.
_S3_LSTM_QUICK = _frozen({"data.max_seconds": 1.0})
S3 = (
    Variant(
        "S3",
        "lstm",
        "LSTM 2 × 1024 on MFCC 40",
        "ravdess_lstm_s3",
        reported=0.65,
        protocols=(S3_SPLIT, RAVDESS_FOLDS),
        quick=_S3_LSTM_QUICK,
        note="full runs need a GPU",
    ),
    Variant(
        "S3",
        "cnn",
        "CNN on 40 × 160 MFCC maps (report: mean ROC-AUC 0.927)",
        "ravdess_cnn_s3",
        reported=0.675,
        protocols=(S3_SPLIT, RAVDESS_FOLDS),
    ),
)

# -- S4 -----------------------------------------------------------------------------------------

S4_SPLIT = Protocol(
    "report", "Emo-DB, validation speaker 15, test speaker 16 (the report's split is unstated)"
)
_S4_NOTE = "the report's figure is validation accuracy on an unstated, likely speaker-mixed split"


def _s4(name: str, title: str, config: str, reported: float, **overrides) -> Variant:
    return Variant(
        "S4",
        name,
        title,
        config,
        _frozen({k.replace("__", "."): v for k, v in overrides.items()}),
        reported=reported,
        reported_as="validation accuracy" if name == "cnn_lstm_2d" else "test accuracy",
        protocols=(S4_SPLIT, EMODB_LOSO),
        note=_S4_NOTE if name == "cnn_lstm_2d" else "",
    )


S4 = (
    _s4("cnn_lstm_2d", "2-D CNN-LSTM on log-mel 128", "emodb_cnn_lstm_s4", 0.8068),
    _s4("cnn_lstm_1d", "1-D CNN-LSTM on the waveform", "emodb_cnn_lstm_1d_s4", 0.654),
    _s4(
        "cnn_bilstm_1d",
        "1-D CNN-BiLSTM on the waveform",
        "emodb_cnn_lstm_1d_s4",
        0.6615,
        model__bidirectional=True,
    ),
    _s4(
        "td_cnn_lstm",
        "time-distributed 2-D CNN-LSTM",
        "emodb_td_cnn_lstm_s4",
        0.62,
        model__bidirectional=False,
    ),
    _s4("td_cnn_bilstm", "time-distributed 2-D CNN-BiLSTM", "emodb_td_cnn_lstm_s4", 0.6638),
)

# -- S5 -----------------------------------------------------------------------------------------

_NO_CREMAD = "CREMA-D is not available here: TESS + RAVDESS only"
S5_SPLIT = Protocol(
    "report",
    "female speakers, each corpus split by speaker 60/20/20 (TESS: 1 train, 1 test), merged",
    {"data.corpora": ("tess", "ravdess")},
)
S5_MIXED_FOLDS = dataclasses.replace(
    MIXED_FOLDS, overrides=_frozen({**MIXED_FOLDS.overrides, "data.corpora": ("tess", "ravdess")})
)
S5 = (
    Variant(
        "S5",
        "crnn",
        "CRNN (conv → BiLSTM → attention)",
        "crnn_s5",
        reported=0.61,
        protocols=(S5_SPLIT, S5_MIXED_FOLDS),
        note=_NO_CREMAD,
    ),
    Variant(
        "S5",
        "cnn",
        "plain CNN",
        "cnn_s5",
        reported=0.75,
        protocols=(S5_SPLIT, S5_MIXED_FOLDS),
        note=_NO_CREMAD,
    ),
    Variant(
        "S5",
        "crnn_tess",
        "CRNN on TESS alone",
        "crnn_s5_tess",
        reported=0.99,
        protocols=(Protocol("honest", "TESS across speakers: train OAF, test YAF"),),
        note="the report's 99 % splits TESS by file (both speakers in training and test); "
        "serjax splits by speaker only",
    ),
    Variant(
        "S5",
        "crnn_cross_corpus",
        "CRNN trained on TESS, tested on RAVDESS",
        "crnn_s5_cross_corpus",
        reported=0.25,
        protocols=(Protocol("report", "train TESS, test RAVDESS's 12 female actors"),),
        note="trained on TESS alone (the report adds CREMA-D, not available here); the "
        "report's protocol is already speaker-independent",
    ),
)

SEEDS = Suite("seeds", S1 + S2 + S3 + S4 + S5)
SUITES: Mapping[str, Suite] = _frozen({SEEDS.name: SEEDS})

"""The five published systems serjax reproduces, named S1–S5 throughout the code and configs.

Docstrings and configs say "S1's windows", "S4's clips" and so on; this table says which report
each name stands for. The figures are the reports' own claims, each on its own split (see the
``protocol`` field), not serjax's results.
"""

from __future__ import annotations

import dataclasses

__all__ = ["REFERENCE_SYSTEMS", "ReferenceSystem", "markdown_table"]


@dataclasses.dataclass(frozen=True)
class ReferenceSystem:
    """One published system.

    Attributes:
      name: the short name used in the code ("S1" ... "S5").
      title: the report's title.
      authors: its authors, as the report lists them.
      corpus: the corpora it trains and tests on.
      protocol: how the report splits them.
      model: its best model, in a few words.
      reported: its headline figure, as the report states it.
      configs: serjax's configs that reproduce it (``configs/<name>.py``).
    """

    name: str
    title: str
    authors: str
    corpus: str
    protocol: str
    model: str
    reported: str
    configs: tuple[str, ...]


REFERENCE_SYSTEMS: tuple[ReferenceSystem, ...] = (
    ReferenceSystem(
        name="S1",
        title="Speech Emotion Recognition using Recurrent Neural Networks",
        authors="P. Cournut, A. M. Buldu",
        corpus="Emo-DB (7 classes)",
        protocol="validation speaker 15, test speaker 16",
        model='LSTM 2 × 128 on 25-frame windows of log-mel ("MSPEC") 40 + Δ + ΔΔ',
        reported="57.8 % test accuracy (BiLSTM 2 × 64: 57.7 %)",
        configs=("emodb_lstm", "emodb_bilstm", "emodb_lstm_loso"),
    ),
    ReferenceSystem(
        name="S2",
        title="Speech Emotion Recognition Using LSTM Neural Network",
        authors="H. Elshafey",
        corpus="RAVDESS speech (8 classes)",
        protocol="20 % of the data as test (the report does not say by actor)",
        model="LSTM 256 → 64 → Dense 128 on the 13 time-averaged MFCCs read as a sequence",
        reported="35 % test accuracy; 55 % with three augmented copies per file",
        configs=("ravdess_lstm_s2",),
    ),
    ReferenceSystem(
        name="S3",
        title="Voice emotion classification … as temporal and as spatial signals",
        authors="authors not named in the available text",
        corpus="RAVDESS speech (8 classes)",
        protocol="test actors 1 and 2",
        model="LSTM 2 × 1024 on MFCC 40; a CNN on 40 × 160 MFCC maps",
        reported="65 % (LSTM) and 67.5 % (CNN, mean ROC-AUC 0.927) test accuracy",
        configs=("ravdess_lstm_s3", "ravdess_cnn_s3"),
    ),
    ReferenceSystem(
        name="S4",
        title="Speech Emotion Recognition Using Deep Learning Methods",
        authors="D. Dey",
        corpus="Emo-DB, clips cut or padded to 3.5 s",
        protocol="a held-out validation set (the report's own split)",
        model="2-D CNN-LSTM after Zhao, Mao & Chen (2019) on log-mel 128",
        reported="80.68 % validation accuracy",
        configs=("emodb_cnn_lstm_s4", "emodb_cnn_lstm_1d_s4", "emodb_td_cnn_lstm_s4"),
    ),
    ReferenceSystem(
        name="S5",
        title="Speech Emotion Recognition using CRNN",
        authors="A. Kanoun, D. He, J. Dey, S. Fan",
        corpus="TESS + CREMA-D + RAVDESS, female speakers, 6 classes",
        protocol="each corpus split into train/val/test, then merged",
        model="CRNN: 2 conv blocks → BiLSTM 128 → BiLSTM 64 → attention → Dense",
        reported="61 % test accuracy (99 % on TESS alone, 25 % cross-corpus)",
        configs=("crnn_s5", "cnn_s5", "crnn_s5_tess", "crnn_s5_cross_corpus"),
    ),
)


def markdown_table() -> str:
    """The table of :data:`REFERENCE_SYSTEMS` as Markdown, as the README shows it."""
    rows = [
        "| name | report | corpus, protocol | model | reported | configs |",
        "|---|---|---|---|---|---|",
    ]
    for s in REFERENCE_SYSTEMS:
        configs = ", ".join(f"`configs/{c}.py`" for c in s.configs)
        rows.append(
            f"| {s.name} | {s.title} ({s.authors}) | {s.corpus}; {s.protocol} | {s.model} | "
            f"{s.reported} | {configs} |"
        )
    return "\n".join(rows) + "\n"

"""serjax's frame-level network on RAVDESS speech, 6 actor-disjoint folds of 4 actors.

    python -m serjax.main --config=configs/ravdess_frames.py --workdir=runs/ravdess_frames

The network and training of ``configs/emodb_frames.py`` (12 epochs instead of 20) on
RAVDESS's 8 classes, over the folds of ``configs/ravdess_serjax.py`` (same seed: the same
actors in each fold, so that the two runs can be fused: ``python -m serjax.fusion
--runs=runs/ravdess_serjax,runs/ravdess_frames --workdir=runs/ravdess_fused``).

Measured (that command, 2-core CPU at a load average of 2-4, 30.3 min): UA 40.3 %, WA 39.7 %,
macro-F1 36.9 %, per fold UA 40.3 ± 10.6 %. Fused with ``configs/ravdess_serjax.py``: UA
71.4 % (alone 71.2 %); test actors not adapted to: 58.2 % (alone 56.4 %). One seed.
"""

from pathlib import Path

from serjax import config_lib


def get_config():
    config = config_lib.load_config_file(Path(__file__).with_name("emodb_frames.py"))
    config.data.corpora = ("ravdess",)
    config.data.protocol = "speaker_kfold"
    config.data.folds = 6
    # Three times Emo-DB's training utterances per fold: fewer epochs for about as many steps.
    config.train.epochs = 12
    return config

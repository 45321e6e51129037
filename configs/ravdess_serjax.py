"""serjax's recommended system on RAVDESS speech: 6 actor-disjoint folds of 4 actors.

    python -m serjax.main --config=configs/ravdess_serjax.py --workdir=runs/ravdess_serjax

The system of ``configs/emodb_serjax.py`` (913 utterance functionals, speaker standardisation,
multinomial logistic regression with its L2 chosen by leave-one-actor-out over each fold's 20
training actors) on all 1440 speech files and all eight classes (calm included), folds of
``speaker_kfold`` (2 actresses and 2 actors each). ``results.json`` reports the
speaker-standardised figures under ``test`` and the unadapted ones under ``test_unadapted``.

Measured figures: see the README section "serjax's recommended system".
"""

from pathlib import Path

from serjax import config_lib


def get_config():
    config = config_lib.load_config_file(Path(__file__).with_name("emodb_serjax.py"))
    config.data.corpora = ("ravdess",)
    config.data.protocol = "speaker_kfold"
    config.data.folds = 6
    return config

"""serjax's recommended system on RAVDESS speech: 6 actor-disjoint folds of 4 actors.

    python -m serjax.main --config=configs/ravdess_serjax.py --workdir=runs/ravdess_serjax

The system of ``configs/emodb_serjax.py`` (913 utterance functionals, speaker standardisation,
multinomial logistic regression with its L2 chosen by leave-one-actor-out over each fold's 20
training actors) on all 1440 speech files and all eight classes (calm included), folds of
``speaker_kfold`` (2 actresses and 2 actors each). ``results.json`` reports the
speaker-standardised figures under ``test`` and the unadapted ones under ``test_unadapted``.

Measured (the command above; 2-core CPU shared with other work, load average 10-12, 21 min
wall for the six folds including the 1440 files' functionals, an upper bound), pooled over the
1440 test predictions: speaker-standardised (``test``) WA 67.2 %, UA 67.0 %, macro-F1 66.4 %,
per fold WA 67.2 ± 6.7 %, UA 67.0 ± 6.1 % (57.8 % to 78.1 %); test actors not adapted to
(``test_unadapted``) WA 55.3 %, UA 55.5 %, macro-F1 54.6 %. serjax's target is 68 % UA.
"""

from pathlib import Path

from serjax import config_lib


def get_config():
    config = config_lib.load_config_file(Path(__file__).with_name("emodb_serjax.py"))
    config.data.corpora = ("ravdess",)
    config.data.protocol = "speaker_kfold"
    config.data.folds = 6
    return config

"""S1's LSTM system evaluated leave-one-speaker-out over all ten Emo-DB speakers.

    python -m serjax.main --config=configs/emodb_lstm_loso.py --workdir=runs/emodb_lstm_loso

Every fold trains from scratch with one speaker as the test set and a validation speaker drawn
from the others; the report pools every fold's predictions (UA/WA) and gives mean ± std over
folds.
"""

from pathlib import Path

from serjax import config_lib


def get_config():
    config = config_lib.load_config_file(Path(__file__).with_name("emodb_lstm.py"))
    config.data.protocol = "loso"
    return config

"""S4's 1D CNN-LSTM on Emo-DB: four conv blocks on the raw 3.5 s waveform, LSTM 256.

    python -m serjax.main --config=configs/emodb_cnn_lstm_1d_s4.py --workdir=runs/s4_1d

As ``emodb_cnn_lstm_s4`` (clips cut or padded to 3.5 s, S1's speaker split) with the waveform
as input: blocks of conv 3 → batch norm → ELU → max pool 4, filters 64, 64, 128, 128.
``--config.model.bidirectional=True`` is the report's BiLSTM variant.
"""

from pathlib import Path

from serjax import config_lib


def get_config():
    config = config_lib.load_config_file(Path(__file__).with_name("emodb_cnn_lstm_s4.py"))
    config.features.kind = "waveform"
    config.model.name = "cnn_lstm_1d"
    return config

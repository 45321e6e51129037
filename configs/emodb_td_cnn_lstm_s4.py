"""S4's time-distributed 2D CNN-LSTM on Emo-DB: a CNN per 5-frame chunk, then a BiLSTM.

    python -m serjax.main --config=configs/emodb_td_cnn_lstm_s4.py --workdir=runs/s4_td

As ``emodb_cnn_lstm_s4`` (clips cut or padded to 3.5 s, S1's speaker split) with the log-mel
image of 128 bands × 219 frames (hop 256) cut into chunks of 5 frames; the model's defaults
are read off the report's printed summary. ``--config.model.bidirectional=False`` is the
report's LSTM variant.
"""

from pathlib import Path

from serjax import config_lib


def get_config():
    config = config_lib.load_config_file(Path(__file__).with_name("emodb_cnn_lstm_s4.py"))
    config.features.hop_length = 256  # 1 + 56000 // 256 = 219 frames
    config.model.name = "cnn_lstm_2d_td"
    return config

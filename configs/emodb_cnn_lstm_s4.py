"""S4's 2D CNN-LSTM on Emo-DB: four conv blocks on the log-mel image, LSTM 256.

    python -m serjax.main --config=configs/emodb_cnn_lstm_s4.py --workdir=runs/emodb_cnn_lstm_s4

Every clip cut or zero-padded to 3.5 s, 128 mel bands, evaluated on S1's speaker split
(validation 15, test 16) rather than S4's unstated one.
"""

from serjax import config_lib


def get_config():
    config = config_lib.base_config()
    config.data.corpora = ("emodb",)
    config.data.fixed_seconds = 3.5
    config.data.num_buckets = 1

    config.features.kind = "log_mel"
    config.features.n_fft = 1024
    config.features.n_mels = 128

    config.model.name = "cnn_lstm_2d"

    config.train.epochs = 50
    config.train.patience = 10
    config.train.batch_size = 16
    return config

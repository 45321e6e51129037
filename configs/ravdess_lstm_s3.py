"""S3's recurrent model on RAVDESS: 2 × LSTM 1024 on MFCC frames, dropout 0.5, MLP head.

    python -m serjax.main --config=configs/ravdess_lstm_s3.py --workdir=runs/ravdess_lstm_s3

Test actors 1 and 2 (one male, one female) as in S3; actors 3 and 4 are held out for validation
(S3 had none); audio at 22.05 kHz as in the report.
"""

from serjax import config_lib


def get_config():
    config = config_lib.base_config()
    config.data.corpora = ("ravdess",)
    config.data.sample_rate = 22050
    config.data.protocol = "named_speakers"
    config.data.val_speakers = ("03", "04")
    config.data.test_speakers = ("01", "02")

    config.features.kind = "mfcc"
    config.features.n_mfcc = 40
    config.features.n_fft = 1024
    config.features.win_length = 1024
    config.features.hop_length = 512

    config.model.name = "lstm"
    config.model.hidden_sizes = (1024, 1024)
    config.model.input_dropout = 0.0
    config.model.dropout = 0.5
    config.model.head_sizes = (256,)

    config.optim.learning_rate = 5e-4
    config.train.epochs = 50
    config.train.patience = 10
    config.train.batch_size = 32
    return config

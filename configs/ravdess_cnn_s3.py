"""S3's spatial model on RAVDESS: a CNN on 40 × 160 MFCC maps.

    python -m serjax.main --config=configs/ravdess_cnn_s3.py --workdir=runs/ravdess_cnn_s3

As ``ravdess_lstm_s3`` (22.05 kHz, test actors 1 and 2, validation 3 and 4) with MFCC 40 over a
4096-sample window, hop 512, every file cut to 3.7 s so that no map exceeds the report's 160
frames (shorter ones are zero-padded to it); 3 convolutions of 32 kernels (the first 10 × 3),
2 × 2 average pooling, LeakyReLU 0.01, dropout 0.5, L2 1e-4, Adam 5e-5.
"""

from pathlib import Path

from serjax import config_lib


def get_config():
    config = config_lib.load_config_file(Path(__file__).with_name("ravdess_lstm_s3.py"))
    config.data.max_seconds = 3.7  # 1 + 81585 // 512 = 160 frames

    config.features.n_fft = 4096
    config.features.win_length = 4096
    config.features.hop_length = 512

    config.model = config_lib.base_config().model
    config.model.name = "cnn"
    config.model.num_frames = 160

    config.optim.learning_rate = 5e-5
    config.optim.l2 = 1e-4
    config.optim.l2_params = ""  # every weight (the report's L2 1e-4 on its layers)
    return config

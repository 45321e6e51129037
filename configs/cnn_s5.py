"""S5's plain CNN baseline on female speakers of TESS, CREMA-D and RAVDESS, six classes.

    python -m serjax.main --config=configs/cnn_s5.py --workdir=runs/cnn_s5

Data, features and training as ``crnn_s5``. The report gives no layout for its CNN; this is the
CRNN's two conv blocks (32 and 64 kernels of 3 × 3, batch norm, ReLU, dropout 0.3, 2 × 2
pooling) with the recurrent layers replaced by a flattened map and a Dense 64 head.
"""

from pathlib import Path

from serjax import config_lib


def get_config():
    config = config_lib.load_config_file(Path(__file__).with_name("crnn_s5.py"))
    config.model = config_lib.base_config().model
    config.model.name = "cnn"
    config.model.filters = (32, 64)
    config.model.kernel_sizes = ((3, 3), (3, 3))
    config.model.pool_sizes = ((2, 2), (2, 2))
    config.model.padding = "SAME"
    config.model.activation = "relu"
    config.model.batch_norm = True
    config.model.conv_dropout = 0.3
    config.model.num_frames = 251  # 2.5 s at 16 kHz, hop 160: 1 + 40000 // 160
    config.model.head_sizes = (64,)
    config.model.head_dropout = 0.3
    return config

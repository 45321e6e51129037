"""A run of seconds on a synthetic corpus made on the fly: checks the whole pipeline end to end.

    python -m serjax.main --config=configs/smoke.py --workdir=runs/smoke

Three classes of harmonic signals whose pitch and loudness depend on the class, six speakers
(validation spk05, test spk06); a small LSTM on log-mel features learns it to > 90 %.
"""

from serjax import config_lib


def get_config():
    config = config_lib.base_config()
    config.download = False
    config.data.corpora = ("synthetic",)
    config.data.protocol = "named_speakers"
    config.data.val_speakers = ("spk05",)
    config.data.test_speakers = ("spk06",)
    config.data.num_buckets = 2

    config.features.kind = "log_mel"
    config.features.n_mels = 24

    config.model.name = "lstm"
    config.model.hidden_sizes = (32,)
    config.model.dropout = 0.0
    config.model.pooling = "mean"

    config.optim.learning_rate = 1e-2
    config.train.epochs = 6
    config.train.batch_size = 8
    config.train.eval_batch_size = 8
    return config

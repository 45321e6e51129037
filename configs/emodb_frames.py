"""serjax's frame-level network on Emo-DB, leave one speaker out (all ten folds).

    python -m serjax.main --config=configs/emodb_frames.py --workdir=runs/emodb_frames

A CNN on 64-band log-mel (mean-normalised per utterance, then standardised with the training
part's frame statistics, kept in the model): four blocks [3 x 3 conv -> batch norm -> 2 x 2
average pool -> ReLU] of 16, 32, 64, 64 channels (the model ``cnn``), statistics pooling (the
mean and deviation of the last map over the valid frames), a 64-unit hidden layer and the
classes. Trained with SpecAugment masks, label smoothing 0.1, class-weighted cross-entropy and
a cosine schedule with warm-up; each fold keeps the epoch with the best UA on a validation
speaker drawn from its training speakers (never the test speaker).

Measured (that command, 2-core CPU at a load average of 2-4, 78.7 min for the ten folds): UA
60.8 %, WA 58.9 %, macro-F1 57.3 %, per fold UA 59.4 ± 10.1 %. One seed. Its late fusion
with the functionals system (``configs/emodb_serjax.py``),
``python -m serjax.fusion --runs=runs/emodb_serjax,runs/emodb_frames --workdir=runs/emodb_fused``,
gives UA 86.4 % (the functionals alone 87.5 %); with the test speaker not adapted to, 81.2 %
(alone 79.1 %).
"""

from serjax import config_lib


def get_config():
    config = config_lib.base_config()
    config.data.protocol = "loso"
    config.features.kind = "log_mel"
    config.features.n_mels = 64
    config.features.cmvn = "mean"
    config.features.frame_standardise = "training"
    config.model.name = "cnn"
    config.model.filters = (16, 32, 64, 64)
    config.model.kernel_sizes = ((3, 3),) * 4
    config.model.pool_sizes = ((2, 2),) * 4
    config.model.padding = "SAME"
    config.model.activation = "relu"
    config.model.batch_norm = True
    config.model.conv_dropout = 0.1
    config.model.time_pooling = "stats"
    config.model.head_sizes = (64,)
    config.model.head_dropout = 0.3
    config.optim.learning_rate = 1e-3
    config.optim.schedule = "cosine"
    config.optim.warmup_epochs = 2.0
    config.optim.label_smoothing = 0.1
    config.optim.class_weighted = True
    config.train.epochs = 20
    config.train.batch_size = 16
    config.augment.enabled = True
    config.augment.time_masks = 2
    config.augment.time_mask_frames = 20
    config.augment.freq_masks = 2
    config.augment.freq_mask_bins = 8
    return config

"""S1's best system on Emo-DB: 2 × LSTM 128 on log-mel (40) + Δ + ΔΔ over 25-frame segments.

    python -m serjax.main --config=configs/emodb_lstm.py --workdir=runs/emodb_lstm

Speaker-independent split of S1: validation speaker 15, test speaker 16, train the other eight
(408/56/71 utterances). Segments of 25 frames every 3 frames (S1's "windows") are cut on the
device; an utterance's prediction is the mean of its segments' probabilities. S1 calls its
log-mel input "MSPEC" (``features.kind = "log_mel"`` here).
"""

from serjax import config_lib


def get_config():
    config = config_lib.base_config()
    config.data.corpora = ("emodb",)
    config.data.protocol = "named_speakers"
    config.data.val_speakers = ("15",)
    config.data.test_speakers = ("16",)
    # The README's figures were measured on untrimmed audio with its DC offset: keep both so.
    config.data.trim_silence = False
    config.data.remove_dc = False

    config.features.kind = "log_mel"
    config.features.n_mels = 40
    config.features.deltas = 2
    config.features.delta_width = 1  # S1 reads N = 1 for Δ ...
    config.features.delta_delta_width = 2  # ... and N = 2 for ΔΔ
    config.features.segment_frames = 25
    config.features.segment_shift = 3

    config.model.name = "lstm"
    config.model.hidden_sizes = (128, 128)
    config.model.dropout = 0.2
    config.model.pooling = "last"

    config.optim.optimizer = "adam"
    config.optim.learning_rate = 1e-3
    config.optim.l2 = 1e-4
    config.optim.l2_params = "head"  # S1: L2 on the dense layer only

    config.train.epochs = 10
    # S1's minibatch is 128 windows (segments) drawn across the whole training set, every
    # segment once per epoch. They are drawn in groups of 4 from one utterance, so a step
    # computes the features of 32 utterances rather than 128 (4× cheaper on a CPU; group 1 is
    # the report's exact reading).
    config.train.segment_batch = 128
    config.train.segment_group = 4
    config.train.batch_size = 2  # unused while segment_batch > 0
    config.train.eval_batch_size = 8
    return config

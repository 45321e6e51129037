"""S5's CRNN on female speakers of TESS, CREMA-D and RAVDESS, six classes.

    python -m serjax.main --config=configs/crnn_s5.py --workdir=runs/crnn_s5

Each corpus split evenly by speaker into train/val/test and merged; 16 kHz, peak-normalised,
silence-trimmed, cut/padded to 2.5 s; 64 mel bands up to 8 kHz; Adam 1e-3 with
reduce-on-plateau (factor 0.5, patience 3), 30 epochs, batch 32.

CREMA-D is not in the shared data; without it (``--config.data.corpora='("tess","ravdess")'``,
2-core CPU at a load average of 3-4, 54.6 min of training) the test speakers (TESS's YAF and
RAVDESS actors 04 and 18, 1288 files) get WA 54.0 %, UA 54.0 %, macro-F1 50.5 %; the report
gives 61 % with CREMA-D. One seed.
"""

from serjax import config_lib


def get_config():
    config = config_lib.base_config()
    config.data.corpora = ("tess", "cremad", "ravdess")
    config.data.gender = "female"
    config.data.classes = ("neutral", "happiness", "sadness", "anger", "fear", "disgust")
    config.data.protocol = "per_corpus_speaker_fraction"
    config.data.test_fraction = 0.2
    config.data.val_fraction = 0.2
    config.data.peak_normalize = True
    config.data.trim_silence = True
    config.data.fixed_seconds = 2.5
    config.data.num_buckets = 1

    config.features.kind = "log_mel"
    config.features.n_fft = 1024
    config.features.n_mels = 64
    config.features.fmax = 8000.0

    config.model.name = "crnn"

    config.optim.schedule = "plateau"
    config.optim.plateau_factor = 0.5
    config.optim.plateau_patience = 3
    config.train.epochs = 30
    config.train.batch_size = 32
    return config

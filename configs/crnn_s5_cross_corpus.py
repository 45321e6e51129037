"""S5's cross-corpus test: the CRNN trained on TESS, tested on RAVDESS's female actors.

    python -m serjax.main --config=configs/crnn_s5_cross_corpus.py --workdir=runs/s5_cross

The report trains on TESS + CREMA-D (CREMA-D is read when present under the data root: add
``"cremad"`` to ``data.corpora``). There is no validation set: nothing of the test corpus may
choose the model, so the last of the 30 epochs is tested.
"""

from pathlib import Path

from serjax import config_lib

RAVDESS_FEMALE_ACTORS = tuple(f"{a:02d}" for a in range(2, 25, 2))


def get_config():
    config = config_lib.load_config_file(Path(__file__).with_name("crnn_s5.py"))
    config.data.corpora = ("tess", "ravdess")
    config.data.protocol = "named_speakers"
    config.data.val_speakers = ()
    config.data.test_speakers = tuple(f"ravdess:{a}" for a in RAVDESS_FEMALE_ACTORS)
    return config

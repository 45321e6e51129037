"""S5's CRNN on TESS alone, across speakers: trained on OAF (aged 64), tested on YAF (aged 26).

    python -m serjax.main --config=configs/crnn_s5_tess.py --workdir=runs/crnn_s5_tess

The report's 99 % splits TESS's files at random, so both of its speakers are in training and
test; serjax splits by speaker only. With two speakers there is none left for validation: the
last of the 30 epochs is tested.
"""

from pathlib import Path

from serjax import config_lib


def get_config():
    config = config_lib.load_config_file(Path(__file__).with_name("crnn_s5.py"))
    config.data.corpora = ("tess",)
    config.data.protocol = "named_speakers"
    config.data.val_speakers = ()
    config.data.test_speakers = ("YAF",)
    return config

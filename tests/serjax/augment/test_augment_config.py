"""AugmentConfig: defaults, validation and reading ``config.augment``."""

import ml_collections
import pytest
from augment_testlib import ALL_ON

from serjax.augment import AugmentConfig


def test_defaults_are_off_and_hashable():
    aug = AugmentConfig()
    assert not aug.enabled and not aug.transforms_inputs
    hash(ALL_ON)
    assert ALL_ON.enabled and ALL_ON.waveform_transforms and ALL_ON.spectral_transforms
    assert AugmentConfig(mixup_alpha=0.2).enabled
    assert not AugmentConfig(mixup_alpha=0.2).transforms_inputs


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("noise_prob", 1.5),
        ("snr_db", (30.0, 10.0)),
        ("speed", (0.0, 1.1)),
        ("noise_colors", ("blue",)),
        ("time_masks", -1),
        ("mixup_alpha", -0.1),
    ],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})


def test_from_config_reads_fields_and_honours_enabled():
    cfg = ml_collections.ConfigDict(
        {"enabled": True, "noise_prob": 0.5, "snr_db": [5.0, 15.0], "offline": True}
    )
    aug = AugmentConfig.from_config(cfg)
    assert aug.noise_prob == 0.5 and aug.snr_db == (5.0, 15.0) and aug.offline
    cfg.enabled = False
    off = AugmentConfig.from_config(cfg)
    assert not off.enabled and off.offline and off.snr_db == (5.0, 15.0)

"""``serjax.augment`` re-exports what its modules define, where callers import it from."""

from serjax import augment
from serjax.augment import config, offline, pipeline, spectral, waveform


def test_the_package_exports_every_public_name_of_its_modules():
    for module in (config, offline, pipeline, spectral, waveform):
        own = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and (name.isupper() or getattr(value, "__module__", None) == module.__name__)
        }
        assert own, module.__name__
        for name in own:
            assert name in augment.__all__, name
            assert getattr(augment, name) is getattr(module, name), name
    assert sorted(augment.__all__) == sorted(set(augment.__all__))

"""One preprocessing for training and inference: the same file gives the same samples."""

import numpy as np
import pytest
import soundfile as sf
from data_testlib import tone

from serjax import config_lib, fold
from serjax.data import AudioCache, AudioError, Preprocessing, Utterance


def _config(**data):
    config = config_lib.base_config()
    for key, value in data.items():
        config.data[key] = value
    return config


def _speech_like(path, rate=22050, seconds=1.5):
    """A 44.1/22.05 kHz stereo file: tone bursts with silence around them."""
    t = np.arange(int(rate * seconds)) / rate
    burst = (np.abs(t - seconds / 2) < 0.4) * 0.3 * np.sin(2 * np.pi * 220 * t)
    stereo = np.stack([burst, 0.5 * burst], axis=1).astype(np.float32)
    sf.write(path, stereo, rate, subtype="PCM_16")
    return stereo, rate


@pytest.mark.parametrize(
    "data",
    [
        {"trim_silence": False, "remove_dc": False},
        {},  # the base config: trimming and DC removal on
        {"trim_silence": True, "peak_normalize": True},
        {"trim_silence": True, "fixed_seconds": 2.0},
        {"peak_normalize": True, "max_seconds": 0.5},
    ],
)
def test_training_and_inference_preprocess_a_file_identically(tmp_path, data):
    path = tmp_path / "clip.wav"
    _speech_like(path)
    config = _config(**data)
    utt = Utterance(path=path, corpus="test", speaker="s1", label="anger")
    # Training's path: the audio cache, then the part's labels.
    part = fold.decode(config, [utt], ("anger",), AudioCache())
    # Inference's paths: a file, and the same file's samples as an array.
    preprocessing = Preprocessing.from_config(config)
    from_file = preprocessing.load(path)
    samples, rate = sf.read(path, dtype="int16")
    from_array = preprocessing.from_array(samples, rate)
    np.testing.assert_array_equal(part.waveforms[0], from_file)
    np.testing.assert_array_equal(from_array, from_file)
    # And the steps did act: the length is what the options say.
    n = from_file.shape[0]
    if data.get("fixed_seconds"):
        assert n == 2 * 16000
    elif data.get("max_seconds"):
        assert n == 8000
    elif config.data.trim_silence:
        assert 0.8 * 16000 <= n < 1.2 * 16000
    else:
        assert n == round(1.5 * 16000)
    if data.get("peak_normalize"):
        assert np.abs(from_file).max() == pytest.approx(1.0)


def test_too_short_is_named_before_and_after_trimming(tmp_path):
    preprocessing = Preprocessing(sample_rate=16000, trim_silence=True, min_samples=400)
    with pytest.raises(AudioError, match=r"too short \(100 samples"):
        preprocessing.from_array(tone(100 / 16000, 16000, amplitude=0.1), 16000, name="tiny")
    # A 0.1 s blip in 1 s of silence: long enough before trimming, not after (librosa's
    # trimming keeps a few 512-sample hops around it).
    blip = np.zeros(16000, np.float32)
    blip[8000:9600] = 0.5
    longer = Preprocessing(sample_rate=16000, trim_silence=True, min_samples=8000)
    with pytest.raises(AudioError, match="after trimming silence"):
        longer.from_array(blip, 16000, name="blip")


def test_negative_durations_are_refused():
    with pytest.raises(ValueError, match="fixed_seconds and max_seconds"):
        Preprocessing(max_seconds=-1.0)

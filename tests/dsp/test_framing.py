"""Windows, pre-emphasis and framing against scipy, NumPy and librosa."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.signal

import dsp


@pytest.mark.parametrize("name", ["hann", "hamming"])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("length", [1, 2, 7, 400, 512])
def test_window_matches_scipy(name, periodic, length):
    expected = scipy.signal.get_window(name, length, fftbins=periodic)
    np.testing.assert_allclose(
        dsp.get_window(name, length, periodic=periodic), expected, atol=1e-15
    )


@pytest.mark.parametrize("length", [2, 9, 400])
def test_symmetric_windows_are_numpys(length):
    np.testing.assert_allclose(dsp.get_window("hann", length, periodic=False), np.hanning(length))
    np.testing.assert_allclose(
        dsp.get_window("hamming", length, periodic=False), np.hamming(length)
    )


def test_periodic_hann_is_not_numpys_symmetric_one():
    # librosa's STFT uses the periodic window; jnp.hanning / np.hanning are symmetric.
    periodic = dsp.get_window("hann", 400)
    assert periodic[0] == 0.0 and periodic[200] == pytest.approx(1.0)
    assert not np.allclose(periodic, np.hanning(400))


@pytest.mark.parametrize(("win_length", "n_fft"), [(400, 512), (401, 512), (511, 512), (512, 512)])
def test_padded_window_is_librosas(win_length, n_fft):
    expected = librosa.util.pad_center(
        librosa.filters.get_window("hann", win_length, fftbins=True), size=n_fft
    )
    np.testing.assert_allclose(
        dsp.padded_window("hann", win_length=win_length, n_fft=n_fft), expected, atol=1e-15
    )


def test_windows_are_cached_and_read_only():
    window = dsp.get_window("hann", 400)
    assert window is dsp.get_window("hann", 400)
    with pytest.raises(ValueError):
        window[0] = 1.0


@pytest.mark.parametrize("coef", [0.0, 0.5, 0.97])
def test_preemphasis_matches_lfilter(coef):
    x = np.random.default_rng(0).standard_normal((2, 3, 257)).astype(np.float32)
    expected = scipy.signal.lfilter([1.0, -coef], [1.0], x.astype(np.float64), axis=-1)
    np.testing.assert_allclose(dsp.preemphasis(x, coef=coef), expected, rtol=1e-6, atol=1e-6)
    # librosa's own convention differs only in its initial state; zi=0 means "start from rest".
    expected_librosa = librosa.effects.preemphasis(
        x.astype(np.float64), coef=coef, zi=np.zeros((2, 3, 1))
    )
    np.testing.assert_allclose(dsp.preemphasis(x, coef=coef), expected_librosa, atol=1e-6)


def _reference_frames(x, frame_length, hop_length, center, pad_mode):
    if center:
        x = np.pad(x, frame_length // 2, mode=pad_mode)
    frames = librosa.util.frame(x, frame_length=frame_length, hop_length=hop_length, axis=-1)
    return np.swapaxes(frames, -1, -2)


@pytest.mark.parametrize(
    ("frame_length", "hop_length", "center", "pad_mode"),
    [
        (512, 160, True, "constant"),
        (512, 160, True, "reflect"),
        (512, 160, False, "constant"),
        (7, 3, True, "reflect"),  # odd length
        (7, 3, False, "constant"),
        (8, 11, True, "constant"),  # hop longer than a frame
    ],
)
def test_frame_matches_librosa(fast_jit, frame_length, hop_length, center, pad_mode):
    x = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    frames = fast_jit(
        lambda x: dsp.frame(
            x, frame_length=frame_length, hop_length=hop_length, center=center, pad_mode=pad_mode
        )
    )(x)
    expected = _reference_frames(x, frame_length, hop_length, center, pad_mode)
    np.testing.assert_array_equal(frames, expected)


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_frame_with_lengths_frames_each_example_as_if_alone(fast_jit, pad_mode):
    # Lengths below the padding (reflected several times over), of one sample, and of T.
    total, frame_length, hop_length = 300, 64, 16
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, total)).astype(np.float32)
    lengths = np.array([300, 173, 20, 1, 2], dtype=np.int32)
    x_padded = x.copy()
    for row, length in zip(x_padded, lengths, strict=True):
        row[length:] = rng.standard_normal(total - length)  # padding need not be zeros
    frames = fast_jit(
        lambda x, n: dsp.frame(
            x, frame_length=frame_length, hop_length=hop_length, pad_mode=pad_mode, lengths=n
        )
    )(x_padded, lengths)
    n_frames = dsp.num_frames(lengths, n_fft=frame_length, hop_length=hop_length, center=True)
    for i, length in enumerate(lengths):
        expected = _reference_frames(x[i, :length], frame_length, hop_length, True, pad_mode)
        assert expected.shape[0] == n_frames[i]
        np.testing.assert_array_equal(frames[i, : n_frames[i]], expected, err_msg=f"example {i}")


def test_frame_batches_over_leading_axes():
    x = np.random.default_rng(3).standard_normal((2, 3, 500)).astype(np.float32)
    frames = dsp.frame(x, frame_length=64, hop_length=32)
    assert frames.shape == (2, 3, 1 + 500 // 32, 64)
    np.testing.assert_array_equal(frames[1, 2], dsp.frame(x[1, 2], frame_length=64, hop_length=32))

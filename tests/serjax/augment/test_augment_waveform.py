"""The waveform transforms (noise, speed) against closed forms and spectral estimates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from augment_testlib import SR, batch, snr_db, tone

from serjax.augment import waveform

# Jitted once per shape: op-by-op dispatch would compile every small op on its own.
_add_noise = jax.jit(waveform.add_noise)
_change_speed = jax.jit(waveform.change_speed)


def test_noise_has_the_requested_snr_and_color():
    from scipy import signal

    total = 2**16
    x, lens = batch([total, 30000], total)
    snr = jnp.array([0.0, 17.5])
    y = _add_noise(jax.random.key(0), x, lens, snr, jnp.array([False, True]))
    measured = [snr_db(x[0], y[0], total), snr_db(x[1], y[1], 30000)]
    np.testing.assert_allclose(measured, snr, atol=0.5)
    assert np.all(np.asarray(y[1, 30000:]) == 0)
    # White noise has a flat spectrum; pink noise falls by 3 dB an octave (slope -1 in log-log).
    for row, length, slope in ((0, total, 0.0), (1, 30000, -1.0)):
        noise = np.asarray(y[row, :length]) - np.asarray(x[row, :length])
        freqs, psd = signal.welch(noise, fs=SR, nperseg=2048)
        band = (freqs > 100) & (freqs < 6000)
        fitted = np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0]
        assert abs(fitted - slope) < 0.1


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.25])
def test_speed_matches_exact_band_limited_resampling(factor):
    # Tones spread over the band, read at n * factor: the exact answer is known in closed form.
    rng = np.random.default_rng(0)
    freqs = rng.uniform(50, 0.9 * SR / 2 / max(factor, 1.0), 30)
    amps, phases = rng.uniform(0.1, 1, 30), rng.uniform(0, 2 * np.pi, 30)

    def tones(t):
        return np.sum(
            amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t / SR + phases[:, None]), 0
        )

    length, total = 12000, 16000
    x = np.zeros((1, total), np.float32)
    x[0, :length] = tones(np.arange(length))
    y, new_lengths = _change_speed(jnp.asarray(x), jnp.array([length]), jnp.array([factor]))
    expected_length = int(np.floor(length / factor + 0.5))
    assert int(new_lengths[0]) == expected_length
    assert np.all(np.asarray(y[0, expected_length:]) == 0)
    n = np.arange(1000, expected_length - 1000)  # away from the signal's abrupt ends
    exact = tones(n * factor)
    error = np.asarray(y[0, n], np.float64) - exact
    assert 10 * np.log10(np.sum(exact**2) / np.sum(error**2)) > 40


def test_read_positions_keep_the_fraction_on_long_signals():
    step = np.array([0.9, 1.1, 2.2, 1.7999], np.float32)
    low, frac = jax.jit(waveform.read_positions, static_argnums=0)(300_000, jnp.asarray(step))
    exact = np.arange(300_000)[None, :] * step.astype(np.float64)[:, None]
    np.testing.assert_array_equal(low, np.floor(exact))
    np.testing.assert_allclose(frac, exact - np.floor(exact), atol=2e-5)


def test_speed_moves_a_tone_by_the_factor_and_cuts_at_the_padded_length():
    x = jnp.asarray(tone(1000.0, 0.5))[None]
    y, n = _change_speed(x, jnp.array([8000]), jnp.array([1.2]))
    spectrum = np.abs(np.fft.rfft(np.asarray(y[0, : int(n[0])]), n=SR))
    assert abs(np.argmax(spectrum) - 1200) <= 1
    slow, n_slow = _change_speed(x, jnp.array([8000]), jnp.array([0.8]))
    assert int(n_slow[0]) == 8000  # 10000 samples do not fit in T = 8000
    np.testing.assert_allclose(_change_speed(x, jnp.array([8000]), jnp.ones(1))[0], x, atol=1e-5)

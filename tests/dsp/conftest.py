"""Shared fixtures for the dsp tests: float64 mode, seeded test signals, a scaled tolerance.

Helpers are handed out as fixtures rather than imported, so the tests do not depend on how
pytest puts test directories on ``sys.path``.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

# LLVM's optimisation level changes how fast XLA's CPU code runs, not what it computes. The
# tests' programs are small and run once, so compiling them unoptimised saves most of the
# suite's time; the benchmark and the tests that check the default path use plain jax.jit.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


@pytest.fixture
def x64():
    """Enables float64 in JAX for one test and restores the previous setting afterwards.

    JAX's tracing caches are cleared on both switches: a function traced in float32 before
    must not be reused in float64, which JAX does not guarantee when x64 is toggled at run time.
    """
    previous = jax.config.jax_enable_x64
    jax.clear_caches()
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.clear_caches()
        jax.config.update("jax_enable_x64", previous)


def _tones_and_noise(
    num_samples: int,
    *,
    sample_rate: int,
    seed: int,
    freqs: tuple[float, ...] = (220.0, 1230.0, 3150.0),
    noise: float = 0.05,
) -> np.ndarray:
    """float64 [num_samples]: a few sinusoids plus white noise, so that every band has energy."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / sample_rate
    signal = noise * rng.standard_normal(num_samples)
    for i, f in enumerate(freqs):
        signal += (0.5 / (i + 1)) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return signal


def _assert_close(actual, desired, *, rtol: float, err_msg: str = "") -> None:
    """``|actual - desired| <= rtol * max|desired|`` elementwise.

    Errors of an FFT, a matmul or a sum scale with the largest value involved, not with each
    element, so the tolerance is relative to the array's scale.
    """
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    assert actual.shape == desired.shape, f"shape {actual.shape} != {desired.shape} {err_msg}"
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale, err_msg=err_msg)


@pytest.fixture(scope="session")
def fast_jit():
    """``jax.jit`` compiling without backend optimisation; takes jax.jit's keyword arguments."""
    return functools.partial(jax.jit, compiler_options=FAST_COMPILE)


@pytest.fixture(scope="session")
def tones_and_noise():
    return _tones_and_noise


@pytest.fixture(scope="session")
def assert_close():
    return _assert_close

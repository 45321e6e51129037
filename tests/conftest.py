"""One persistent XLA compilation cache for the whole test session, shared by the pytest-xdist
workers and by the training jobs the tests start as subprocesses: many tests compile the same
small programs, and a hit skips XLA's compile without changing any result."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jax


def pytest_configure(config):
    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        # Workers of one run share the run's id; a run without xdist uses its own pid.
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
        cache = Path(tempfile.gettempdir()) / f"serjax-tests-xla-{run}"
        cache.mkdir(exist_ok=True)
        # Subprocesses (the training job's CLI tests) inherit these.
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(cache)
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs",
        float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")),
    )

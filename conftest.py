"""Tests: one persistent XLA compilation cache for the whole session, shared by the pytest-xdist
workers and by the training jobs the tests start as subprocesses: many tests compile the same
small programs, and a hit skips XLA's compile without changing any result. The folder is
temporary, made by the session's first process (the controller) and removed by it at the end;
a cache already named by ``JAX_COMPILATION_CACHE_DIR`` is used as it is and kept."""

from __future__ import annotations

import os
import shutil
import tempfile

import jax

_MADE_HERE: list[str] = []


def pytest_configure(config):
    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        cache = tempfile.mkdtemp(prefix="serjax-tests-xla-")
        _MADE_HERE.append(cache)
        # The workers and the subprocesses inherit these.
        os.environ["JAX_COMPILATION_CACHE_DIR"] = cache
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs",
        float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")),
    )


def pytest_unconfigure(config):
    for cache in _MADE_HERE:
        shutil.rmtree(cache, ignore_errors=True)

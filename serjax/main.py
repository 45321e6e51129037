"""The training job: ``python -m serjax.main --config=configs/emodb_lstm.py --workdir=runs/x``.

Flags only; the work is :func:`serjax.experiments.train_and_evaluate`. Any config field can be
overridden on the command line, e.g. ``--config.train.epochs=20``; a config file that takes an
argument is given as ``--config=configs/file.py:arg``.
"""

from __future__ import annotations

import logging as std_logging
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from serjax import data, experiments, train
from serjax.checkpointing import CheckpointError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Run configuration file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and the report.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Data root holding one folder per corpus (default: $SERJAX_DATA_DIR)."
)
_NO_DOWNLOAD = flags.DEFINE_bool(
    "no_download", False, "Never download a missing corpus; fail with where to get it instead."
)
flags.mark_flags_as_required(["config", "workdir"])


def _quiet_libraries(record) -> bool:
    """Keeps the console to serjax's own progress: library chatter below WARNING is dropped."""
    return record.levelno >= std_logging.WARNING or "/serjax/" in record.pathname


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = _CONFIG.value
    with config.unlocked():
        if _DATA_DIR.value:
            config.data_dir = _DATA_DIR.value
        if _NO_DOWNLOAD.value:
            config.download = False
    if config.train.distributed:
        jax.distributed.initialize()
    logging.get_absl_handler().addFilter(_quiet_libraries)
    try:
        experiments.train_and_evaluate(config, _WORKDIR.value)
    except (
        ValueError,
        FileNotFoundError,
        data.DownloadError,
        CheckpointError,
        train.NonFiniteLossError,
    ) as error:
        logging.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()

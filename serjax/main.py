"""The training job: trains, evaluates and reports one configured run.

Usage:
  python -m serjax.main --config=configs/emodb_lstm.py --workdir=runs/emodb_lstm

--config names a run configuration; the project's are in configs/:
{configs}

Any config field can be overridden, e.g. --config.train.epochs=20 or
--config.model.hidden_sizes="(256, 64)". --print_config prints every field with its value
(overrides applied) and exits. A config file that takes an argument is given as
--config=configs/file.py:arg. Corpora are read from --data_dir, else $SERJAX_DATA_DIR.
"""

from __future__ import annotations

import ast
import difflib
import re
import sys
from pathlib import Path

import jax
import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from serjax import config_lib, data, experiments, train
from serjax.checkpointing import CheckpointError
from serjax.progress import quiet_libraries

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Run configuration file (see the list above).", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and the report.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Data root holding one folder per corpus (default: $SERJAX_DATA_DIR)."
)
_NO_DOWNLOAD = flags.DEFINE_bool(
    "no_download", False, "Never download a missing corpus; fail with where to get it instead."
)
_PRINT_CONFIG = flags.DEFINE_bool(
    "print_config", False, "Print every config field with its value and exit; runs nothing."
)
flags.mark_flag_as_required("config")
flags.register_multi_flags_validator(
    ["workdir", "print_config"],
    lambda values: bool(values["workdir"]) or values["print_config"],
    message="--workdir is required (the folder the run writes to)",
)

# The project's run configurations, listed by --help and when --config names no file.
CONFIGS_DIR = experiments.CONFIGS_DIR


def _config_listing(width: int = 100) -> str:
    """One line per config file: its name and its docstring's first line, cut to ``width``."""
    lines = []
    for path in sorted(CONFIGS_DIR.glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        line = f"  {path.name:<26}{doc.splitlines()[0] if doc else ''}"
        lines.append(line if len(line) <= width else line[: width - 3] + "...")
    return "\n".join(lines)


# absl prints the module docstring for --help: the list of configs is read off configs/ itself.
__doc__ = __doc__.format(configs=_config_listing())


def _config_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.py")) if folder.is_dir() else []


def config_file_problem(path: str) -> str:
    """One line on why ``--config=path`` names no loadable file, with the valid choices."""
    file = Path(path.split(":", 1)[0])
    if file.is_file():
        return f"--config={path}: the file exists but cannot be loaded as a config"
    # The choices: the named folder's config files, else the project's.
    folder = file.parent if _config_files(file.parent) else CONFIGS_DIR
    names = _config_files(folder)
    close = difflib.get_close_matches(file.name, names, n=1)
    hint = f"; did you mean {folder / close[0]}?" if close else ""
    choices = f" The config files in {folder}: {', '.join(names)}." if names else ""
    return f"--config={path}: no such file{hint}{choices}"


def unknown_field_problem(config: ml_collections.ConfigDict, dotted: str) -> str | None:
    """One line naming the first part of ``config.<dotted>`` that is no field, or None."""
    node, walked = config, "config"
    for name in dotted.split("."):
        if not isinstance(node, ml_collections.ConfigDict):
            return f"--config.{dotted}: {walked} is a value, not a group of fields"
        if name not in node:
            fields = sorted(node.keys())
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f" Did you mean {walked}.{close[0]}?" if close else ""
            return (
                f"--config.{dotted}: {walked} has no field {name!r}.{hint} Its fields: "
                f"{', '.join(fields)} (--print_config shows them all)."
            )
        node, walked = node[name], f"{walked}.{name}"
    return None


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with config mistakes reported in one line like its other errors."""
    try:
        argv = app.parse_flags_with_usage(argv)
    except (AttributeError, KeyError):
        # ml_collections applies the overrides while it parses --config and fails with chained
        # tracebacks on a field that does not exist; name the field and its neighbours instead.
        problem = _override_problem(argv)
        if problem is None:
            raise
    else:
        if isinstance(_CONFIG.value, ml_collections.ConfigDict):
            return argv
        # ml_collections defers a missing file's error until the config is first read.
        problem = config_file_problem(config_flags.get_config_filename(flags.FLAGS["config"]))
    sys.stderr.write(f"FATAL Flags parsing error: {problem}\n")
    sys.stderr.write("Pass --helpshort or --helpfull to see help on flags.\n")
    sys.exit(1)


def _config_argument(argv: list[str]) -> str | None:
    """The value of ``--config=VALUE`` or ``--config VALUE`` in ``argv``."""
    for index, arg in enumerate(argv[1:], start=1):
        if match := re.fullmatch(r"--?config=(.*)", arg):
            return match[1]
        if re.fullmatch(r"--?config", arg) and index + 1 < len(argv):
            return argv[index + 1]
    return None


def _override_problem(argv: list[str]) -> str | None:
    """The first ``--config.a.b=...`` in ``argv`` that names no field, described; or None."""
    path = _config_argument(argv)
    if path is None:
        return None
    file, _, arg = path.partition(":")
    config = config_lib.load_config_file(file, arg or None)
    for arg in argv[1:]:
        match = re.match(r"--?config\.([\w.]+)", arg)
        if match and (problem := unknown_field_problem(config, match[1])):
            return problem
    return None


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = _CONFIG.value
    with config.unlocked():
        if _DATA_DIR.value:
            config.data_dir = _DATA_DIR.value
        if _NO_DOWNLOAD.value:
            config.download = False
    if _PRINT_CONFIG.value:
        print(config)
        try:
            config_lib.validate(config)
        except (ValueError, KeyError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    if config.train.distributed:
        jax.distributed.initialize()
    logging.get_absl_handler().addFilter(quiet_libraries)
    try:
        experiments.train_and_evaluate(config, _WORKDIR.value)
    except (
        ValueError,
        FileNotFoundError,
        data.DownloadError,
        CheckpointError,
        train.NonFiniteLossError,
    ) as error:
        # Printed once, without a log prefix: it is the answer to the command, not a log line.
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()

"""A training run's model, read back for inference: its folder, checkpoint, config and weights.

Only the checkpoint's ``model`` item is restored (see :mod:`serjax.checkpointing`), and the
workdir is only read, never written, so a run that is still training can be used.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import ml_collections
from flax import nnx

from serjax import config_lib, forward
from serjax.checkpointing import Checkpointer, CheckpointError, choose_checkpoint
from serjax.predict.results import PredictorError

__all__ = ["CHECKPOINT_DIR", "LoadedRun", "PredictorError", "load_run", "resolve_run_dir"]

# A run's checkpoints, under its workdir (or under each fold's folder).
CHECKPOINT_DIR = "checkpoints"


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    """A run's model ready for :func:`serjax.forward.predict_step`.

    Attributes:
      config: the training config (in today's names, see ``config_lib.upgrade``).
      class_names: the model's classes, in output order.
      graphdef, state: the split model (``nnx.split``) in eval mode, with the saved weights.
      checkpoint: the checkpoint folder the weights came from.
    """

    config: ml_collections.ConfigDict
    class_names: tuple[str, ...]
    graphdef: Any
    state: Any
    checkpoint: Path


def resolve_run_dir(workdir: str | os.PathLike[str], fold: str | None = None) -> Path:
    """The folder holding one run's ``checkpoints/``: the workdir itself, or a LOSO fold of it.

    Raises:
      PredictorError: the workdir does not exist, is a multi-fold workdir and ``fold`` is None
        (the message lists the folds), or names a fold it does not have.
    """
    workdir = Path(workdir).expanduser()
    if not workdir.is_dir():
        raise PredictorError(f"workdir {workdir} does not exist or is not a folder")
    folds_dir = workdir / "folds"
    folds = sorted(p.name for p in folds_dir.iterdir() if p.is_dir()) if folds_dir.is_dir() else []
    if fold is None:
        if folds and not (workdir / CHECKPOINT_DIR).is_dir():
            raise PredictorError(
                f"{workdir} holds one run per fold; choose one with --fold (Python: fold=...). "
                f"Folds: {', '.join(folds)}"
            )
        return workdir
    if not folds:
        raise PredictorError(f"--fold {fold} given, but {workdir} has no folds/ (a single run)")
    if fold not in folds:
        raise PredictorError(f"{workdir} has no fold {fold!r}; folds: {', '.join(folds)}")
    return folds_dir / fold


def _config_from_meta(meta: dict[str, Any], where: Path) -> tuple[ml_collections.ConfigDict, tuple]:
    if "config" not in meta or "class_names" not in meta:
        raise PredictorError(
            f"checkpoint {where} has no config or class names in its metadata, so it cannot be "
            "used for inference (was it saved by serjax.train?)"
        )
    config = ml_collections.ConfigDict(config_lib.upgrade(meta["config"]))
    class_names = tuple(str(c) for c in meta["class_names"])
    try:
        config_lib.validate(config)
    except (ValueError, KeyError, AttributeError, TypeError) as e:
        raise PredictorError(f"checkpoint {where} holds an unusable config: {e}") from e
    if len(class_names) < 2:
        raise PredictorError(f"checkpoint {where} lists {len(class_names)} class(es); need 2+")
    return config, class_names


def load_run(
    workdir: str | os.PathLike[str], checkpoint: str | int = "best", *, fold: str | None = None
) -> LoadedRun:
    """The model of a training workdir, with the weights of one checkpoint.

    Args:
      workdir: the training run's ``--workdir``.
      checkpoint: ``"best"`` (by validation UA), ``"latest"`` or a saved step number.
      fold: for a multi-fold (LOSO, k-fold) workdir, the fold's name.

    Raises:
      PredictorError: no such workdir, fold or checkpoint; metadata without the config; or
        weights that do not fit the model the saved config describes.
    """
    run_dir = resolve_run_dir(workdir, fold)
    checkpoints = run_dir / CHECKPOINT_DIR
    if not checkpoints.is_dir():
        raise PredictorError(
            f"{run_dir} has no {CHECKPOINT_DIR}/ folder: not a training workdir, or its run "
            "has not saved a checkpoint yet"
        )
    try:
        which, step = choose_checkpoint(checkpoints, checkpoint)
    except CheckpointError as e:
        raise PredictorError(str(e)) from None
    where = checkpoints / which / str(step)
    with Checkpointer(checkpoints, read_only=True) as store:
        try:
            meta = store.read_meta(which, step)
        except CheckpointError as e:
            raise PredictorError(f"cannot read checkpoint {where}: {e}") from e
        config, class_names = _config_from_meta(meta, where)
        try:
            model = nnx.eval_shape(lambda: forward.create_model(config, len(class_names)))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise PredictorError(
                f"the config saved in checkpoint {where} does not describe a model this "
                f"version of serjax can build: {e}"
            ) from e
        model.eval()
        graphdef, state = nnx.split(model)
        try:
            stored, _ = store.restore(which, {"model": nnx.to_pure_dict(state)}, step)
        except CheckpointError as e:
            raise PredictorError(
                f"checkpoint {where} does not fit the model its saved config describes "
                f"(config and weights disagree): {e}"
            ) from e
    nnx.replace_by_pure_dict(state, stored["model"])
    return LoadedRun(config, class_names, graphdef, state, where)

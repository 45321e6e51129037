"""Checkpoints of a training run, on orbax; the only module that imports orbax.

A run keeps two sets of checkpoints under one folder (normally ``workdir/checkpoints``)::

    checkpoints/
      latest/<step>/{state,meta}   the newest states, to resume an interrupted run (keep 2)
      best/<step>/{state,meta}     the state with the best validation score so far (keep 1)

Each checkpoint holds

* ``state``: a pytree of arrays (``nnx.state(model)``, the optimizer state, the step, RNG key
  data or typed keys...), written with orbax's ``StandardSave``;
* ``meta``: a JSON dict (epoch, early-stopping counters, best score, class names, the config
  as a dict...), written with ``JsonSave``.

Durability: orbax writes each checkpoint into ``<step>.orbax-checkpoint-tmp-<time>/`` and
renames it to ``<step>/`` only once every file is written, so a crash mid-save leaves the
previous checkpoints intact and the partial folder is ignored (and removed the next time a
``Checkpointer`` opens the folder). Saves run in a background thread; ``close`` (or leaving the
``with`` block) waits for them, and so do ``restore`` and ``read_meta``.

Restoring takes an *abstract* state (the pytree of a freshly built model and optimizer, or its
``jax.eval_shape``) and checks it against the stored array shapes first, so that a model built
with different sizes gives a ``CheckpointError`` naming the first differing leaf instead of an
error from deep inside the array reader. Stored dtypes are cast to the abstract state's dtypes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

__all__ = ["WHICH", "CheckpointError", "Checkpointer", "latest_or_none"]

PyTree = Any

# The two checkpoint sets, by their sub-folder names.
WHICH: tuple[str, ...] = ("latest", "best")
_ITEMS = ("state", "meta")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the model it is restored into."""


def _key_name(entry: Any) -> str:
    """The name of one pytree path entry, the same for a dict key, attribute or index."""
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _path_name(path: tuple[Any, ...]) -> str:
    return "/".join(_key_name(p) for p in path)


def _stored_shape(leaf: Any) -> tuple[int, ...] | None:
    shape = getattr(leaf, "shape", None)
    return None if shape is None else tuple(int(d) for d in shape)


def _is_prng_key(leaf: Any) -> bool:
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _expected_stored_shape(leaf: Any) -> tuple[int, ...]:
    """Shape of ``leaf`` as stored on disk: typed PRNG keys are written as their key data."""
    if _is_prng_key(leaf):
        return tuple(jax.eval_shape(jax.random.key_data, leaf).shape)
    return tuple(int(d) for d in np.shape(leaf))


def _to_abstract(tree: PyTree) -> PyTree:
    """Replaces concrete arrays by ``jax.ShapeDtypeStruct``s (keeping their sharding)."""

    def convert(x: Any) -> Any:
        if isinstance(x, jax.ShapeDtypeStruct):
            return x
        if isinstance(x, jax.Array | np.ndarray | np.generic):
            return ocp.utils.to_shape_dtype_struct(x)
        return x

    return jax.tree.map(convert, tree)


def _check_shapes(stored: PyTree, abstract: PyTree, where: Path) -> None:
    """Raises ``CheckpointError`` naming the first leaf whose path or shape differs."""
    stored_leaves = {
        _path_name(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(stored)[0]
    }
    abstract_leaves = jax.tree_util.tree_flatten_with_path(abstract)[0]
    wanted = set()
    for path, leaf in abstract_leaves:
        name = _path_name(path)
        wanted.add(name)
        if name not in stored_leaves:
            raise CheckpointError(
                f"checkpoint {where} has no array '{name}' that the model expects "
                f"(shape {_expected_stored_shape(leaf)}); it was saved from a different model "
                "or optimizer"
            )
        have = _stored_shape(stored_leaves[name])
        want = _expected_stored_shape(leaf)
        if have is not None and have != want:
            raise CheckpointError(
                f"checkpoint {where} does not fit the model: '{name}' has shape {have} in the "
                f"checkpoint but {want} in the model being restored (was it built with a "
                "different configuration?)"
            )
    extra = [name for name in stored_leaves if name not in wanted]
    if extra:
        raise CheckpointError(
            f"checkpoint {where} holds array '{extra[0]}' (and {len(extra) - 1} more) that the "
            "model being restored does not have; it was saved from a different model or optimizer"
        )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    if hasattr(obj, "__array__"):
        return np.asarray(obj).tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _jsonable_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A plain-JSON copy of ``meta`` (NumPy scalars, tuples, paths converted)."""
    if not isinstance(meta, Mapping):
        raise TypeError(f"checkpoint meta must be a dict, got {type(meta).__name__}")
    try:
        return json.loads(json.dumps(dict(meta), default=_json_default))
    except (TypeError, ValueError) as e:
        raise TypeError(f"checkpoint meta is not JSON-serialisable: {e}") from e


def _manager(path: Path, max_to_keep: int, read_only: bool) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        create=not read_only,
        # Removes folders left by a save that was interrupted, so they never pile up; a reader
        # must not, since the "interrupted" save may be one a running training is writing.
        cleanup_tmp_directories=not read_only,
        read_only=read_only,
    )
    return ocp.CheckpointManager(
        path,
        options=options,
        item_handlers={
            "state": ocp.StandardCheckpointHandler(),
            "meta": ocp.JsonCheckpointHandler(),
        },
    )


class Checkpointer:
    """The ``latest`` and ``best`` checkpoint sets of one run.

    Args:
      directory: the checkpoint folder (created if missing), e.g. ``workdir / "checkpoints"``.
      keep_latest: how many ``latest`` checkpoints to keep (the newest ones).
      keep_best: how many ``best`` checkpoints to keep (the newest saved, i.e. the best ones
        when ``save_best`` is only called on improvement).
      read_only: only read: nothing is created, tidied or saved (inference on a workdir that
        may still be training, or that the user cannot write).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        keep_latest: int = 2,
        keep_best: int = 1,
        read_only: bool = False,
    ) -> None:
        if keep_latest < 1 or keep_best < 1:
            raise ValueError(
                f"keep_latest and keep_best must be >= 1, got {keep_latest}, {keep_best}"
            )
        # orbax needs absolute paths; resolving also makes error messages unambiguous.
        self.directory = Path(directory).expanduser().resolve()
        if not read_only:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._managers = {
            "latest": _manager(self.directory / "latest", keep_latest, read_only),
            "best": _manager(self.directory / "best", keep_best, read_only),
        }
        self._closed = False

    # -- saving -----------------------------------------------------------------------------

    def _manager_for(self, which: str) -> ocp.CheckpointManager:
        if self._closed:
            raise CheckpointError(f"Checkpointer for {self.directory} is closed")
        if which not in self._managers:
            raise ValueError(f"unknown checkpoint set {which!r}; valid names: {', '.join(WHICH)}")
        return self._managers[which]

    def _save(self, which: str, step: int, state: PyTree, meta: Mapping[str, Any]) -> bool:
        manager = self._manager_for(which)
        step = int(step)
        if step < 0:
            raise ValueError(f"checkpoint step must be >= 0, got {step}")
        meta = _jsonable_meta(meta)
        newest = manager.latest_step()
        if newest is not None and step == newest:
            # Saving again right after resuming from this very step: the state is the same.
            logging.warning(
                "A %s checkpoint for step %d already exists in %s; not saving it again.",
                which,
                step,
                self.directory / which,
            )
            return False
        if newest is not None and step < newest:
            # orbax would silently skip it, and the kept set would no longer be the newest.
            raise CheckpointError(
                f"cannot save {which} checkpoint for step {step}: {self.directory / which} "
                f"already holds the later step {newest}"
            )
        saved = manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                meta=ocp.args.JsonSave(meta),
            ),
        )
        if not saved:
            raise CheckpointError(f"orbax declined to save {which} checkpoint for step {step}")
        return True

    def save_latest(self, step: int, state: PyTree, meta: Mapping[str, Any]) -> bool:
        """Saves a resumption checkpoint (asynchronously; see ``wait_until_finished``).

        Args:
          step: the training step; must not be lower than the newest saved ``latest`` step.
          state: a pytree of arrays (JAX/NumPy arrays, typed PRNG keys, Python scalars).
          meta: a JSON-serialisable dict; NumPy scalars and arrays, tuples and paths are
            converted.

        Returns:
          True if saved; False (with a logged warning) when that step is already saved.
        """
        return self._save("latest", step, state, meta)

    def save_best(self, step: int, state: PyTree, meta: Mapping[str, Any]) -> bool:
        """Saves the best-so-far checkpoint, replacing the previous best; see ``save_latest``."""
        return self._save("best", step, state, meta)

    # -- reading ----------------------------------------------------------------------------

    def all_steps(self, which: str) -> list[int]:
        """The saved steps of one set, ascending (without any save still in progress)."""
        return sorted(self._manager_for(which).all_steps())

    def latest_step(self) -> int | None:
        """The newest ``latest`` step, or None when there is none."""
        return self._manager_for("latest").latest_step()

    def best_step(self) -> int | None:
        """The step of the ``best`` checkpoint, or None when there is none."""
        return self._manager_for("best").latest_step()

    def _resolve_step(self, which: str, step: int | None) -> tuple[ocp.CheckpointManager, int]:
        manager = self._manager_for(which)
        # A save still being written in the background is not readable yet.
        manager.wait_until_finished()
        steps = sorted(manager.all_steps())
        if not steps:
            raise CheckpointError(f"no {which} checkpoint in {self.directory / which}")
        if step is None:
            return manager, steps[-1]
        if int(step) not in steps:
            raise CheckpointError(
                f"no {which} checkpoint for step {step} in {self.directory / which}; "
                f"saved steps: {steps}"
            )
        return manager, int(step)

    def restore(
        self, which: str, abstract_state: PyTree, step: int | None = None
    ) -> tuple[PyTree, dict[str, Any]]:
        """Reads a checkpoint into the structure of ``abstract_state``.

        Args:
          which: ``"latest"`` or ``"best"``.
          abstract_state: the pytree to restore into, with the same structure as the saved
            state: concrete arrays (e.g. ``nnx.state`` of a freshly built model) or
            ``jax.ShapeDtypeStruct`` leaves (``jax.eval_shape`` / ``nnx.eval_shape``). Restored
            arrays take its dtypes and, where given, its shardings.
          step: a saved step; None takes the newest.

        Returns:
          ``(state, meta)``: the state with the structure of ``abstract_state``, and the meta dict.

        Raises:
          CheckpointError: no such checkpoint, or its arrays do not match ``abstract_state``
            (the message names the first differing path and both shapes), or it is unreadable.
        """
        manager, step = self._resolve_step(which, step)
        where = self.directory / which / str(step)
        try:
            stored = manager.item_metadata(step)["state"]
        except Exception as e:  # orbax raises many types for a damaged folder
            raise CheckpointError(f"cannot read checkpoint {where}: {e}") from e
        if stored is None:
            raise CheckpointError(f"checkpoint {where} has no readable 'state' item")
        abstract = _to_abstract(abstract_state)
        _check_shapes(stored, abstract, where)
        try:
            restored = manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract),
                    meta=ocp.args.JsonRestore(),
                ),
            )
        except Exception as e:
            raise CheckpointError(f"cannot restore checkpoint {where}: {e}") from e
        return restored.state, dict(restored.meta or {})

    def read_meta(self, which: str, step: int | None = None) -> dict[str, Any]:
        """The meta dict of a checkpoint (newest when ``step`` is None), without its arrays."""
        manager, step = self._resolve_step(which, step)
        try:
            restored = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        except Exception as e:
            raise CheckpointError(
                f"cannot read meta of checkpoint {self.directory / which / str(step)}: {e}"
            ) from e
        return dict(restored.meta or {})

    # -- lifetime ---------------------------------------------------------------------------

    def wait_until_finished(self) -> None:
        """Blocks until every save started so far is on disk."""
        for manager in self._managers.values():
            manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases orbax's threads; further calls are no-ops."""
        if self._closed:
            return
        try:
            self.wait_until_finished()
        finally:
            for manager in self._managers.values():
                manager.close()
            self._closed = True

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def latest_or_none(directory: str | Path, which: str = "latest") -> int | None:
    """The newest saved step of ``directory/<which>``, or None; creates nothing.

    Meant for deciding whether to resume, before building a ``Checkpointer``.
    """
    if which not in WHICH:
        raise ValueError(f"unknown checkpoint set {which!r}; valid names: {', '.join(WHICH)}")
    path = Path(directory).expanduser().resolve() / which
    if not path.is_dir():
        return None
    # Only finalized step folders count; an interrupted save's temporary folder does not.
    steps = ocp.utils.checkpoint_steps(path)
    return max(steps) if steps else None

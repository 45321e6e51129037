"""Checkpoints of a training run, on orbax; the only module that imports orbax.

A run keeps two sets of checkpoints under one folder (normally ``workdir/checkpoints``)::

    checkpoints/
      latest/<step>/{model,optimizer,meta}   the newest, to resume an interrupted run (keep 2)
      best/<step>/{model,optimizer,meta}     the best by validation score so far (keep 1)

Each checkpoint holds

* ``model``: the model's variables (parameters, batch statistics, its RNG streams) as a pytree
  of arrays, written with orbax's ``StandardSave``; inference restores this item alone;
* ``optimizer``: the optimizer's state (moments, step count, injected hyper-parameters), what
  resuming needs beyond the model;
* ``meta``: a JSON dict (epoch, early-stopping counters, best score, class names, the config
  as a dict...), written with ``JsonSave``.

Checkpoints written before the model had an item of its own hold one ``state`` item, the pure
dict of ``(model, optimizer)`` (keys 0 and 1); :meth:`Checkpointer.restore` reads them as the
two items, so older run directories keep working.

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
import logging as std_logging
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from serjax.files import json_default

__all__ = [
    "ITEMS",
    "WHICH",
    "CheckpointError",
    "Checkpointer",
    "choose_checkpoint",
    "latest_or_none",
    "saved_steps",
]

PyTree = Any

# The two checkpoint sets, by their sub-folder names.
WHICH: tuple[str, ...] = ("latest", "best")
# The array items of a checkpoint, beside its JSON "meta".
ITEMS: tuple[str, ...] = ("model", "optimizer")
# The single array item of checkpoints written before ITEMS: {0: model, 1: optimizer}.
_LEGACY_ITEM = "state"
_LEGACY_KEYS = {"model": 0, "optimizer": 1}


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


def _check_shapes(stored: PyTree, abstract: PyTree, where: Path, item: str) -> None:
    """Raises ``CheckpointError`` naming the first leaf (``item/path``) whose path or shape
    differs."""
    stored_leaves = {
        f"{item}/{_path_name(path)}": leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(stored)[0]
    }
    abstract_leaves = jax.tree_util.tree_flatten_with_path(abstract)[0]
    wanted = set()
    for path, leaf in abstract_leaves:
        name = f"{item}/{_path_name(path)}"
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


def _jsonable_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A plain-JSON copy of ``meta`` (NumPy scalars, tuples, paths converted)."""
    if not isinstance(meta, Mapping):
        raise TypeError(f"checkpoint meta must be a dict, got {type(meta).__name__}")
    try:
        return json.loads(json.dumps(dict(meta), default=json_default))
    except (TypeError, ValueError) as e:
        raise TypeError(f"checkpoint meta is not JSON-serialisable: {e}") from e


def _check_items(items: Mapping[str, PyTree], what: str) -> None:
    if not isinstance(items, Mapping) or not items or set(items) - set(ITEMS):
        got = sorted(items) if isinstance(items, Mapping) else type(items).__name__
        raise ValueError(f"{what} must be a dict of items among {', '.join(ITEMS)}; got {got}")


class _ReadOnlyNotices(std_logging.Filter):
    """Drops orbax's warnings that a read-only manager is read-only: a ``Checkpointer`` opened
    with ``read_only=True`` asked for exactly that, and the warnings read like errors."""

    NOTICES = ("CheckpointManagerOptions.read_only=True", "Given directory is read only")

    def filter(self, record: std_logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.NOTICES)


std_logging.getLogger("absl").addFilter(_ReadOnlyNotices())


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
            **{item: ocp.StandardCheckpointHandler() for item in (*ITEMS, _LEGACY_ITEM)},
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

    def _save(
        self, which: str, step: int, items: Mapping[str, PyTree], meta: Mapping[str, Any]
    ) -> bool:
        manager = self._manager_for(which)
        _check_items(items, "checkpoint items")
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
                **{name: ocp.args.StandardSave(tree) for name, tree in items.items()},
                meta=ocp.args.JsonSave(meta),
            ),
        )
        if not saved:
            raise CheckpointError(f"orbax declined to save {which} checkpoint for step {step}")
        return True

    def save_latest(self, step: int, items: Mapping[str, PyTree], meta: Mapping[str, Any]) -> bool:
        """Saves a resumption checkpoint (asynchronously; see ``wait_until_finished``).

        Args:
          step: the training step; must not be lower than the newest saved ``latest`` step.
          items: ``{"model": ..., "optimizer": ...}`` (one or both of :data:`ITEMS`), each a
            pytree of arrays (JAX/NumPy arrays, typed PRNG keys, Python scalars).
          meta: a JSON-serialisable dict; NumPy scalars and arrays, tuples and paths are
            converted.

        Returns:
          True if saved; False (with a logged warning) when that step is already saved.

        Raises:
          ValueError: ``items`` names something other than :data:`ITEMS`.
        """
        return self._save("latest", step, items, meta)

    def save_best(self, step: int, items: Mapping[str, PyTree], meta: Mapping[str, Any]) -> bool:
        """Saves the best-so-far checkpoint, replacing the previous best; see ``save_latest``."""
        return self._save("best", step, items, meta)

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
        self, which: str, template: Mapping[str, PyTree], step: int | None = None
    ) -> tuple[dict[str, PyTree], dict[str, Any]]:
        """Reads the items ``template`` names from a checkpoint, into its structure.

        Args:
          which: ``"latest"`` or ``"best"``.
          template: ``{item: tree}`` for the items to read (``{"model": ...}`` alone for
            inference): each tree has the saved structure, with concrete arrays (e.g. the
            ``nnx`` state of a freshly built model) or ``jax.ShapeDtypeStruct`` leaves
            (``jax.eval_shape`` / ``nnx.eval_shape``). Restored arrays take its dtypes and,
            where given, its shardings.
          step: a saved step; None takes the newest.

        Returns:
          ``(items, meta)``: the restored items, each with the structure of its template, and
          the meta dict.

        Raises:
          CheckpointError: no such checkpoint, or its arrays do not match the template (the
            message names the first differing path and both shapes), or it is unreadable.
          ValueError: ``template`` names something other than :data:`ITEMS`.
        """
        _check_items(template, "the restore template")
        manager, step = self._resolve_step(which, step)
        where = self.directory / which / str(step)
        try:
            stored = manager.item_metadata(step)
        except Exception as e:  # orbax raises many types for a damaged folder
            raise CheckpointError(f"cannot read checkpoint {where}: {e}") from e
        abstract = {name: _to_abstract(tree) for name, tree in template.items()}
        if all(stored.get(name) is None for name in abstract) and stored.get(_LEGACY_ITEM):
            return self._restore_legacy(manager, step, stored[_LEGACY_ITEM], abstract, where)
        for name, tree in abstract.items():
            if stored.get(name) is None:
                raise CheckpointError(f"checkpoint {where} has no readable {name!r} item")
            _check_shapes(stored[name], tree, where, name)
        try:
            restored = manager.restore(
                step,
                args=ocp.args.Composite(
                    **{name: ocp.args.StandardRestore(tree) for name, tree in abstract.items()},
                    meta=ocp.args.JsonRestore(),
                ),
            )
        except Exception as e:
            raise CheckpointError(f"cannot restore checkpoint {where}: {e}") from e
        return {name: restored[name] for name in abstract}, dict(restored.meta or {})

    def _restore_legacy(
        self,
        manager: ocp.CheckpointManager,
        step: int,
        stored: PyTree,
        abstract: dict[str, PyTree],
        where: Path,
    ) -> tuple[dict[str, PyTree], dict[str, Any]]:
        """Items from a checkpoint of the single-``state`` layout ``{0: model, 1: optimizer}``;
        the items not asked for are read as stored."""
        stored = {int(k): v for k, v in stored.items()}
        if set(stored) != set(_LEGACY_KEYS.values()):
            raise CheckpointError(f"checkpoint {where} has an unknown 'state' layout")
        joint = {
            key: abstract[name] if name in abstract else _abstract_of_stored(stored[key])
            for name, key in _LEGACY_KEYS.items()
        }
        _check_shapes(stored, joint, where, _LEGACY_ITEM)
        try:
            restored = manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(joint), meta=ocp.args.JsonRestore()
                ),
            )
        except Exception as e:
            raise CheckpointError(f"cannot restore checkpoint {where}: {e}") from e
        items = {name: restored.state[_LEGACY_KEYS[name]] for name in abstract}
        return items, dict(restored.meta or {})

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


def _abstract_of_stored(metadata: PyTree) -> PyTree:
    """``jax.ShapeDtypeStruct`` leaves for a tree of orbax array metadata."""
    return jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(tuple(m.shape), m.dtype),
        metadata,
        is_leaf=lambda m: hasattr(m, "shape") and hasattr(m, "dtype"),
    )


def saved_steps(directory: str | Path, which: str) -> list[int]:
    """The finished steps of ``directory/<which>``, ascending; creates and opens nothing.

    A save still being written (or one a crash interrupted) has a temporary name and is not
    listed.

    Raises:
      ValueError: ``which`` is not one of :data:`WHICH`.
    """
    if which not in WHICH:
        raise ValueError(f"unknown checkpoint set {which!r}; valid names: {', '.join(WHICH)}")
    path = Path(directory).expanduser().resolve() / which
    if not path.is_dir():
        return []
    return sorted(int(step) for step in ocp.utils.checkpoint_steps(path))


def latest_or_none(directory: str | Path, which: str = "latest") -> int | None:
    """The newest saved step of ``directory/<which>``, or None; creates nothing.

    Meant for deciding whether to resume, before building a ``Checkpointer``.
    """
    steps = saved_steps(directory, which)
    return steps[-1] if steps else None


def choose_checkpoint(directory: str | Path, checkpoint: str | int) -> tuple[str, int]:
    """``(set, step)`` of ``"best"``, ``"latest"`` or a saved step number in ``directory``.

    Raises:
      CheckpointError: no such checkpoint (the message lists what was saved), or
        ``checkpoint`` is neither a set name nor a step number.
    """
    saved = {which: saved_steps(directory, which) for which in ("best", "latest")}
    if isinstance(checkpoint, str) and checkpoint in saved:
        if not saved[checkpoint]:
            others = [f"{w}: {s}" for w, s in saved.items() if s]
            raise CheckpointError(
                f"no {checkpoint} checkpoint in {directory}"
                + (f" (saved: {'; '.join(others)})" if others else "; the run saved none yet")
            )
        return checkpoint, saved[checkpoint][-1]
    try:
        step = int(checkpoint)
    except (TypeError, ValueError):
        raise CheckpointError(
            f"checkpoint must be best, latest or a step number, got {checkpoint!r}"
        ) from None
    for which in ("latest", "best"):
        if step in saved[which]:
            return which, step
    listing = sorted(set(saved["best"]) | set(saved["latest"]))
    raise CheckpointError(f"no checkpoint for step {step} in {directory}; saved steps: {listing}")

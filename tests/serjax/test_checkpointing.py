"""Tests of serjax.checkpointing: round trips, the latest/best sets, and failure modes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from serjax.checkpointing import Checkpointer, CheckpointError, latest_or_none


class TinyModel(nnx.Module):
    """Params, batch statistics and a dropout RNG stream: every kind of nnx state."""

    def __init__(self, hidden: int, *, rngs: nnx.Rngs) -> None:
        self.dense = nnx.Linear(3, hidden, rngs=rngs)
        self.norm = nnx.BatchNorm(hidden, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)
        self.head = nnx.Linear(hidden, 2, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.dropout(self.norm(self.dense(x))))


def build(hidden: int = 4, seed: int = 0) -> tuple[TinyModel, nnx.Optimizer]:
    model = TinyModel(hidden, rngs=nnx.Rngs(seed))
    return model, nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)


def run_state(model: nnx.Module, optimizer: nnx.Optimizer) -> dict:
    return {"model": nnx.state(model), "optimizer": nnx.state(optimizer)}


def plain(tree) -> list[np.ndarray]:
    """Leaves as NumPy arrays, typed PRNG keys as their key data, for exact comparison."""
    leaves = []
    for leaf in jax.tree.leaves(tree):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        leaves.append(np.asarray(leaf))
    return leaves


def assert_trees_equal(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(plain(a), plain(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def trained():
    """A model and optimizer after two training steps, so that adam's moments are non-zero."""
    model, optimizer = build(seed=0)
    x = jnp.arange(15.0).reshape(5, 3) / 10

    @nnx.jit
    def train_step(m, opt):
        opt.update(m, nnx.grad(lambda m: jnp.mean(m(x) ** 2))(m))

    for _ in range(2):
        train_step(model, optimizer)
    return model, optimizer


def small_state(value: float, hidden: int = 4) -> dict:
    """Checkpoint items holding a model item only."""
    return {
        "model": {"w": jnp.full((3, hidden), value, jnp.float32), "step": jnp.asarray(int(value))}
    }


def test_round_trip_into_fresh_model(tmp_path, trained):
    model, optimizer = trained
    meta = {"epoch": np.int64(3), "best_val_ua": np.float32(0.5), "classes": ("a", "b")}
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        assert ckpt.save_latest(10, run_state(model, optimizer), meta)

    fresh_model, fresh_optimizer = build(seed=1)
    # Before the restore the fresh model differs, so equality afterwards means something.
    assert not np.array_equal(fresh_model.dense.kernel[...], model.dense.kernel[...])
    assert int(fresh_optimizer.step[...]) == 0
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        assert ckpt.latest_step() == 10
        state, got_meta = ckpt.restore("latest", run_state(fresh_model, fresh_optimizer))
    nnx.update(fresh_model, state["model"])
    nnx.update(fresh_optimizer, state["optimizer"])

    assert got_meta == {"epoch": 3, "best_val_ua": 0.5, "classes": ["a", "b"]}
    assert_trees_equal(nnx.state(fresh_model), nnx.state(model))
    assert_trees_equal(nnx.state(fresh_optimizer), nnx.state(optimizer))
    assert int(fresh_optimizer.step[...]) == 2
    mu = jax.tree.leaves(nnx.state(fresh_optimizer))
    assert any(np.any(np.asarray(leaf) != 0) for leaf in mu if leaf.dtype == jnp.float32)
    x = jnp.ones((2, 3))
    model.eval()
    fresh_model.eval()
    np.testing.assert_array_equal(fresh_model(x), model(x))


def test_restore_into_eval_shape_abstract_state(tmp_path, trained):
    model, optimizer = trained
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save_best(4, run_state(model, optimizer), {"epoch": 1})
        abstract_model, abstract_optimizer = nnx.eval_shape(lambda: build(seed=5))
        state, meta = ckpt.restore("best", run_state(abstract_model, abstract_optimizer))
    assert meta == {"epoch": 1}
    assert_trees_equal(state, run_state(model, optimizer))


def test_latest_and_best_are_kept_separately(tmp_path):
    with Checkpointer(tmp_path, keep_latest=2) as ckpt:
        assert ckpt.latest_step() is None and ckpt.best_step() is None
        for step in (1, 2, 3):
            ckpt.save_latest(step, small_state(step), {"epoch": step})
        ckpt.save_best(1, small_state(10.0), {"epoch": 1, "val_ua": 0.4})
        ckpt.save_best(2, small_state(20.0), {"epoch": 2, "val_ua": 0.6})
        assert ckpt.latest_step() == 3
        assert ckpt.best_step() == 2
        assert ckpt.all_steps("latest") == [2, 3]
        assert ckpt.all_steps("best") == [2]
        best, best_meta = ckpt.restore("best", small_state(0.0))
        latest, latest_meta = ckpt.restore("latest", small_state(0.0))
        older, _ = ckpt.restore("latest", small_state(0.0), step=2)
        assert ckpt.read_meta("latest", step=2) == {"epoch": 2}
    assert (best_meta, latest_meta) == ({"epoch": 2, "val_ua": 0.6}, {"epoch": 3})
    np.testing.assert_array_equal(best["model"]["w"], np.full((3, 4), 20.0))
    np.testing.assert_array_equal(latest["model"]["w"], np.full((3, 4), 3.0))
    np.testing.assert_array_equal(older["model"]["w"], np.full((3, 4), 2.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "latest"]
    assert latest_or_none(tmp_path) == 3
    assert latest_or_none(tmp_path, "best") == 2


def test_mismatched_shape_names_path_and_shapes(tmp_path, trained):
    model, optimizer = trained
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save_latest(1, run_state(model, optimizer), {})
        wider_model, wider_optimizer = build(hidden=5)
        with pytest.raises(CheckpointError) as info:
            ckpt.restore("latest", run_state(wider_model, wider_optimizer))
    message = str(info.value)
    # Leaves are visited in key order; the dense layer's bias is the first one widened.
    assert "'model/dense/bias/value' has shape (4,) in the checkpoint but (5,)" in message
    assert str(tmp_path / "latest" / "1") in message


def test_mismatched_structure_names_the_leaf(tmp_path):
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save_latest(1, small_state(1.0), {})
        with pytest.raises(CheckpointError, match="has no array 'model/extra'"):
            ckpt.restore("latest", {"model": {**small_state(0.0)["model"], "extra": jnp.zeros(2)}})
        with pytest.raises(CheckpointError, match="holds array 'model/step'"):
            ckpt.restore("latest", {"model": {"w": jnp.zeros((3, 4))}})
        with pytest.raises(ValueError, match="items among model, optimizer"):
            ckpt.restore("latest", {"weights": {"w": jnp.zeros((3, 4))}})


def test_missing_checkpoints_raise_clear_errors(tmp_path):
    with Checkpointer(tmp_path) as ckpt:
        with pytest.raises(CheckpointError, match=r"no latest checkpoint in .*latest"):
            ckpt.restore("latest", small_state(0.0))
        with pytest.raises(CheckpointError, match="no best checkpoint"):
            ckpt.read_meta("best")
        ckpt.save_latest(3, small_state(3.0), {})
        with pytest.raises(CheckpointError, match=r"step 7 .*saved steps: \[3\]"):
            ckpt.restore("latest", small_state(0.0), step=7)
        with pytest.raises(ValueError, match="valid names: latest, best"):
            ckpt.restore("newest", small_state(0.0))
    assert latest_or_none(tmp_path / "nowhere") is None


def test_interrupted_save_leaves_previous_checkpoint_usable(tmp_path):
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save_latest(5, small_state(5.0), {"epoch": 5})

    # What a crash in the middle of writing step 7 leaves behind: orbax's temporary folder,
    # partly written.
    partial = tmp_path / "latest" / "7.orbax-checkpoint-tmp-1700000000000000"
    (partial / "model").mkdir(parents=True)
    (partial / "model" / "_METADATA").write_text('{"tree_metadata": {')
    assert latest_or_none(tmp_path) == 5

    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.latest_step() == 5
        state, meta = ckpt.restore("latest", small_state(0.0))
        assert meta == {"epoch": 5}
        np.testing.assert_array_equal(state["model"]["w"], np.full((3, 4), 5.0))
        # The run goes on: step 7 can be saved over the debris and read back.
        assert ckpt.save_latest(7, small_state(7.0), {"epoch": 7})
        state, meta = ckpt.restore("latest", small_state(0.0))
    assert meta == {"epoch": 7}
    np.testing.assert_array_equal(state["model"]["w"], np.full((3, 4), 7.0))
    assert not partial.exists()


def test_partial_folder_appearing_while_open_is_ignored(tmp_path):
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save_latest(5, small_state(5.0), {"epoch": 5})
        (tmp_path / "latest" / "9.orbax-checkpoint-tmp-1700000000000001" / "model").mkdir(
            parents=True
        )
        assert ckpt.latest_step() == 5
        state, _ = ckpt.restore("latest", small_state(0.0))
    np.testing.assert_array_equal(state["model"]["w"], np.full((3, 4), 5.0))


def test_saving_same_step_again_is_skipped_and_earlier_step_refused(tmp_path):
    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.save_latest(4, small_state(4.0), {"epoch": 4})
        assert not ckpt.save_latest(4, small_state(40.0), {"epoch": 40})
        with pytest.raises(CheckpointError, match="already holds the later step 4"):
            ckpt.save_latest(3, small_state(3.0), {})
        state, meta = ckpt.restore("latest", small_state(0.0))
    assert meta == {"epoch": 4}
    np.testing.assert_array_equal(state["model"]["w"], np.full((3, 4), 4.0))


def test_meta_must_be_json(tmp_path):
    with (
        Checkpointer(tmp_path) as ckpt,
        pytest.raises(TypeError, match="not JSON-serialisable"),
    ):
        ckpt.save_latest(1, small_state(1.0), {"fn": object()})


def test_closed_checkpointer_refuses_work(tmp_path):
    ckpt = Checkpointer(tmp_path)
    ckpt.close()
    ckpt.close()  # idempotent
    with pytest.raises(CheckpointError, match="is closed"):
        ckpt.latest_step()


def test_the_model_item_restores_alone(tmp_path, trained):
    model, optimizer = trained
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save_best(4, run_state(model, optimizer), {"epoch": 1})
    abstract_model = nnx.eval_shape(lambda: build(seed=5)[0])
    with Checkpointer(tmp_path, read_only=True) as ckpt:
        items, meta = ckpt.restore("best", {"model": nnx.state(abstract_model)})
    assert set(items) == {"model"} and meta == {"epoch": 1}
    assert_trees_equal(items["model"], nnx.state(model))


def test_checkpoints_of_the_single_state_layout_still_restore(tmp_path, trained):
    """Run directories written before the model had its own item hold one "state" item,
    the pure dict {0: model, 1: optimizer}; both items are read out of it."""
    model, optimizer = trained
    joint = nnx.to_pure_dict(nnx.state((model, optimizer)))
    manager = ocp.CheckpointManager(
        tmp_path / "best",
        item_handlers={
            "state": ocp.StandardCheckpointHandler(),
            "meta": ocp.JsonCheckpointHandler(),
        },
    )
    manager.save(
        3,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(joint), meta=ocp.args.JsonSave({"epoch": 2})
        ),
    )
    manager.wait_until_finished()
    manager.close()
    fresh_model, fresh_optimizer = nnx.eval_shape(lambda: build(seed=5))
    template = {"model": nnx.to_pure_dict(nnx.state(fresh_model))}
    with Checkpointer(tmp_path, read_only=True) as ckpt:
        items, meta = ckpt.restore("best", template)
        both, _ = ckpt.restore(
            "best",
            {**template, "optimizer": nnx.to_pure_dict(nnx.state(fresh_optimizer))},
        )
    assert meta == {"epoch": 2}
    assert_trees_equal(items["model"], joint[0])
    assert_trees_equal(both["optimizer"], joint[1])

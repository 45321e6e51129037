"""Registry contract, construction-time errors and the reference parameter counts."""

import jax
import numpy as np
import pytest
from flax import nnx

from serjax.models import MODEL_NAMES, create_model, hparam_defaults


def _abstract(name: str, **kwargs) -> nnx.Module:
    """The model's structure without running any initialiser."""
    return nnx.eval_shape(lambda: create_model(name, rngs=nnx.Rngs(0), **kwargs))


def _count(model: nnx.Module, *filters) -> int:
    return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, *filters)))


def test_names_cover_the_reference_systems():
    for name in ("rnn", "lstm", "bilstm", "cnn_lstm_2d", "cnn_lstm_2d_td", "cnn_lstm_1d"):
        assert name in MODEL_NAMES
    assert {"crnn", "cnn"} <= set(MODEL_NAMES)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown model name 'transformer'") as info:
        create_model("transformer", num_features=8, num_classes=2, rngs=nnx.Rngs(0))
    assert all(name in str(info.value) for name in MODEL_NAMES)


def test_unknown_hparam_lists_the_valid_ones():
    with pytest.raises(ValueError, match="hiden_sizes") as info:
        create_model("lstm", num_features=8, num_classes=2, rngs=nnx.Rngs(0), hiden_sizes=(4,))
    assert "hidden_sizes=(128, 128)" in str(info.value)
    assert "summary='last'" in str(info.value)


def test_defaults_are_the_reference_values():
    assert hparam_defaults("lstm")["hidden_sizes"] == (128, 128)
    assert hparam_defaults("lstm")["dropout"] == 0.2
    assert hparam_defaults("bilstm")["hidden_sizes"] == (64, 64)
    assert hparam_defaults("cnn_lstm_2d")["pool_sizes"] == ((2, 2), (4, 4), (4, 4), (4, 4))
    assert hparam_defaults("crnn")["summary"] == "attention"
    assert hparam_defaults("cnn")["num_frames"] == 160


def test_every_model_keeps_its_classifier_under_head():
    sizes = {"cnn_lstm_2d": 128, "cnn_lstm_2d_td": 128, "cnn_lstm_1d": 1, "cnn": 40}
    for name in MODEL_NAMES:
        model = _abstract(name, num_features=sizes.get(name, 64), num_classes=7)
        paths = ["/".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))]
        head = [p for p in paths if p.startswith("head/")]
        assert head and any(p.startswith("head/out/kernel") for p in head), name


def test_s2_final_model_has_355720_parameters():
    # LSTM 256 -> LSTM 64 -> Dense 128 -> Dense 8 on 13 steps of 1 feature (Keras summary).
    model = _abstract(
        "lstm", num_features=1, num_classes=8, hidden_sizes=(256, 64), head_sizes=(128,)
    )
    assert _count(model.encoder.layers[0], nnx.Param) == 264_192
    assert _count(model.encoder.layers[1], nnx.Param) == 82_176
    assert _count(model.head, nnx.Param) == 8_320 + 1_032
    assert _count(model, nnx.Param) == 355_720


def test_s2_first_model_has_125320_parameters():
    # The report prints 66,568 for the first layer, but 4u(in + u + 1) = 66,560 for u = 128;
    # its total, 125,320, is the sum with 66,560.
    model = _abstract(
        "lstm", num_features=1, num_classes=8, hidden_sizes=(128, 64), head_sizes=(128,)
    )
    assert _count(model.encoder.layers[0], nnx.Param) == 66_560
    assert _count(model, nnx.Param) == 125_320


def test_s4_time_distributed_bilstm_matches_the_printed_summary():
    model = _abstract("cnn_lstm_2d_td", num_features=128, num_classes=7)
    assert _count(model, nnx.Param) == 371_399
    assert _count(model, nnx.BatchStat) == 1_024
    assert _count(model.encoder, nnx.Param) == 237_824


def test_pooling_below_one_band_fails_at_construction_with_a_fix():
    with pytest.raises(ValueError, match=r"num_features=40 is too small") as info:
        create_model("cnn_lstm_2d", num_features=40, num_classes=7, rngs=nnx.Rngs(0))
    message = str(info.value)
    assert "num_features >= 128" in message
    assert "(2, 4, 4, 1)" in message
    # The suggested pools do work.
    _abstract(
        "cnn_lstm_2d",
        num_features=40,
        num_classes=7,
        pool_sizes=((2, 2), (4, 4), (4, 4), (4, 1)),
    )


@pytest.mark.parametrize(
    ("name", "kwargs", "pattern"),
    [
        (
            "cnn",
            dict(num_features=13),
            r"num_features=13 is too small.*num_features >= 29.*padding='SAME'",
        ),
        ("cnn", dict(num_features=40, num_frames=8), r"num_frames=8 is too small"),
        ("cnn_lstm_2d_td", dict(num_features=128, chunk_frames=1), r"chunk_frames=1"),
        ("lstm", dict(num_features=8, hidden_sizes=()), r"hidden_sizes must be a non-empty"),
        ("lstm", dict(num_features=8, summary="max"), r"summary='max' is not one of"),
        ("bilstm", dict(num_features=8, dropout=1.0), r"dropout must be in \[0, 1\)"),
        ("crnn", dict(num_features=64, filters=(32,)), r"same \(non-zero\) length"),
        ("crnn", dict(num_features=64, activation="gelu"), r"activation='gelu'"),
        ("cnn_lstm_1d", dict(num_features=1, kernel_sizes=((3, 3),) * 4), r"needs 1 sizes"),
    ],
)
def test_impossible_configurations_fail_at_construction(name, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        create_model(name, num_classes=7, rngs=nnx.Rngs(0), **kwargs)


def test_wrong_input_shape_is_a_clear_error():
    model = _abstract("lstm", num_features=8, num_classes=2, hidden_sizes=(4,))
    with pytest.raises(ValueError, match="built for num_features=8 but x has 5"):
        model(np.zeros((2, 3, 5), np.float32), np.array([3, 2]))


def test_config_lists_are_accepted():
    model = _abstract(
        "crnn",
        num_features=16,
        num_classes=3,
        filters=[4, 4],
        kernel_sizes=[[3, 3], [3, 3]],
        pool_sizes=[[2, 2], [2, 2]],
        hidden_sizes=[4, 4],
        head_sizes=[4],
    )
    assert model.blocks[0].kernel_size == (3, 3)


def test_cnn_flatten_rejects_inputs_longer_than_num_frames():
    model = _abstract("cnn", num_features=40, num_classes=8)
    with pytest.raises(ValueError, match="input has 200 frames.*num_frames=160"):
        model(np.zeros((1, 200, 40), np.float32), np.array([200]))

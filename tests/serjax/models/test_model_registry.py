"""Registry contract, construction-time errors and the reference parameter counts."""

import ast
import re

import jax
import numpy as np
import pytest
from flax import nnx

import serjax.models
from serjax.models import MODEL_NAMES, RecurrentClassifier, create_model, hparam_defaults
from serjax.models.registry import MODEL_SPECS, ModelSpec, describe_models

# One entry of the model list in serjax.models' docstring: "``name`` (reproduces)" and an
# indented description that states defaults as ``hparam=value``.
_DOC_ENTRY = re.compile(r"^``(\w+)`` \((.*)\)\n((?:    .*\n?)+)", re.MULTILINE)
_DOC_DEFAULT = re.compile(r"``(\w+)=(.+?)``")


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
    assert "pooling='last'" in str(info.value)


def test_unknown_name_in_hparam_defaults_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown model name 'transformer'") as info:
        hparam_defaults("transformer")
    assert all(name in str(info.value) for name in MODEL_NAMES)


def test_fixed_arguments_are_not_hyper_parameters():
    with pytest.raises(ValueError, match="unknown hyper-parameter.*cell"):
        create_model("lstm", num_features=8, num_classes=2, rngs=nnx.Rngs(0), cell="rnn")


def test_defaults_are_the_reference_values():
    assert hparam_defaults("lstm")["hidden_sizes"] == (128, 128)
    assert hparam_defaults("lstm")["dropout"] == 0.2
    assert hparam_defaults("bilstm")["hidden_sizes"] == (64, 64)
    assert hparam_defaults("cnn_lstm_2d")["pool_sizes"] == ((2, 2), (4, 4), (4, 4), (4, 4))
    assert hparam_defaults("crnn")["pooling"] == "attention"
    assert hparam_defaults("cnn")["num_frames"] == 160
    # S1: dropout 0.2 on the input frames too, for all three cells.
    for name in ("rnn", "lstm", "bilstm"):
        assert hparam_defaults(name)["input_dropout"] == 0.2, name
    # S5: one rate of 0.3 after the convolutions, between the BiLSTMs and in the head.
    crnn = hparam_defaults("crnn")
    assert crnn["conv_dropout"] == crnn["dropout"] == crnn["head_dropout"] == 0.3
    assert hparam_defaults("cnn_lstm_2d_td")["chunk_frames"] == 5
    assert hparam_defaults("cnn")["kernel_sizes"][0] == (3, 10)  # 3 frames x 10 coefficients


def test_hparam_defaults_is_a_copy_in_signature_order():
    defaults = hparam_defaults("lstm")
    assert list(defaults) == [
        "hidden_sizes",
        "input_dropout",
        "dropout",
        "pooling",
        "attention_size",
        "output_dropout",
        "head_sizes",
        "head_dropout",
    ]
    defaults["dropout"] = 0.9
    assert hparam_defaults("lstm")["dropout"] == 0.2


def test_a_registry_row_must_cover_its_class_exactly():
    lstm = MODEL_SPECS["lstm"]
    row = dict(reproduces="", doc="")
    with pytest.raises(ValueError, match="bidirectional"):  # a class argument left out
        ModelSpec(RecurrentClassifier, fixed={"cell": "lstm"}, defaults=lstm.defaults, **row)
    with pytest.raises(ValueError, match="exactly once"):  # fixed and defaults overlap
        ModelSpec(
            RecurrentClassifier,
            fixed={**lstm.fixed, "dropout": 0.0},
            defaults=lstm.defaults,
            **row,
        )
    with pytest.raises(ValueError, match="exactly once"):  # not an argument of the class
        ModelSpec(
            RecurrentClassifier,
            fixed=lstm.fixed,
            defaults={**lstm.defaults, "filters": (4,)},
            **row,
        )


def test_a_description_names_only_hyper_parameters():
    spec = MODEL_SPECS["lstm"]
    assert "``hidden_sizes=(128, 128)``" in spec.describe()
    typo = ModelSpec(spec.cls, spec.fixed, spec.defaults, spec.reproduces, "{hiden_sizes}")
    with pytest.raises(KeyError, match="hiden_sizes"):
        typo.describe()


def _documented_models() -> dict[str, tuple[str, str]]:
    """name -> (reproduces, description) from the model list in serjax.models' docstring."""
    return {
        m.group(1): (m.group(2), " ".join(m.group(3).split()))
        for m in _DOC_ENTRY.finditer(serjax.models.__doc__)
    }


def test_docstring_lists_every_model_in_registry_order():
    assert tuple(_documented_models()) == MODEL_NAMES
    for name, (reproduces, _) in _documented_models().items():
        assert reproduces == MODEL_SPECS[name].reproduces, name


def test_every_default_the_docstring_states_is_the_registry_default():
    for name, (_, description) in _documented_models().items():
        stated = _DOC_DEFAULT.findall(description)
        defaults = hparam_defaults(name)
        # At least four, or every one of a model with fewer hyper-parameters (functionals).
        wanted = min(4, len(defaults))
        assert len(stated) >= wanted, f"{name}: the docstring states too few defaults: {stated}"
        for key, value in stated:
            assert key in defaults, f"{name}: the docstring names {key}, not a hyper-parameter"
            assert ast.literal_eval(value) == defaults[key], f"{name}: {key}={value}"


def test_docstring_model_list_is_the_registry_rendering():
    def words(text: str) -> str:
        return " ".join(text.split())

    rendered = describe_models()
    assert words(rendered) in words(serjax.models.__doc__), (
        "serjax.models' docstring and the registry disagree; paste this into the docstring:\n"
        + rendered
    )


def test_every_model_keeps_its_classifier_under_head():
    sizes = {"cnn_lstm_2d": 128, "cnn_lstm_2d_td": 128, "cnn_lstm_1d": 1, "cnn": 40}
    for name in MODEL_NAMES:
        model = _abstract(name, num_features=sizes.get(name, 64), num_classes=7)
        paths = ["/".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))]
        head = [p for p in paths if p.startswith("head/")]
        assert head and any(p.startswith("head/out/kernel") for p in head), name


def _paths(model: nnx.Module) -> list[str]:
    return ["/".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))]


def test_parameter_paths_are_stable():
    """Checkpoints store parameters by path, and the L2 penalty selects "head" paths."""
    lstm = _abstract("lstm", num_features=8, num_classes=3, hidden_sizes=(4, 4), head_sizes=(5,))
    assert _paths(lstm) == [
        "encoder/layers/0/bias",
        "encoder/layers/0/kernel",
        "encoder/layers/0/recurrent_kernel",
        "encoder/layers/1/bias",
        "encoder/layers/1/kernel",
        "encoder/layers/1/recurrent_kernel",
        "head/hidden/0/bias",
        "head/hidden/0/kernel",
        "head/out/bias",
        "head/out/kernel",
    ]
    crnn = _abstract(
        "crnn",
        num_features=8,
        num_classes=3,
        filters=(4,),
        kernel_sizes=((3, 3),),
        pool_sizes=((2, 2),),
        hidden_sizes=(4,),
        attention_size=4,
        head_sizes=(4,),
    )
    assert _paths(crnn) == [
        "blocks/0/conv/bias",
        "blocks/0/conv/kernel",
        "blocks/0/norm/bias",
        "blocks/0/norm/scale",
        "encoder/attention/proj/bias",
        "encoder/attention/proj/kernel",
        "encoder/attention/score/kernel",
        "encoder/layers/0/backward/bias",
        "encoder/layers/0/backward/kernel",
        "encoder/layers/0/backward/recurrent_kernel",
        "encoder/layers/0/forward/bias",
        "encoder/layers/0/forward/kernel",
        "encoder/layers/0/forward/recurrent_kernel",
        "head/hidden/0/bias",
        "head/hidden/0/kernel",
        "head/out/bias",
        "head/out/kernel",
    ]


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
        ("lstm", dict(num_features=8, pooling="max"), r"pooling='max' is not one of"),
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

"""Suites: every run's config builds; the suite command runs, writes its table and resumes."""

import json

import jax
import jax.numpy as jnp
import pytest

from serjax import config_lib, data, experiments, forward, models, suite_report, suites
from serjax.features import FeatureSpec


def _runs():
    for variant in suites.SEEDS.variants:
        for protocol in variant.protocols:
            yield variant, protocol


def test_the_seeds_suite_covers_every_reference_system():
    assert suites.SEEDS.systems() == ("S1", "S2", "S3", "S4", "S5")
    names = [(v.system, v.name) for v in suites.SEEDS.variants]
    assert len(names) == len(set(names))
    s1 = [v for v in suites.SEEDS.variants if v.system == "S1"]
    # Six inputs on the LSTM, and RNN and BiLSTM on the two +Δ+ΔΔ inputs.
    assert len(s1) == 10
    for variant in suites.SEEDS.variants:
        kinds = [p.kind for p in variant.protocols]
        assert kinds and set(kinds) <= {"report", "honest"} and len(set(kinds)) == len(kinds)


@pytest.mark.parametrize("quick", [False, True])
def test_every_run_of_the_suite_validates(quick):
    for variant, protocol in _runs():
        config = experiments.suite_config(variant, protocol, seed=2, quick=quick)
        config_lib.validate(config)
        assert config.seed == 2
        if quick:
            assert config.train.epochs <= 2


def test_every_variant_builds_its_model():
    for variant in suites.SEEDS.variants:
        config = experiments.suite_config(variant, variant.protocols[0], seed=0, quick=False)
        spec = FeatureSpec.from_config(config)
        samples = data.Preprocessing.from_config(config).fixed_samples or 3 * 16000
        waves = jax.ShapeDtypeStruct((2, samples), jnp.float32)
        lengths = jnp.array([samples, samples // 2], jnp.int32)
        num_classes = len(config.data.classes) or 7

        def forward_path(w, config=config, spec=spec, lengths=lengths, k=num_classes):
            model = forward.create_model(config, k, seed=0)
            model.eval()
            return forward.predict_step(model, w, lengths, jnp.array([True, True]), spec)

        assert jax.eval_shape(forward_path, waves).shape == (2, num_classes), variant.name


def test_the_variants_overrides_are_the_reports_inputs():
    by_name = {v.name: v for v in suites.SEEDS.variants if v.system == "S1"}
    config = experiments.suite_config(
        by_name["bilstm_mfcc_dd"], suites.EMODB_LOSO, seed=0, quick=False
    )
    assert FeatureSpec.from_config(config).num_features == 39  # MFCC 13 + Δ + ΔΔ
    assert config.model.name == "bilstm" and tuple(config.model.hidden_sizes) == (64, 64)
    assert config.data.protocol == "loso" and config.train.segment_batch == 128
    config = experiments.suite_config(by_name["lstm_mspec_d"], suites.S1_SPLIT, 0, False)
    assert FeatureSpec.from_config(config).num_features == 80  # log-mel 40 + Δ


TINY = suites.Suite(
    "tiny",
    (
        suites.Variant(
            "S1",
            "segments",
            "LSTM on drawn segments",
            "smoke",
            {
                "features.segment_frames": 10,
                "features.segment_shift": 5,
                "train.segment_batch": 32,
                "train.segment_group": 2,
            },
            reported=0.578,
            protocols=(
                suites.Protocol("report", "validation spk05, test spk06"),
                suites.Protocol(
                    "honest",
                    "leave one speaker out",
                    {"data.protocol": "loso", "data.run_folds": ("spk01", "spk02")},
                ),
            ),
            quick={"data.synthetic_per_class": 3},
            note="a test suite",
        ),
    ),
)


@pytest.mark.trains
def test_a_quick_suite_writes_its_table_and_resumes(tmp_path, monkeypatch):
    rows = experiments.run_suite(TINY, tmp_path, quick=True, command="test")
    assert [(r["protocol"], r["seeds"], r["folds"]) for r in rows] == [
        ("report", 1, 1),
        ("honest", 1, 2),
    ]
    for row in rows:
        assert 0 <= row["ua"] <= 1 and 0 <= row["wa"] <= 1 and 0 <= row["macro_f1"] <= 1
        assert row["mode"] == "quick" and row["wall_seconds"] > 0
        assert row["machines"] == [experiments.machine()["summary"]]
    assert rows[1]["spread_over"] == "folds"
    run_dir = tmp_path / "S1" / "segments" / "report" / "seed0"
    result = json.loads((run_dir / "results.json").read_text())
    assert result["epochs"] == 1 and result["config"]["train"]["segment_batch"] == 32
    assert rows[0]["wa"] == result["test"]["wa"]
    table = json.loads((tmp_path / "results.json").read_text())
    assert table["suite"] == "tiny" and table["rows"] == json.loads(json.dumps(rows))
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert "`--quick` figures" in markdown and "57.8 % (test accuracy)" in markdown
    assert f"{100 * rows[0]['wa']:.1f} %" in markdown
    assert experiments.machine()["summary"] in markdown and "a test suite" in markdown

    # A second call trains nothing and gives the same table.
    def no_training(*args, **kwargs):
        raise AssertionError("a complete run was trained again")

    monkeypatch.setattr(experiments, "train_and_evaluate", no_training)
    again = experiments.run_suite(TINY, tmp_path, quick=True, command="test")
    assert json.dumps(again) == json.dumps(rows)
    # Full runs never reuse --quick ones.
    with pytest.raises(ValueError, match="--quick"):
        experiments.run_suite(TINY, tmp_path, quick=False)


def test_unknown_systems_are_refused(tmp_path):
    with pytest.raises(ValueError, match="S9"):
        experiments.run_suite(TINY, tmp_path, only=("S9",))


def test_update_readme_replaces_the_marked_table_only(tmp_path):
    readme = tmp_path / "README.md"
    begin, end = suite_report.README_BEGIN, suite_report.README_END
    readme.write_text(f"intro\n{begin}\nold table\n{end}\noutro\n")
    suite_report.update_readme(readme, "| new |\n", "results/RESULTS.md")
    text = readme.read_text()
    assert text.startswith(f"intro\n{begin}\n| new |\n") and text.endswith(f"{end}\noutro\n")
    assert "old table" not in text and "(results/RESULTS.md)" in text
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        suite_report.update_readme(readme, "| new |\n", "x")


def test_the_readme_has_the_markers_update_readme_replaces_between():
    text = (experiments.CONFIGS_DIR.parent / "README.md").read_text()
    begin = text.find(suite_report.README_BEGIN)
    assert 0 <= begin < text.find(suite_report.README_END)


@pytest.mark.trains
def test_a_run_without_validation_speakers_tests_its_last_epoch(tmp_path):
    # TESS alone and S5's cross-corpus run have no speaker left for validation.
    config = config_lib.load_config_file(experiments.CONFIGS_DIR / "smoke.py")
    config.data.val_speakers = ()
    config.data.synthetic_per_class = 3
    config.train.epochs = 2
    result = experiments.train_and_evaluate(config, tmp_path)
    assert result["data"]["val"]["utterances"] == 0 and result["epochs"] == 2
    assert [row["val_ua"] for row in result["history"]] == [None, None]
    assert 0 <= result["test"]["wa"] <= 1


def test_quick_runs_keep_every_architecture():
    """``--quick`` shortens training (epochs, folds, S3's sequences), never the model."""
    for variant, protocol in _runs():
        full = experiments.suite_config(variant, protocol, seed=0, quick=False)
        quick = experiments.suite_config(variant, protocol, seed=0, quick=True)
        assert quick.model.to_dict() == full.model.to_dict(), variant.name
        assert quick.features.to_dict() == full.features.to_dict() or variant.system == "S1"
        assert quick.train.epochs == 1 or variant.system == "S2"
        if quick.data.protocol in ("loso", "speaker_kfold"):  # cross-validation: one fold
            assert len(quick.data.run_folds) == 1, variant.name


def _variant(system: str, name: str) -> suites.Variant:
    return next(v for v in suites.SEEDS.variants if v.system == system and v.name == name)


def test_s2_by_file_variants_split_files_regardless_of_actor():
    utts = [
        data.Utterance(f"/ravdess/{a:02d}_{i}.wav", "ravdess", f"{a:02d}", "anger", "female", {})
        for a in range(1, 25)
        for i in range(5)
    ]
    for name in ("first_by_file", "first_offline_by_file"):
        variant = _variant("S2", name)
        (protocol,) = variant.protocols
        assert protocol.speaker_dependent and protocol.kind == "report"
        config = experiments.suite_config(variant, protocol, seed=0, quick=False)
        ((_, split),) = experiments.make_folds(config, utts)
        assert not split.speaker_independent
        assert (len(split.train), len(split.val), len(split.test)) == (84, 12, 24)
    first = _variant("S2", "first")
    config = experiments.suite_config(first, first.protocols[0], seed=0, quick=False)
    ((_, split),) = experiments.make_folds(config, utts)
    assert split.speaker_independent and not first.protocols[0].speaker_dependent


def test_s2_standardised_variant_keeps_its_statistics_in_the_model():
    variant = _variant("S2", "first_standardised")
    for protocol in variant.protocols:
        config = experiments.suite_config(variant, protocol, seed=0, quick=True)
        model = forward.create_model(config, 8)
        assert isinstance(model, models.StandardisedInputs) and model.time_averaged
        assert model.standardiser.mean.shape == (13,)  # one per averaged MFCC
    plain = _variant("S2", "first")
    config = experiments.suite_config(plain, plain.protocols[0], seed=0, quick=False)
    assert not isinstance(forward.create_model(config, 8), models.StandardisedInputs)


def test_speaker_dependent_figures_are_labelled_in_the_table(tmp_path):
    def run(wa):
        results = {"test": {"wa": wa, "ua": wa - 0.1, "macro_f1": wa - 0.2}}
        machine = {"summary": "a CPU", "load_average": 1.0}
        return results, {"seconds": 60.0, "quick": True, "machine": machine}

    by_file, first = _variant("S2", "first_by_file"), _variant("S2", "first")
    rows = [
        suite_report.summarize_runs(first, first.protocols[0], [run(0.25)]),
        suite_report.summarize_runs(by_file, by_file.protocols[0], [run(0.5)]),
    ]
    assert [r["speaker_dependent"] for r in rows] == [False, True]
    summary, details = suite_report.markdown_tables(rows, suites.SEEDS)
    lines = summary.splitlines()[2:]
    assert "25.0 % / 15.0 % |" in lines[0] and "speaker-dependent" not in lines[0]
    assert "50.0 % / 40.0 % (speaker-dependent) |" in lines[1]
    assert "| report (speaker-dependent) |" in details.splitlines()[3]
    suite_report.write(tmp_path, suites.SEEDS, rows, {"summary": "a CPU"}, "test")
    assert "**speaker-dependent**" in (tmp_path / "RESULTS.md").read_text()

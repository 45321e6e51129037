"""Emo-DB leave-one-speaker-out with each ingredient of the recommended system removed in turn.

    SERJAX_DATA_DIR=/path/to/data python benchmarks/ablation_emodb.py \
        --output results/ablation_emodb.md

Starts from ``configs/emodb_serjax.py``, computes every utterance's functionals once (the
superset of all variants' columns, by the run's own jitted feature function), then for each
variant runs all ten folds with :func:`serjax.fit_functionals.fit_classifier` on the nine
training speakers (L2 chosen by leave-one-speaker-out among them, never on the test speaker)
and scores the test speaker. A variant drops columns (by name), changes the standardisation or
the classifier. Besides the pooled test figures, each row gives the mean over folds of the
held-out-training-speaker UA the L2 was chosen by (``val UA``): the only figure a choice of
ingredients may honestly be based on.

The full system here scores the functionals computed once, not the waveform path of
``python -m serjax.main``; the two agree to float32 rounding.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serjax import config_lib, data, experiments, fold, metrics, models  # noqa: E402
from serjax.features import FeatureSpec  # noqa: E402
from serjax.fit_functionals import FitSettings, fit_classifier, functionals_of  # noqa: E402
from serjax.models.functionals import standardisation_statistics  # noqa: E402
from serjax.train import SplitData  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    drop: str = ""  # regular expression of column names to remove
    standardise: str = "speaker"
    adapt: bool = True  # test speaker standardised by its own statistics
    hidden_sizes: tuple[int, ...] = ()


def variants(config) -> list[Variant]:
    """The variants to score: the config's system, then each ingredient toggled in turn."""
    optional = {  # columns computed for every variant, kept only where the config has them
        "log-mel band functionals": (r"^log_mel", config.features.functionals_log_mel),
        "voiced-frame functionals": (r"^voiced_", config.features.functionals_voiced),
    }
    base_drop = "|".join(pattern for pattern, on in optional.values() if not on)

    def without(pattern: str) -> str:
        return "|".join(p for p in (base_drop, pattern) if p)

    def toggled(name: str, pattern: str, on: bool) -> Variant:
        if on:
            return Variant(f"without {name}", drop=without(pattern))
        others = "|".join(p for p in base_drop.split("|") if p != pattern)
        return Variant(f"adding {name}", drop=others)

    return [
        Variant("recommended system", drop=base_drop),
        *(toggled(name, pattern, on) for name, (pattern, on) in optional.items()),
        Variant(
            "speaker standardisation off (training-set statistics)",
            drop=base_drop,
            standardise="training",
        ),
        Variant(
            "speaker-standardised training, test speaker not adapted to",
            drop=base_drop,
            adapt=False,
        ),
        Variant(
            "without F0 and periodicity", drop=without(r"^(f0_semitones|(voiced_)?periodicity)")
        ),
        Variant("without spectral descriptors", drop=without(r"^(voiced_)?spectral_")),
        Variant("without deltas", drop=without(r"_delta_")),
        Variant("without MFCCs", drop=without(r"^(voiced_)?mfcc")),
        Variant("without RMS level and zero crossings", drop=without(r"^(voiced_)?(rms_db|zcr)")),
        Variant(
            "MLP (one hidden layer of 64) instead of linear", drop=base_drop, hidden_sizes=(64,)
        ),
    ]


def run_variant(variant, config, x, names, labels, speakers, class_names) -> dict:
    keep = np.array([not (variant.drop and re.search(variant.drop, n)) for n in names])
    x = x[:, keep]
    settings = dataclasses.replace(FitSettings.from_config(config), standardise=variant.standardise)
    probs = np.zeros((len(labels), len(class_names)), np.float32)
    folds, val = {}, []
    for test in sorted(set(speakers)):
        train = speakers != test
        model_config = config.copy_and_resolve_references()
        model_config.model.hidden_sizes = variant.hidden_sizes
        model = _model(model_config, int(keep.sum()), len(class_names))
        selection = fit_classifier(model, x[train], labels[train], speakers[train], settings)
        val.append(selection.val_ua)
        if variant.adapt and variant.standardise == "speaker":
            model.standardiser.set(*standardisation_statistics(x[~train]))
        probs[~train] = np.asarray(jax.nn.softmax(model(x[~train]), axis=-1))
        folds[test] = metrics.unweighted_accuracy(
            labels[~train], probs[~train].argmax(-1), len(class_names)
        )
    pooled = metrics.classification_metrics(labels, probs, class_names)
    fold_ua = np.array(list(folds.values()))
    return {
        "columns": int(keep.sum()),
        "ua": pooled["ua"],
        "wa": pooled["wa"],
        "f1": pooled["macro_f1"],
        "fold_ua_mean": float(fold_ua.mean()),
        "fold_ua_std": float(fold_ua.std()),
        "val_ua": float(np.mean(val)),
    }


def _model(config, num_features, num_classes):
    model = models.create_model(
        "functionals",
        num_features=num_features,
        num_classes=num_classes,
        rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1),
        hidden_sizes=tuple(config.model.hidden_sizes),
    )
    model.eval()
    return model


def corpus_functionals(config) -> tuple[SplitData, tuple[str, ...], np.ndarray]:
    """Every utterance of the config's corpora, decoded and preprocessed as runs do, its class
    names, and the functionals ``[N, config's count]`` by the run's own jitted feature
    function."""
    utts = experiments.load_utterances(config, ROOT)
    class_names = experiments.class_names_of(config, utts)
    part = fold.decode(config, utts, class_names, data.AudioCache(None))
    return part, class_names, functionals_of(part.waveforms, FeatureSpec.from_config(config))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "emodb_serjax.py"))
    parser.add_argument("--output", help="also write the table to this markdown file")
    parser.add_argument("--only", default="", help="run only variants whose name contains this")
    args = parser.parse_args()

    started = time.monotonic()
    config = config_lib.load_config_file(args.config)
    rows_to_run = variants(config)
    # Compute the superset once: optional columns are dropped again unless the config has them.
    config.features.functionals_log_mel = True
    config.features.functionals_voiced = True
    config_lib.validate(config)
    part, class_names, x = corpus_functionals(config)
    names = FeatureSpec.from_config(config).utterance.feature_names
    speakers = part.speakers
    extracted = time.monotonic() - started
    print(f"{len(x)} utterances, {x.shape[1]} functionals in {extracted:.0f} s", flush=True)

    rows = []
    for variant in rows_to_run:
        if args.only and args.only not in variant.name:
            continue
        begun = time.monotonic()
        result = run_variant(variant, config, x, names, part.labels, speakers, class_names)
        result["seconds"] = time.monotonic() - begun
        rows.append((variant, result))
        print(variant.name, {k: round(v, 4) for k, v in result.items()}, flush=True)
        # Written after every row, so that an interrupted run keeps what it measured.
        text = _table(rows, args, len(x), extracted)
        if args.output:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            Path(args.output).write_text(text)
    print(text)


def _table(rows, args, num_utterances: int, extracted: float) -> str:
    command = "python benchmarks/ablation_emodb.py" + (
        f" --output {args.output}" if args.output else ""
    )
    table = [
        "# Emo-DB leave-one-speaker-out: the recommended system with each ingredient removed",
        "",
        f"Made by `{command}` ({time.strftime('%Y-%m-%d')}, {_machine()}; "
        f"functionals of all {num_utterances} utterances computed once in {extracted:.0f} s).",
        "",
        "Pooled over the 535 test predictions of the ten folds; fold UA is the mean ± std over "
        "folds; val UA is the mean over folds of the UA on held-out training speakers that the "
        "L2 was chosen by (the test speaker is never used for any choice). s: seconds for the "
        "ten folds of the row.",
        "",
        "| variant | functionals | UA | WA | macro-F1 | fold UA | val UA | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, r in rows:
        table.append(
            f"| {variant.name} | {r['columns']} | {100 * r['ua']:.1f} % | {100 * r['wa']:.1f} % | "
            f"{100 * r['f1']:.1f} % | {100 * r['fold_ua_mean']:.1f} ± "
            f"{100 * r['fold_ua_std']:.1f} % | {100 * r['val_ua']:.1f} % | {r['seconds']:.0f} |"
        )
    return "\n".join(table) + "\n"


def _machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()}-core CPU, load average {load:.1f} at the end"


if __name__ == "__main__":
    main()

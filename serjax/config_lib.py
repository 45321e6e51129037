"""The base configuration every run overrides, and its validation.

A config file in ``configs/`` defines ``get_config()`` that starts from :func:`base_config` and
changes only what its run needs. The config is locked, so a misspelt override
(``--config.optim.learnig_rate=…``) is an error that lists the valid fields instead of a silent
no-op.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import ml_collections

from serjax.augment.config import AugmentConfig
from serjax.validation import one_of

PROTOCOLS = (
    "named_speakers",  # the validation and test speakers named in the config (S1: 15 and 16)
    "loso",  # leave one speaker out: every speaker is the test set once
    "speaker_kfold",  # k folds of speakers (RAVDESS: 6 folds of 4 actors)
    "speaker_fraction",  # a fraction of the speakers as test (S2: 20 %)
    "per_corpus_speaker_fraction",  # speaker_fraction within each corpus, then merged (S5)
    "file_fraction",  # files at random, regardless of speaker: speaker-dependent (S2's likely)
)
FEATURE_KINDS = ("log_mel", "mfcc", "waveform", "functionals")
# How the functionals classifier standardises its inputs (features.standardise).
STANDARDISATIONS = ("speaker", "training")
# How frame-level models standardise their input frames (features.frame_standardise).
FRAME_STANDARDISATIONS = ("none", "training", "speaker")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "plateau")
VECTORIZE = ("none", "folds", "seeds")


def base_config() -> ml_collections.ConfigDict:
    """Defaults shared by every run; each field is documented where it is set."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    # Data root; None falls back to the SERJAX_DATA_DIR environment variable.
    config.data_dir = ml_collections.FieldReference(None, field_type=str)
    # Download a missing, freely downloadable corpus (Emo-DB) into the data root.
    config.download = True

    data = config.data = ml_collections.ConfigDict()
    data.corpora = ("emodb",)  # one or more of serjax.data.CORPORA, or ("synthetic",)
    data.classes = ()  # canonical emotion names to keep, in class order; () keeps all
    data.label_mapping = ml_collections.ConfigDict()  # e.g. {"calm": "neutral"} before selection
    data.gender = ""  # "", "female" or "male": keep one gender only (S5)
    data.sample_rate = 16000
    data.peak_normalize = False
    # Cut leading and trailing non-speech (digital silence and low-level noise; see
    # serjax.data.silence.speech_bounds), in training and inference alike.
    data.trim_silence = True
    # Remove the DC offset (the mean) before the features; silence is judged without it anyway.
    data.remove_dc = True
    data.fixed_seconds = 0.0  # > 0: cut or zero-pad every file to this duration (S4, S5)
    data.max_seconds = 0.0  # > 0: cut longer files (bounds the padded batch length)
    data.num_buckets = 4  # padded lengths come from this many length buckets
    data.cache_dir = ""  # optional on-disk cache of decoded, resampled audio
    # Evaluation protocol (one of PROTOCOLS) and its parameters.
    data.protocol = "named_speakers"
    data.val_speakers = ("15",)
    data.test_speakers = ("16",)
    data.folds = 6  # speaker_kfold
    # speaker_fraction and per_corpus_speaker_fraction: shares of speakers in test and validation
    # (file_fraction: shares of the files)
    data.test_fraction = 0.2
    data.val_fraction = 0.1
    data.run_folds = ()  # loso / speaker_kfold: run only these folds; () runs all
    # Synthetic corpus (data.corpora == ("synthetic",)): size of the corpus made on the fly.
    data.synthetic_speakers = 6
    data.synthetic_per_class = 6

    features = config.features = ml_collections.ConfigDict()
    # "log_mel" | "mfcc" | "waveform" (raw samples, for the 1D CNN) | "functionals" (one vector
    # of utterance-level statistics per utterance, dsp.utterance_functionals; the fields below
    # marked "functionals" and n_fft, win_length, hop_length, n_mels, n_mfcc, delta_width
    # set it up)
    features.kind = "log_mel"
    features.n_fft = 512
    features.win_length = 400
    features.hop_length = 160
    features.window = "hann"
    features.preemphasis = 0.0
    features.n_mels = 40
    features.fmin = 0.0
    features.fmax = ml_collections.FieldReference(None, field_type=float)
    features.htk = False
    features.mel_norm = "slaney"
    features.top_db = ml_collections.FieldReference(None, field_type=float)
    features.n_mfcc = 13
    features.lifter = 0
    features.deltas = 0
    features.delta_width = 2
    features.delta_delta_width = 2
    features.cmvn = "meanvar"
    # Read the time-averaged coefficients as a sequence of one feature each (S2 reads 13
    # averaged MFCCs as 13 steps of 1 feature); False keeps the frame sequence.
    features.time_average = False
    # S1's fixed-length segments of each utterance (S1 calls them windows), cut on the device
    # and classified one by one; an utterance's prediction averages its segments'. 0 disables.
    features.segment_frames = 0
    features.segment_shift = 3
    # functionals: YIN's F0 search range (Hz), frame (samples) and voicing threshold
    # (dsp.UtteranceConfig's fmin, fmax, f0_frame_length, voicing_threshold).
    features.f0_min = 60.0
    features.f0_max = 600.0
    features.f0_frame_length = 1024
    features.voicing_threshold = 0.35
    # functionals: also describe the n_mels log-mel bands (dsp.UtteranceConfig.log_mel).
    features.functionals_log_mel = False
    # functionals: also describe every LLD but F0 over voiced frames alone
    # (dsp.UtteranceConfig.voiced).
    features.functionals_voiced = False
    # functionals: how each vector is standardised before the classifier (mean 0, std 1 per
    # functional). "training": with the training set's statistics, kept in the model.
    # "speaker": with the statistics of the utterance's own speaker (each training speaker's,
    # and at test time the test speaker's, from its unlabelled audio; the usual practice in the
    # leave-one-speaker-out literature); the model keeps the average training speaker's
    # statistics for audio of an unknown speaker (serjax.predict adapts to given files).
    features.standardise = "training"
    # Frame-level kinds (log_mel, mfcc, waveform): "training" standardises every input frame
    # per feature with the mean and standard deviation of the training part's valid frames
    # (before any time average), statistics the model keeps in its checkpoint
    # (serjax.models.StandardisedInputs), so inference applies them too. "speaker" standardises
    # each utterance with its own speaker's frame statistics instead, in training and in
    # evaluation (a test speaker's from their unlabelled recordings, as the LOSO literature
    # does; the report also gives the test figures without them as "test_unadapted"); the
    # model keeps the training part's statistics for inference on an unknown speaker, and
    # `serjax.predict --adapt` treats the given files as one speaker. "none" feeds the
    # features as they are. Functionals have their own (features.standardise).
    features.frame_standardise = "none"

    model = config.model = ml_collections.ConfigDict()
    model.name = "lstm"  # any serjax.models.MODEL_NAMES; other fields are its hyper-parameters

    optim = config.optim = ml_collections.ConfigDict()
    optim.optimizer = "adam"
    optim.learning_rate = 1e-3
    optim.momentum = 0.9  # sgd only
    optim.weight_decay = 0.0  # decoupled (AdamW) weight decay
    optim.l2 = 0.0  # explicit L2 penalty added to the loss ...
    optim.l2_params = "head"  # ... on parameters whose path contains this ("" = all)
    optim.grad_clip = 0.0  # > 0: clip the global gradient norm
    optim.schedule = "constant"
    optim.warmup_epochs = 0.0  # cosine: linear warm-up
    optim.plateau_factor = 0.5  # plateau: multiply the learning rate by this ...
    optim.plateau_patience = 3  # ... after this many epochs without a lower validation loss
    optim.class_weighted = False  # weight the loss by inverse class frequency
    # Label smoothing (Szegedy et al. 2016, optax.smooth_labels): the training targets become
    # (1 - a) * one-hot + a / K; 0 trains on the one-hot (or mixup) targets as they are.
    optim.label_smoothing = 0.0
    # > 0: evaluate, keep as best and infer with an exponential moving average of the
    # parameters (this decay per step; e.g. 0.999) instead of the last ones; 0 is off.
    optim.ema_decay = 0.0
    # Functionals classifier: candidate values of optim.l2, the one with the best validation UA
    # over the training speakers (each held out once) is used; () uses optim.l2 as it is.
    optim.l2_grid = ()

    train = config.train = ml_collections.ConfigDict()
    train.epochs = 10
    train.batch_size = 32  # utterances per step (with segments: all their segments)
    # > 0, with segments: each step trains on this many segments drawn across the training set
    # (every segment once per epoch) instead of every segment of batch_size utterances (S1: 128)
    train.segment_batch = 0
    # ... drawn in groups of this many from one utterance: a step computes the features of
    # segment_batch // segment_group utterances (1: S1's reading, the most diverse steps)
    train.segment_group = 1
    train.eval_batch_size = 32
    train.patience = 0  # early stopping on validation UA; 0 disables
    train.keep_latest = 2  # resumption checkpoints kept (the newest ones)
    train.distributed = False  # initialise jax.distributed for multi-host runs
    # "folds": every fold's model in one jitted program (parameters stacked on a leading axis,
    # serjax.vectorized), each trained as it would be alone; "seeds": one run per seed of
    # train.seeds (in workdir/seed<k>), each fold's models of all seeds in one program;
    # "none": one model after another
    train.vectorize = "none"
    train.seeds = ()

    # On-device augmentation in training (never in evaluation); every probability 0 is off.
    augment = config.augment = ml_collections.ConfigDict()
    augment.enabled = False
    augment.noise_prob = 0.0
    augment.snr_db = (10.0, 30.0)
    augment.noise_colors = ("white", "pink")
    augment.gain_prob = 0.0
    augment.gain_db = (-6.0, 6.0)
    augment.speed_prob = 0.0
    augment.speed = (0.9, 1.1)
    augment.pitch_prob = 0.0
    augment.semitones = (-2.0, 2.0)
    augment.stretch_prob = 0.0
    augment.stretch = (0.8, 1.25)
    augment.vtlp_prob = 0.0
    augment.vtlp_alpha = (0.9, 1.1)
    augment.time_masks = 0
    augment.time_mask_frames = 20
    augment.freq_masks = 0
    augment.freq_mask_bins = 8
    augment.mixup_alpha = 0.0
    augment.offline = False  # S2: three extra copies of each training file, made once on the host
    return config


# Names earlier versions used: field -> its new name, and renamed values per field.
RENAMED_FIELDS = {
    "features.windows": "features.segment_frames",
    "features.window_frames": "features.segment_frames",
    "features.window_shift": "features.segment_shift",
    "features.summary": "features.time_average",
    "model.summary": "model.pooling",
    "model.time_summary": "model.time_pooling",
}
RENAMED_VALUES = {
    "data.protocol": {
        "fixed": "named_speakers",
        "actor_kfold": "speaker_kfold",
        "even": "per_corpus_speaker_fraction",
    },
    "features.kind": {"mspec": "log_mel"},
}


# Fields added after runs were saved, with the value that leaves those runs as they were.
ADDED_FIELDS = {
    "features.functionals_voiced": False,
    "optim.ema_decay": 0.0,
    "optim.label_smoothing": 0.0,
    "train.vectorize": "none",
    "train.segment_batch": 0,
    "train.segment_group": 1,
    "train.seeds": (),
}


def upgrade(saved: dict) -> dict:
    """A config dict saved by an earlier version (a checkpoint's or ``config.json``), in
    today's names; the behaviour it describes is unchanged."""
    saved = {k: dict(v) if isinstance(v, dict) else v for k, v in saved.items()}
    # Runs saved before these steps existed (or were on by default) did neither.
    for field in ("trim_silence", "remove_dc"):
        saved.get("data", {}).setdefault(field, False)
    # ... and none standardised its input frames.
    saved.get("features", {}).setdefault("frame_standardise", "none")
    # Options added since, at the values that do what runs did before them.
    for dotted, value in ADDED_FIELDS.items():
        section, field = dotted.split(".")
        saved.get(section, {}).setdefault(field, value)
    features = saved.get("features", {})
    if "windows" in features:
        on = bool(features.pop("windows"))
        frames = features.pop("window_frames", 25)
        features["segment_frames"] = int(frames) if on else 0
        features["segment_shift"] = int(features.pop("window_shift", 3))
    if "summary" in features:
        features["time_average"] = features.pop("summary") == "mean_sequence"
    model = saved.get("model", {})
    for old in ("summary", "time_summary"):
        if old in model:
            model[old.replace("summary", "pooling")] = model.pop(old)
    for dotted, renames in RENAMED_VALUES.items():
        section, field = dotted.split(".")
        node = saved.get(section, {})
        if node.get(field) in renames:
            node[field] = renames[node[field]]
    return saved


def _check_renamed(config: ml_collections.ConfigDict) -> None:
    for old, new in RENAMED_FIELDS.items():
        section, field = old.split(".")
        if field in config[section]:
            raise ValueError(f"{old} was renamed: use {new} (see serjax/config_lib.py)")
    for dotted, renames in RENAMED_VALUES.items():
        value = _get(config, dotted)
        if value in renames:
            raise ValueError(f"{dotted}={value!r} was renamed: use {dotted}={renames[value]!r}")


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the field for a value no run can use, and for a name an
    earlier version used (naming the new one)."""
    _check_renamed(config)
    one_of("data.protocol", config.data.protocol, PROTOCOLS)
    one_of("optim.optimizer", config.optim.optimizer, OPTIMIZERS)
    one_of("optim.schedule", config.optim.schedule, SCHEDULES)
    one_of("features.kind", config.features.kind, FEATURE_KINDS)
    one_of("train.vectorize", config.train.vectorize, VECTORIZE)
    if config.train.vectorize == "seeds" and len(set(config.train.seeds)) < 2:
        raise ValueError(
            f"train.vectorize='seeds' needs two or more distinct train.seeds, got "
            f"{tuple(config.train.seeds)}"
        )
    one_of("data.gender", config.data.gender, ("", "female", "male"))
    one_of("features.frame_standardise", config.features.frame_standardise, FRAME_STANDARDISATIONS)
    if not config.data.corpora:
        raise ValueError("data.corpora is empty: name at least one corpus")
    for name in ("train.epochs", "train.batch_size", "train.eval_batch_size"):
        if _get(config, name) <= 0:
            raise ValueError(f"{name} must be positive, got {_get(config, name)}")
    if not 0.0 <= config.optim.label_smoothing < 1.0:
        raise ValueError(
            f"optim.label_smoothing must be in [0, 1), got {config.optim.label_smoothing}"
        )
    if not 0.0 <= config.optim.ema_decay < 1.0:
        raise ValueError(f"optim.ema_decay must be in [0, 1), got {config.optim.ema_decay}")
    if config.features.frame_standardise == "speaker" and config.train.vectorize != "none":
        raise ValueError(
            "features.frame_standardise='speaker' is not supported with train.vectorize; "
            "use vectorize='none'"
        )
    if config.optim.ema_decay and config.train.vectorize != "none":
        raise ValueError(
            "optim.ema_decay > 0 is not supported with train.vectorize; use vectorize='none'"
        )
    if config.optim.learning_rate <= 0:
        raise ValueError(f"optim.learning_rate must be positive, got {config.optim.learning_rate}")
    if config.train.keep_latest < 1:
        raise ValueError(f"train.keep_latest must be at least 1, got {config.train.keep_latest}")
    if config.features.segment_frames < 0 or (
        config.features.segment_frames and config.features.segment_shift <= 0
    ):
        raise ValueError(
            "features.segment_frames must be >= 0 (0: no segments) and features.segment_shift "
            "positive"
        )
    if config.train.segment_batch < 0 or config.train.segment_group < 1:
        raise ValueError("train.segment_batch must be >= 0 and train.segment_group >= 1")
    if config.train.segment_batch and (
        not config.features.segment_frames
        or config.train.segment_batch % config.train.segment_group
    ):
        raise ValueError(
            "train.segment_batch needs features.segment_frames > 0 and a multiple of "
            f"train.segment_group: got {config.train.segment_batch}, "
            f"segment_group {config.train.segment_group}, "
            f"segment_frames {config.features.segment_frames}"
        )
    if config.features.segment_frames and config.features.time_average:
        raise ValueError("features.segment_frames needs features.time_average=False")
    aug = AugmentConfig.from_config(config.augment)  # validates every augment.* field
    if config.features.kind == "functionals":
        _check_functionals(config, aug)
    if config.features.kind == "waveform" and aug.spectral_transforms:
        raise ValueError(
            "augment: pitch, stretch, VTLP and masks act on spectra; features.kind='waveform' "
            "has none"
        )


def _check_functionals(config: ml_collections.ConfigDict, aug: AugmentConfig) -> None:
    """The functionals classifier is fitted full-batch on fixed vectors (serjax.fit_functionals):
    no segments, no on-device augmentation, and it needs its own model. (Only checked for
    this kind: configs saved before these fields existed have none of them.)"""
    one_of("features.standardise", config.features.standardise, STANDARDISATIONS)
    if config.features.segment_frames or config.features.time_average:
        raise ValueError(
            "features.kind='functionals' gives one vector per utterance: "
            "features.segment_frames and features.time_average must be off"
        )
    if aug.enabled:
        raise ValueError("features.kind='functionals' does not support augment.enabled=True")
    if config.train.vectorize != "none":
        raise ValueError(
            "train.vectorize applies to models trained by gradient steps; the functionals "
            "classifier is fitted full-batch (its L2 candidates already vmapped): use 'none'"
        )
    if config.features.frame_standardise != "none":
        raise ValueError(
            "features.frame_standardise is for frame-level kinds; functionals are standardised "
            "as features.standardise says"
        )
    if config.model.name != "functionals":
        raise ValueError(
            f"features.kind='functionals' needs model.name='functionals', got {config.model.name!r}"
        )
    if any(value < 0 for value in config.optim.l2_grid):
        raise ValueError(f"optim.l2_grid must hold values >= 0, got {tuple(config.optim.l2_grid)}")


def _get(config: ml_collections.ConfigDict, dotted: str):
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


def load_config_file(path: str | Path, arg: str | None = None) -> ml_collections.ConfigDict:
    """``get_config(arg)`` of a config file, as ``--config=path[:arg]`` would load it.

    Lets a config file build on another (``configs/emodb_bilstm.py`` on ``emodb_lstm.py``)
    without the ``configs/`` folder having to be an importable package.
    """
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"serjax_config_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load config file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg is not None else module.get_config()

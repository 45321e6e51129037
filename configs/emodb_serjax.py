"""serjax's recommended system on Emo-DB, leave one speaker out (all ten folds).

    python -m serjax.main --config=configs/emodb_serjax.py --workdir=runs/emodb_serjax

Utterance functionals (``dsp.utterance_functionals``: YIN F0 and periodicity, RMS level, zero
crossings, 13 MFCCs, five spectral descriptors and the deltas of all but F0, the 40 log-mel
bands, and every descriptor but F0 once more over the voiced frames alone; 11 statistics of
each: 1144 numbers per utterance), standardised per speaker, then multinomial logistic
regression whose L2 is chosen among ``optim.l2_grid`` by leave-one-speaker-out over each
fold's nine training speakers (the test speaker is never read for that choice). See
``serjax/fit_functionals.py``.

Speaker standardisation uses each speaker's own utterances, the test speaker's unlabelled audio
included (the usual practice in the LOSO literature). ``results.json`` reports it under
``test``, and the same models with the statistics the checkpoint keeps (no adaptation to the
test speaker, what inference on a single file does) under ``test_unadapted``;
``--config.features.standardise=training`` trains with training-set statistics instead.

Measured (the command above, 1 min 51 s wall for all ten folds including the 535 files'
functionals, on a quiet 2-core CPU), pooled over the 535 test predictions:

- speaker standardisation on (``test``): WA 88.4 %, UA 88.1 %, macro-F1 88.2 %; per fold
  UA 87.2 ± 6.3 % (76.2 % for speaker 12 to 95.4 % for speaker 13);
- the same models on the statistics the checkpoint keeps, the test speaker not adapted to
  (``test_unadapted``, what a single new file gets): WA 76.8 %, UA 77.1 %, macro-F1 77.1 %:
  adapting to the test speaker is worth 11 points of UA here (a model trained with
  training-set statistics instead scores 80.0 %, see the ablation);
- without the voiced-frame functionals (``--config.features.functionals_voiced=False``, the
  system until they were added): UA 87.5 %, WA 88.0 %, not adapted UA 79.1 %; the held-out
  training speakers' UA the choice was made on was 87.9 % with them and 87.5 % without, a
  difference within the noise, as is the test's;
- without the default silence trimming and DC removal (``--config.data.trim_silence=False
  --config.data.remove_dc=False``), before the voiced-frame functionals: UA 85.1 %, WA 85.4 %;
- every other ingredient removed in turn: ``results/ablation_emodb.md``.
"""

from serjax import config_lib


def get_config():
    config = config_lib.base_config()
    config.data.protocol = "loso"
    config.features.kind = "functionals"
    config.features.functionals_log_mel = True
    config.features.functionals_voiced = True
    config.features.standardise = "speaker"
    config.model.name = "functionals"
    config.model.hidden_sizes = ()
    config.optim.learning_rate = 0.03
    config.optim.class_weighted = True
    config.optim.l2_grid = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    config.train.epochs = 100  # full-batch Adam steps
    config.train.eval_batch_size = 16
    return config

"""Flax NNX models for speech emotion recognition, behind one registry.

Every model is called as ``logits = model(x, lengths)`` with ``x: [B, T, D]`` float32
features (``D = num_features``; for ``cnn_lstm_1d`` ``D = 1`` and ``T`` counts samples),
``lengths: [B]`` int32 valid steps (``None`` = all full) and ``logits: [B, num_classes]``.
Padding never changes the logits: recurrent carries freeze past each length, convolutions
see zeros past it, pooling, batch statistics and summaries use valid steps only.
``model.train()`` / ``model.eval()`` switch dropout and batch norm; dropout draws from the
``"dropout"`` stream of the ``nnx.Rngs`` given at construction. The classifier layers of
every model live under the attribute ``head`` (``head.hidden[i]``, ``head.out``).

==================  ========================  ===========================================
name                reproduces                architecture (defaults)
==================  ========================  ===========================================
``rnn``             S1, vanilla-cell variant  tanh RNN 128 -> 128, dropout 0.2 on the input
                                              and between layers, last output -> Dense K
``lstm``            S1 (also S2, S3 by        LSTM 128 -> 128, same dropouts, last output
                    overrides, see below)     -> Dense K
``bilstm``          S1, bidirectional         BiLSTM 64 -> 64 per direction, same dropouts,
                    variant                   [forward last, backward last] -> Dense K
``cnn_lstm_2d``     S4 (Zhao et al. 2D        4 x [conv 3x3 SAME -> BN -> ELU -> max pool],
                    CNN-LSTM)                 filters 64, 64, 128, 128, pools 2x2, 4x4, 4x4,
                                              4x4; LSTM 256 -> last -> Dense K
``cnn_lstm_2d_td``  S4 time-distributed       5-frame chunks, per chunk 4 x [conv VALID ->
                    2D CNN-BiLSTM             BN -> ELU -> max pool], 128 filters, kernels
                                              2x2, 2x2, 1x2, 1x2, pools 2x2, 1x2, 1x2, 1x2
                                              (time x band); BiLSTM 32 -> last -> Dense K
``cnn_lstm_1d``     S4 1D CNN-LSTM (raw       4 x [conv 3 SAME -> BN -> ELU -> max pool 4],
                    waveform)                 filters 64, 64, 128, 128; LSTM 256 -> Dense K
``crnn``            S5 CRNN                   [conv 32 3x3 -> BN -> ReLU -> dropout 0.3 ->
                                              max pool 2x2], same with 64; BiLSTM 128 ->
                                              dropout 0.3 -> BiLSTM 64 -> additive attention
                                              -> Dense 64 ReLU -> dropout 0.3 -> Dense K
``cnn``             S3 CNN on MFCC maps       3 x [conv 32 VALID -> avg pool 2x2 ->
                                              LeakyReLU 0.01 -> dropout 0.5], first kernel
                                              10 coefficients x 3 frames, then 3x3; the
                                              160-frame map flattened -> Dense K
==================  ========================  ===========================================

:func:`hparam_defaults` lists each model's hyper-parameters. The recurrent stacks take
``hidden_sizes``, ``input_dropout``, ``dropout`` (between recurrent layers),
``summary`` ("last" | "mean" | "attention"), ``attention_size``, ``output_dropout`` (on the
summary), ``head_sizes`` (hidden ReLU layers of the head) and ``head_dropout`` (after each of
them). The reference systems that are not a default:

* S2 final model: ``lstm`` with ``hidden_sizes=(256, 64)``, ``input_dropout=0``,
  ``dropout=p``, ``output_dropout=p``, ``head_sizes=(128,)``, ``head_dropout=p`` on 1
  feature x 13 steps: 355,720 parameters with 8 classes, as the report's summary. Its
  first model (``hidden_sizes=(128, 64)``) has 125,320, the report's total; the report's
  66,568 for that first layer is a slip for 4u(in + u + 1) = 66,560 (its total is the sum
  with 66,560). The report does not give the dropout rate ``p``.
* S3 LSTM: ``lstm`` with ``hidden_sizes=(1024, 1024)``, ``input_dropout=0``,
  ``dropout=0.5`` and ``head_sizes`` for its (unsized) MLP.
* S4 BiLSTM variants: ``bidirectional=True`` on ``cnn_lstm_1d`` / ``cnn_lstm_2d``;
  the time-distributed LSTM variant: ``cnn_lstm_2d_td`` with ``bidirectional=False``.

Choices the reports leave open, each a hyper-parameter: S3's "10x3" first kernel is read as
10 coefficients x 3 frames, with VALID convolutions (PyTorch's default) and 3x3 later
kernels; ``cnn`` flattens a fixed ``num_frames`` map, so inputs longer than that are a
``ValueError`` (``time_summary="mean"`` accepts any length). S5's pools are 2x2, its
convolutions SAME with ReLU, its attention ``v . tanh(W h + b)`` with 128 units. S4's
time-distributed CNN (kernels and pools read off the printed summary) uses ELU like the
LFLBs.

Parameters follow Keras (which the reference systems used): one bias per LSTM gate,
Glorot-uniform kernels, orthogonal recurrent kernels, forget-gate bias 1, batch norm with
momentum 0.99 and epsilon 1e-3. Along time every pool keeps a final partial window over
the valid steps (any non-empty utterance yields at least one step); along the feature axis
the remainder is dropped and a size that pools below one band is a ``ValueError`` at
construction that names the sizes that would work.
"""

from serjax.models.convolutional import (
    ConvClassifier,
    ConvRecurrent,
    TimeDistributedConvRecurrent,
)
from serjax.models.layers import AdditiveAttention, ConvBlock, MLPHead
from serjax.models.recurrent import (
    Bidirectional,
    LSTMLayer,
    RecurrentClassifier,
    RecurrentEncoder,
    SimpleRNNLayer,
)
from serjax.models.registry import MODEL_NAMES, create_model, hparam_defaults

__all__ = [
    "MODEL_NAMES",
    "AdditiveAttention",
    "Bidirectional",
    "ConvBlock",
    "ConvClassifier",
    "ConvRecurrent",
    "LSTMLayer",
    "MLPHead",
    "RecurrentClassifier",
    "RecurrentEncoder",
    "SimpleRNNLayer",
    "TimeDistributedConvRecurrent",
    "create_model",
    "hparam_defaults",
]

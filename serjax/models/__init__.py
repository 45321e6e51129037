"""Flax NNX models for speech emotion recognition, behind one registry.

Every model is called as ``logits = model(x, lengths)`` with ``x: [B, T, D]`` float32
features (``D = num_features``; for ``cnn_lstm_1d`` ``D = 1`` and ``T`` counts samples),
``lengths: [B]`` int32 valid steps (``None`` = all full) and ``logits: [B, num_classes]``.
Padding never changes the logits: recurrent carries freeze past each length, convolutions
see zeros past it, pooling, batch statistics and summaries use valid steps only.
``model.train()`` / ``model.eval()`` switch dropout and batch norm; dropout draws from the
``"dropout"`` stream of the ``nnx.Rngs`` given at construction. The classifier layers of
every model live under the attribute ``head`` (``head.hidden[i]``, ``head.out``). Any of them
can be wrapped in :class:`StandardisedInputs`, which standardises the input frames with
statistics it keeps (``features.frame_standardise="training"``, see
:func:`serjax.forward.create_model`).

The registered models and their defaults. Each ``hparam=value`` below is what
:func:`hparam_defaults` returns: this list is the registry's own rendering
(:func:`serjax.models.registry.describe_models`), and a test keeps the two equal. Kernels
and pools are written (time, feature); ``K`` is ``num_classes``.

``rnn`` (S1, vanilla-cell variant)
    Stacked tanh RNN layers ``hidden_sizes=(128, 128)``, dropout ``input_dropout=0.2`` on
    the frames and ``dropout=0.2`` between the layers; utterance pooling ``pooling='last'``;
    head ``head_sizes=()`` -> Dense K.

``lstm`` (S1; S2 and S3 by overrides, below)
    Stacked LSTM layers ``hidden_sizes=(128, 128)``, dropout ``input_dropout=0.2`` on the
    frames and ``dropout=0.2`` between the layers; utterance pooling ``pooling='last'``;
    head ``head_sizes=()`` -> Dense K.

``bilstm`` (S1, bidirectional variant)
    Stacked BiLSTM layers ``hidden_sizes=(64, 64)`` (units per direction; the last output is
    [forward last, backward last]), dropout ``input_dropout=0.2`` on the frames and
    ``dropout=0.2`` between the layers; utterance pooling ``pooling='last'``; head
    ``head_sizes=()`` -> Dense K.

``cnn_lstm_2d`` (S4, Zhao et al.'s 2D CNN-LSTM on the log-mel image)
    2D blocks [conv -> batch norm -> activation -> max pool] with
    ``filters=(64, 64, 128, 128)``, ``kernel_sizes=((3, 3), (3, 3), (3, 3), (3, 3))``,
    ``pool_sizes=((2, 2), (4, 4), (4, 4), (4, 4))``, ``padding='SAME'``,
    ``batch_norm=True``, ``activation='elu'``; LSTM ``hidden_sizes=(256,)``,
    ``bidirectional=False``, pooling over time ``pooling='last'``; head ``head_sizes=()`` ->
    Dense K.

``cnn_lstm_2d_td`` (S4, time-distributed 2D CNN-BiLSTM)
    The frames cut into chunks of ``chunk_frames=5``; on each chunk 2D blocks [conv -> batch
    norm -> activation -> max pool] with ``filters=(128, 128, 128, 128)``,
    ``kernel_sizes=((2, 2), (2, 2), (1, 2), (1, 2))``,
    ``pool_sizes=((2, 2), (1, 2), (1, 2), (1, 2))``, ``padding='VALID'``,
    ``batch_norm=True``, ``activation='elu'``; over the chunks LSTM ``hidden_sizes=(32,)``,
    ``bidirectional=True``, pooling over time ``pooling='last'``; head ``head_sizes=()`` ->
    Dense K. The defaults are read off the report's printed model summary (372,423
    parameters, batch statistics included, on 128 mel bands and 7 classes).

``cnn_lstm_1d`` (S4, 1D CNN-LSTM on the raw waveform, ``num_features=1``)
    1D blocks [conv -> batch norm -> activation -> max pool] with
    ``filters=(64, 64, 128, 128)``, ``kernel_sizes=(3, 3, 3, 3)``,
    ``pool_sizes=(4, 4, 4, 4)``, ``padding='SAME'``, ``batch_norm=True``,
    ``activation='elu'``; LSTM ``hidden_sizes=(256,)``, ``bidirectional=False``, pooling
    over time ``pooling='last'``; head ``head_sizes=()`` -> Dense K.

``crnn`` (S5, CRNN)
    2D blocks [conv -> batch norm -> activation -> dropout -> max pool] with
    ``filters=(32, 64)``, ``kernel_sizes=((3, 3), (3, 3))``,
    ``pool_sizes=((2, 2), (2, 2))``, ``padding='SAME'``, ``batch_norm=True``,
    ``activation='relu'``, ``conv_dropout=0.3``; LSTM layers ``hidden_sizes=(128, 64)``,
    ``bidirectional=True``, with ``dropout=0.3`` between them; pooling over time
    ``pooling='attention'`` (``attention_size=128`` units); head ``head_sizes=(64,)`` (ReLU)
    with ``head_dropout=0.3`` -> Dense K.

``cnn`` (S3, CNN on MFCC maps)
    2D blocks [conv -> average pool -> activation -> dropout] with ``filters=(32, 32, 32)``,
    ``kernel_sizes=((3, 10), (3, 3), (3, 3))``, ``pool_sizes=((2, 2), (2, 2), (2, 2))``,
    ``padding='VALID'``, ``activation='leaky_relu'``, ``batch_norm=False``,
    ``conv_dropout=0.5``; the map of ``num_frames=160`` frames flattened
    (``time_pooling='flatten'``); head ``head_sizes=()`` -> Dense K.

``functionals`` (serjax's own system, on ``features.kind='functionals'``)
    One vector of utterance functionals per utterance, standardised with statistics the
    model keeps, then hidden ReLU layers ``hidden_sizes=()`` -> Dense K (without hidden
    layers: multinomial logistic regression). Fitted full-batch, its L2 chosen on the
    training speakers (serjax.fit_functionals).

:func:`hparam_defaults` lists each model's hyper-parameters. The recurrent stacks take
``hidden_sizes``, ``input_dropout``, ``dropout`` (between recurrent layers),
``pooling`` ("last" | "mean" | "stats": mean and deviation | "attention"),
``attention_size``, ``output_dropout`` (on the pooling), ``head_sizes`` (hidden ReLU layers
of the head) and ``head_dropout`` (after each of them). The reference systems that are not
a default:

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

Choices the reports leave open, each a hyper-parameter with its default above: S3's "10x3"
first kernel is read as coefficients x frames, its padding as PyTorch's default and its later
kernels are not given; ``cnn`` flattens a fixed ``num_frames`` map, so inputs longer than
that are a ``ValueError`` (``time_pooling="mean"`` or ``"stats"``, the mean and deviation
over the valid steps, accept any length). S5 gives neither
its pools, nor its padding and activation, nor its attention size; its attention is
``v . tanh(W h + b)``. S4's time-distributed CNN (kernels and pools read off the printed
summary) uses the activation of the blocks of ``cnn_lstm_2d``.

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
from serjax.models.functionals import FunctionalsClassifier
from serjax.models.layers import (
    AdditiveAttention,
    ConvBlock,
    MLPHead,
    StandardisedInputs,
    Standardiser,
)
from serjax.models.recurrent import (
    Bidirectional,
    LSTMLayer,
    RecurrentClassifier,
    RecurrentEncoder,
    RecurrentTail,
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
    "FunctionalsClassifier",
    "LSTMLayer",
    "MLPHead",
    "RecurrentClassifier",
    "RecurrentEncoder",
    "RecurrentTail",
    "SimpleRNNLayer",
    "StandardisedInputs",
    "Standardiser",
    "TimeDistributedConvRecurrent",
    "create_model",
    "hparam_defaults",
]

"""`SequenceAutoencoder`: the paper's models for anyone's sequences.

A scikit-learn-like estimator around the same modules as the video models:
an `lstm.LSTM` encoder reads each sequence, and `models.Decoder`s start from
its final state of every layer (the authors' hand-off, one transition with
no input): `reconstruct` outputs the sequence in reverse order (section 2.2),
`future` the steps that follow (section 2.3), both make the composite model
(section 2.4). Each decoder is conditional (fed its previous target in
training, its own previous output otherwise) or unconditioned.

  ae = SequenceAutoencoder(units=64).fit(X)    # X: [N, T, F] or a list
  features_NxE = ae.transform(X)               # the encoder state
  scores_N = ae.score_samples(X)               # the model's error

Sequences of different lengths are zero-padded and masked: a padded step
never reaches the encoder state, a loss or a score. With the future decoder,
training splits each sequence into its first L - K steps (read, and
reconstructed) and its last K (predicted). Inputs are standardised per
feature with statistics of the training steps; scores are in those units.
"""

import copy
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from lstm_unsup import lstm, models
from lstm_unsup.sequence import data, fitting, saving
from lstm_unsup.sequence import network as model_lib
from lstm_unsup.sequence.network import Network

VARIANTS = models.DECODER_SETS  # variant -> its decoders, as config.model
ENCODINGS = ("h", "c", "state", "mean")
CHOICES = {
  "variant": VARIANTS,
  "activation": lstm.ACTIVATIONS,
  "initializer": lstm.INITIALIZERS,
}
MOST_STEPS = 32  # frame="auto": the longest training sequence in <= 32 frames
INTEGERS = {  # integer settings and their least values
  "units": 1,
  "num_layers": 1,
  "epochs": 1,
  "batch_size": 1,
  "patience": 1,
  "random_state": 0,
}
BOOLS = ("conditional_reconstruct", "conditional_future", "scale")


class SequenceAutoencoder(TransformerMixin, BaseEstimator):
  """An LSTM autoencoder, future predictor or composite model.

  The defaults are meant to work on the first try. They were chosen by
  `python -m experiments.sequence_defaults`, a protocol a reader can rerun:
  eight candidates (variant x units x initializer) and three encodings,
  fixed in advance, fitted on the training splits of the nine
  classification sets that the aeon wheel ships and scored by the
  cross-validated accuracy of a logistic regression on the training labels
  (no test split read). The best mean, 0.854 against 0.774 for the raw
  values, was the composite model with 128 units, Flax's initialiser and
  the "mean" encoding: these are the defaults. (The runner-up, the
  autoencoder with 128 units, scored 0.850: the margin is small; "mean"
  led for every candidate.)
  The training settings come from what `experiments/timeseries.py` had
  learned (batch 16, rate 3e-3, long patience), made stable by `fitting`'s
  plateau schedule; `frame="auto"` keeps every input within 32 LSTM steps,
  as that script does by hand. docs/sequence_autoencoder.md has the tables.

  Args:
    variant: "autoencoder", "future" or "composite".
    units, num_layers: LSTM size (H, L), the same for encoder and decoders.
    conditional_reconstruct, conditional_future: feed each decoder its
      previous step.
    future_steps: K, the frames the future decoder learns to predict; None
      takes half the shortest training sequence.
    activation: the cell's activation ("tanh", "relu", ...).
    initializer: the LSTM's weights (`lstm.INITIALIZERS`): "flax"
      (LeCun-normal, orthogonal recurrent), "authors" (uniform ±0.01, the
      paper's, learns slowly from a small start) or "torch".
    frame: consecutive steps the LSTM reads as one input vector (the
      paper's frames); "auto" takes the fewest that keep the longest
      training sequence within 32 (1 for sequences of up to 32 steps).
    encoding: what `transform` returns: every layer's final "h", "c" or
      "state" (c and h), concatenated bottom layer first; "mean" adds to the
      state the top layer's h averaged over the sequence's frames.
    scale: standardise each feature with the training steps' mean and std.
    epochs, batch_size, learning_rate, clip_norm: Adam on the mean squared
      error per step (`optimizers.adam`), for at most `epochs` epochs;
      learning_rate="auto" first fits briefly at each of
      `fitting.LEARNING_RATES_TRIED` and keeps the rate with the lowest
      validation loss (`learning_rate_`).
    validation_fraction, patience: hold out that share of the sequences;
      halve the rate after patience // 4 epochs without a new lowest
      validation loss (raw or smoothed, `fitting.Plateau`), stop after
      `patience`; keep the parameters of the lowest. 0 trains all `epochs`
      on everything at a constant rate.
    random_state: seeds the weights, the split and the shuffling.
    verbose: 0 silent; 1 a live bar in a terminal, a line every few epochs
      in a log (`fitting.Progress`).
  """

  def __init__(
    self,
    variant: str = "composite",
    units: int = 128,
    num_layers: int = 1,
    conditional_reconstruct: bool = False,
    conditional_future: bool = False,
    future_steps: int | None = None,
    activation: str = "tanh",
    initializer: str = "flax",
    frame: int | str = "auto",
    encoding: str = "mean",
    scale: bool = True,
    epochs: int = 1000,
    batch_size: int = 16,
    learning_rate: float | str = 3e-3,
    clip_norm: float | None = 1.0,
    validation_fraction: float = 0.1,
    patience: int = 50,
    random_state: int = 0,
    verbose: int = 1,
  ):
    self.variant = variant
    self.units = units
    self.num_layers = num_layers
    self.conditional_reconstruct = conditional_reconstruct
    self.conditional_future = conditional_future
    self.future_steps = future_steps
    self.activation = activation
    self.initializer = initializer
    self.frame = frame
    self.encoding = encoding
    self.scale = scale
    self.epochs = epochs
    self.batch_size = batch_size
    self.learning_rate = learning_rate
    self.clip_norm = clip_norm
    self.validation_fraction = validation_fraction
    self.patience = patience
    self.random_state = random_state
    self.verbose = verbose

  # -- fitting --

  def fit(self, X, y=None, lengths=None) -> "SequenceAutoencoder":
    """Learns from sequences X ([N, T, F] with optional `lengths`, or a
    list of [T_i, F] arrays); `y` is ignored."""
    del y
    self._check_settings()
    values, lengths_N = data.check_sequences(X, lengths)
    k = (
      data.frame_size(lengths_N, MOST_STEPS)
      if self.frame == "auto"
      else int(self.frame)
    )
    mean_F, std_F = data.fit_scaling(values, self.scale)
    x_NxTxG, frames_N = data.framed(values, lengths_N, k, mean_F, std_F)
    K = self._future_steps(int(frames_N.min()))
    rng = np.random.default_rng(self.random_state)
    train, valid = data.split(len(values), self.validation_fraction, rng)
    network = self._network
    params = network.init(
      jax.random.key(self.random_state),
      jnp.asarray(x_NxTxG[:1]),
      jnp.ones(x_NxTxG.shape[:2], bool)[:1],
      max(K, 1),
    )["params"]

    def fit_for(rate, epochs, verbose, rng):
      return fitting.train(
        network,
        params,
        x_NxTxG,
        frames_N,
        train,
        valid,
        rng,
        future_steps=K,
        learning_rate=rate,
        clip_norm=self.clip_norm,
        epochs=int(epochs),
        batch_size=int(self.batch_size),
        patience=int(self.patience),
        verbose=verbose,
      )

    rate = self.learning_rate
    if rate == "auto":  # short fits from the same start; the split stays
      steps_per_epoch = len(train) // min(int(self.batch_size), len(train))
      rate = fitting.choose_learning_rate(
        lambda r, e: fit_for(r, e, 0, copy.deepcopy(rng))[1],
        int(self.epochs),
        max(1, steps_per_epoch),
      )
    params, history = fit_for(rate, self.epochs, self.verbose, rng)
    # Set the fitted state only now, so a failed fit leaves none half-made.
    self.n_features_in_, self.future_steps_ = values[0].shape[1], K
    self.frame_, self.learning_rate_ = k, float(rate)
    self.mean_, self.scale_ = mean_F, std_F
    self.params_, self.history_ = params, history
    val = [h.get("val_loss", np.inf) for h in history]
    self.best_epoch_ = int(np.argmin(val)) + 1 if valid.size else len(val)
    return self

  def _future_steps(self, shortest: int) -> int:
    """K: 0 without a future decoder, else the setting or half the
    shortest sequence (in frames); at least one frame must remain to
    read."""
    if "future" not in self._decoders:
      return 0
    K = self.future_steps
    K = max(1, shortest // 2) if K is None else int(K)
    if K >= shortest:
      raise ValueError(
        f"future_steps={K} leaves nothing to read in the shortest training "
        f"sequence ({shortest} frames); choose future_steps < {shortest}."
      )
    return K

  def fit_transform(self, X, y=None, lengths=None) -> np.ndarray:
    return self.fit(X, lengths=lengths).transform(X, lengths)

  def _check_settings(self) -> None:
    """Every constructor setting; a ValueError that starts with the first
    bad one's name (scikit-learn's convention: the constructor stores them,
    fit checks them; `load` checks a saved model's the same way)."""
    for name, choices in {**CHOICES, "encoding": ENCODINGS}.items():
      value = getattr(self, name)
      if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {sorted(choices)}.")
    for name, least in INTEGERS.items():
      data.check_integer(name, getattr(self, name), least)
    if self.future_steps is not None:
      data.check_integer("future_steps", self.future_steps, 1)
    if self.frame != "auto":
      if isinstance(self.frame, str):
        raise ValueError(
          f"frame must be an integer >= 1 or 'auto'; got {self.frame!r}."
        )
      data.check_integer("frame", self.frame, 1)
    if not isinstance(self.verbose, bool):
      data.check_integer("verbose", self.verbose, 0)
    for name in BOOLS:
      if not isinstance(getattr(self, name), bool | np.bool_):
        raise ValueError(
          f"{name} must be True or False; got {getattr(self, name)!r}."
        )
    for name, accepted, ok in (
      ("learning_rate", "> 0, or 'auto'", lambda v: v > 0),
      ("clip_norm", "> 0, or None", lambda v: v > 0),
      ("validation_fraction", "in [0, 1)", lambda v: 0 <= v < 1),
    ):
      value = getattr(self, name)
      if (name, value) in (("clip_norm", None), ("learning_rate", "auto")):
        continue
      if not (
        data.is_number(value, numbers.Real) and np.isfinite(value) and ok(value)
      ):
        raise ValueError(f"{name} must be a number {accepted}; got {value!r}.")

  @property
  def _decoders(self) -> tuple[str, ...]:
    return VARIANTS[self.variant]

  @property
  def _network(self) -> Network:
    return Network(
      units=self.units,
      num_layers=self.num_layers,
      decoders=self._decoders,
      conditional=tuple(
        bool(getattr(self, f"conditional_{name}")) for name in self._decoders
      ),
      activation=self.activation,
      initializer=self.initializer,
    )

  # -- using a fitted model --

  def transform(self, X, lengths=None) -> np.ndarray:
    """Fixed-length vectors [N, E]: the encoder's final state (`encoding`)."""
    return self.encode(X, lengths)

  def encode(self, X, lengths=None, which: str | None = None) -> np.ndarray:
    """Like `transform`, with `which` (see `encoding`) overriding it."""
    which = which or self.encoding
    if which not in ENCODINGS:
      raise ValueError(f"which={which!r} is not one of {ENCODINGS}.")
    x_NxTxG, frames_N, _, _ = self._prepare(X, lengths)
    return self._run("encode", x_NxTxG, frames_N, which=which)

  def reconstruct(self, X, lengths=None):
    """The reconstruction in time order and the input's units: a list for a
    list, else [N, T, F] (NaN past each sequence's length)."""
    self._need("reconstruct")
    x_NxTxG, frames_N, _, unpad = self._prepare(X, lengths)
    out_NxTxG = self._run("reconstruct", x_NxTxG, frames_N)
    out_NxTxF = data.from_frames(out_NxTxG, self.frame_)
    return unpad(out_NxTxF * self.scale_ + self.mean_)

  def predict_future(self, X, steps: int, lengths=None) -> np.ndarray:
    """The `steps` steps after each sequence, [N, steps, F], input units.
    With frames of k > 1 steps they follow the sequence's last frame, which
    ends with repeats of its last step when its length is not a multiple
    of k."""
    self._need("future")
    data.check_integer("steps", steps, 1)
    x_NxTxG, frames_N, _, _ = self._prepare(X, lengths)
    frames = -(-int(steps) // self.frame_)
    out_NxKxG = self._run("future", x_NxTxG, frames_N, steps=frames)
    out_NxKxF = data.from_frames(out_NxKxG, self.frame_)[:, : int(steps)]
    return out_NxKxF * self.scale_ + self.mean_

  def score_samples(self, X, lengths=None, per_step: bool = False):
    """Anomaly scores (higher: more anomalous, unlike scikit-learn's outlier
    scores): each sequence's error under the model's own objective, as an
    array [N]. As in training, a model with a future decoder reads the
    first L - K steps (K = `future_steps_`, in frames) and predicts the last
    K, and a reconstruct decoder reconstructs the steps read; the score is
    the squared error averaged over the features and over the steps the
    model outputs (every step, unless `variant="future"`, which outputs the
    last K), in standardised units: predicting each feature's training mean
    scores about 1. With `per_step`, also each step's error (a list for a
    list, else [N, T]; NaN at steps not scored and past each length)."""
    self._need(self._decoders[0])
    x_NxTxG, frames_N, lengths_N, unpad = self._prepare(X, lengths)
    K = self.future_steps_
    if K and frames_N.min() <= K:
      i = int(np.argmin(frames_N))
      raise ValueError(
        f"Sequence {i} has {lengths_N[i]} steps ({frames_N[i]} frames of "
        f"{self.frame_}); this model predicts the last {K} frames and must "
        f"read at least one first: score sequences longer than {K} frames."
      )
    error_NxTxG = self._run("score", x_NxTxG, frames_N, steps=K)
    error_NxTxF = data.from_frames(error_NxTxG, self.frame_)
    steps_NxT = np.mean(error_NxTxF, axis=-1)  # NaN where not scored
    valid_NxT = np.arange(steps_NxT.shape[1])[None, :] < lengths_N[:, None]
    steps_NxT = np.where(valid_NxT, steps_NxT, np.nan)
    scores_N = np.nanmean(steps_NxT, axis=1)
    return (scores_N, unpad(steps_NxT)) if per_step else scores_N

  def _need(self, decoder: str) -> None:
    if not hasattr(self, "params_"):
      raise ValueError("This SequenceAutoencoder is not fitted; call fit.")
    if decoder not in self._decoders:
      need = "future" if decoder == "future" else "autoencoder"
      raise ValueError(
        f"variant={self.variant!r} has no {decoder} decoder; use "
        f"variant={need!r} or 'composite'."
      )

  def _prepare(self, X, lengths):
    """Checked inputs, scaled, in frames of `frame_` steps and padded (to a
    multiple of 8 frames, so that fewer shapes compile); their lengths in
    frames; the lengths in steps; and a function that gives per-step
    outputs the input's form back."""
    self._need(self._decoders[0])
    values, lengths_N = data.check_sequences(X, lengths, self.n_features_in_)
    x_NxTxG, frames_N = data.framed(
      values, lengths_N, self.frame_, self.mean_, self.scale_, 8
    )
    as_list = isinstance(X, list | tuple)
    T = int(lengths_N.max()) if as_list else np.shape(X)[1]

    def unpad(out_NxT):
      return data.unpad(out_NxT[:, :T], lengths_N, as_list)

    return x_NxTxG, frames_N, lengths_N, unpad

  def _run(self, what, x_NxTxG, frames_N, **kwargs) -> np.ndarray:
    fn = model_lib.inference_fn(self._network, what, **kwargs)
    return model_lib.in_chunks(fn, self.params_, x_NxTxG, frames_N)

  # -- persistence (saving.py) --

  def save(self, path: str) -> None:
    """Writes `path/settings.json`, `path/params.msgpack` and
    `path/checksums.sha256`, the SHA-256 of both. The checksums are written
    first and each file atomically, so a save cut short leaves files that
    fail their checksums rather than files that look whole."""
    self._need(self._decoders[0])
    saving.save(self, path)

  @classmethod
  def load(cls, path: str) -> "SequenceAutoencoder":
    """The model `save` wrote: the same outputs, bit for bit. A ValueError
    naming the file if a file fails its checksum, a setting is one the
    constructor refuses or does not fit the parameters, or a parameter is
    not finite; a folder saved before checksums loads with a warning."""
    return saving.load(cls, path)

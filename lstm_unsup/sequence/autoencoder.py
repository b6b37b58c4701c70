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
  scores_N = ae.score_samples(X)               # reconstruction error

Sequences of different lengths are zero-padded and masked: a padded step
never reaches the encoder state, a loss or a score. With the future decoder,
training splits each sequence into its first L - K steps (read, and
reconstructed) and its last K (predicted). Inputs are standardised per
feature with statistics of the training steps; scores are in those units.
"""

import json
import logging
import numbers
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization, traverse_util
from sklearn.base import BaseEstimator, TransformerMixin

from lstm_unsup import lstm, models
from lstm_unsup.data import checksums
from lstm_unsup.sequence import data
from lstm_unsup.sequence import network as model_lib
from lstm_unsup.sequence.network import Network

VARIANTS = models.DECODER_SETS  # variant -> its decoders, as config.model
ENCODINGS = ("h", "c", "state", "mean")
FORMAT = "lstm_unsup.SequenceAutoencoder/1"  # in every saved settings.json
FITTED = ("n_features_in_", "future_steps_", "best_epoch_")  # saved ints
SETTINGS, PARAMS = "settings.json", "params.msgpack"  # what save writes
CHECKSUMS = "checksums.sha256"  # their SHA-256, in sha256sum's format
CHOICES = {"variant": VARIANTS, "activation": lstm.ACTIVATIONS}
INTEGERS = {  # integer settings and their least values
  "units": 1,
  "num_layers": 1,
  "epochs": 1,
  "batch_size": 1,
  "patience": 1,
  "random_state": 0,
}
BOOLS = ("conditional_reconstruct", "conditional_future", "scale")

logger = logging.getLogger(__name__)


def _check_integer(name: str, value, least: int) -> None:
  """A ValueError naming `name` unless `value` is an integer (not a bool,
  not a float such as 2.0) >= `least`."""
  if not _is_number(value, numbers.Integral) or value < least:
    raise ValueError(f"{name} must be an integer >= {least}; got {value!r}.")


def _is_number(value, kind) -> bool:
  return isinstance(value, kind) and not isinstance(value, bool | np.bool_)


class SequenceAutoencoder(TransformerMixin, BaseEstimator):
  """An LSTM autoencoder, future predictor or composite model.

  Args:
    variant: "autoencoder", "future" or "composite".
    units, num_layers: LSTM size (H, L), the same for encoder and decoders.
    conditional_reconstruct, conditional_future: feed each decoder its
      previous step.
    future_steps: K, the steps the future decoder learns to predict; None
      takes half the shortest training sequence.
    activation: the cell's activation ("tanh", "relu", ...).
    encoding: what `transform` returns: every layer's final "h", "c" or
      "state" (c and h), concatenated bottom layer first; "mean" adds to the
      state the top layer's h averaged over the sequence's steps.
    scale: standardise each feature with the training steps' mean and std.
    epochs, batch_size, learning_rate, clip_norm: Adam on the mean squared
      error per step (`optimizers.adam`).
    validation_fraction, patience: hold out that share of the sequences;
      stop after `patience` epochs without a better validation loss and keep
      the best parameters. 0 trains all `epochs` on everything.
    random_state: seeds the weights, the split and the shuffling.
    verbose: 0 silent, 1 a progress bar (tqdm if installed, else prints).
  """

  def __init__(
    self,
    variant: str = "autoencoder",
    units: int = 64,
    num_layers: int = 1,
    conditional_reconstruct: bool = False,
    conditional_future: bool = False,
    future_steps: int | None = None,
    activation: str = "tanh",
    encoding: str = "h",
    scale: bool = True,
    epochs: int = 200,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    clip_norm: float | None = 1.0,
    validation_fraction: float = 0.1,
    patience: int = 20,
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
    K = self._future_steps(int(lengths_N.min()))
    mean_F, std_F = data.fit_scaling(values, self.scale)
    x_NxTxF = data.pad(values, lengths_N, mean_F, std_F)
    rng = np.random.default_rng(self.random_state)
    train, valid = data.split(len(values), self.validation_fraction, rng)
    params = self._network.init(
      jax.random.key(self.random_state),
      jnp.asarray(x_NxTxF[:1]),
      jnp.ones(x_NxTxF.shape[:2], bool)[:1],
      max(K, 1),
    )["params"]
    params, history = model_lib.train(
      self._network,
      params,
      x_NxTxF,
      lengths_N,
      train,
      valid,
      rng,
      future_steps=K,
      learning_rate=self.learning_rate,
      clip_norm=self.clip_norm,
      epochs=int(self.epochs),
      batch_size=int(self.batch_size),
      patience=int(self.patience),
      verbose=self.verbose,
    )
    # Set the fitted state only now, so a failed fit leaves none half-made.
    self.n_features_in_, self.future_steps_ = values[0].shape[1], K
    self.mean_, self.scale_ = mean_F, std_F
    self.params_, self.history_ = params, history
    val = [h.get("val_loss", np.inf) for h in history]
    self.best_epoch_ = int(np.argmin(val)) + 1 if valid.size else len(val)
    return self

  def _future_steps(self, shortest: int) -> int:
    """K: 0 without a future decoder, else the setting or half the
    shortest sequence; at least one step must remain to read."""
    if "future" not in self._decoders:
      return 0
    K = self.future_steps
    K = max(1, shortest // 2) if K is None else int(K)
    if K >= shortest:
      raise ValueError(
        f"future_steps={K} leaves nothing to read in the shortest training "
        f"sequence ({shortest} steps); choose future_steps < {shortest}."
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
      _check_integer(name, getattr(self, name), least)
    if self.future_steps is not None:
      _check_integer("future_steps", self.future_steps, 1)
    if not isinstance(self.verbose, bool):
      _check_integer("verbose", self.verbose, 0)
    for name in BOOLS:
      if not isinstance(getattr(self, name), bool | np.bool_):
        raise ValueError(
          f"{name} must be True or False; got {getattr(self, name)!r}."
        )
    for name, accepted, ok in (
      ("learning_rate", "> 0", lambda v: v > 0),
      ("clip_norm", "> 0, or None", lambda v: v > 0),
      ("validation_fraction", "in [0, 1)", lambda v: 0 <= v < 1),
    ):
      value = getattr(self, name)
      if name == "clip_norm" and value is None:
        continue
      if not (
        _is_number(value, numbers.Real) and np.isfinite(value) and ok(value)
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
    x_NxTxF, lengths_N, _ = self._prepare(X, lengths)
    return self._run("encode", x_NxTxF, lengths_N, which=which)

  def reconstruct(self, X, lengths=None):
    """The reconstruction in time order and the input's units: a list for a
    list, else [N, T, F] (NaN past each sequence's length)."""
    self._need("reconstruct")
    x_NxTxF, lengths_N, unpad = self._prepare(X, lengths)
    out_NxTxF = self._run("reconstruct", x_NxTxF, lengths_N)
    return unpad(out_NxTxF * self.scale_ + self.mean_)

  def predict_future(self, X, steps: int, lengths=None) -> np.ndarray:
    """The `steps` steps after each sequence, [N, steps, F], input units."""
    self._need("future")
    _check_integer("steps", steps, 1)
    x_NxTxF, lengths_N, _ = self._prepare(X, lengths)
    out_NxKxF = self._run("future", x_NxTxF, lengths_N, steps=int(steps))
    return out_NxKxF * self.scale_ + self.mean_

  def score_samples(self, X, lengths=None, per_step: bool = False):
    """Reconstruction error (higher: more anomalous, unlike scikit-learn's
    outlier scores): per sequence the mean over its steps of the squared
    error averaged over features, in standardised units, as an array [N];
    with `per_step`, also each step's error (a list for a list, else [N, T]
    with NaN past each length)."""
    self._need("reconstruct")
    x_NxTxF, lengths_N, unpad = self._prepare(X, lengths)
    out_NxTxF = self._run("reconstruct", x_NxTxF, lengths_N)
    steps_NxT = np.mean(np.square(out_NxTxF - x_NxTxF), axis=-1)
    valid_NxT = np.arange(x_NxTxF.shape[1])[None, :] < lengths_N[:, None]
    scores_N = np.where(valid_NxT, steps_NxT, 0).sum(1) / lengths_N
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
    """Checked, scaled, padded inputs (T rounded up to a multiple of 8, so
    that fewer shapes compile), and a function that gives per-step outputs
    the input's form back."""
    self._need(self._decoders[0])
    values, lengths_N = data.check_sequences(X, lengths, self.n_features_in_)
    x_NxTxF = data.pad(values, lengths_N, self.mean_, self.scale_, 8)
    as_list = isinstance(X, list | tuple)
    T = int(lengths_N.max()) if as_list else np.shape(X)[1]

    def unpad(out_NxT):
      return data.unpad(out_NxT[:, :T], lengths_N, as_list)

    return x_NxTxF, lengths_N, unpad

  def _run(self, what, x_NxTxF, lengths_N, **kwargs) -> np.ndarray:
    fn = model_lib.inference_fn(self._network, what, **kwargs)
    return model_lib.in_chunks(fn, self.params_, x_NxTxF, lengths_N)

  # -- persistence --

  def save(self, path: str) -> None:
    """Writes `path/settings.json`, `path/params.msgpack` and
    `path/checksums.sha256`, the SHA-256 of both. The checksums are written
    first and each file atomically, so a save cut short leaves files that
    fail their checksums rather than files that look whole."""
    self._need(self._decoders[0])
    settings = {
      "format": FORMAT,
      "settings": self.get_params(),
      "fitted": {name: int(getattr(self, name)) for name in FITTED},
      "history": self.history_,
    }
    arrays = {"params": self.params_, "mean": self.mean_, "std": self.scale_}
    arrays = jax.tree.map(np.asarray, arrays)
    files = {
      SETTINGS: json.dumps(settings, indent=1).encode(),
      PARAMS: serialization.msgpack_serialize(arrays),
    }
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    checksums.write(folder / CHECKSUMS, files)
    for name, blob in files.items():
      checksums.write_atomically(folder / name, blob)

  @classmethod
  def load(cls, path: str) -> "SequenceAutoencoder":
    """The model `save` wrote: the same outputs, bit for bit. A ValueError
    naming the file if a file fails its checksum, a setting is one the
    constructor refuses or does not fit the parameters, or a parameter is
    not finite; a folder saved before checksums loads with a warning."""
    folder = Path(path)
    files = _read_saved(folder)
    if (folder / CHECKSUMS).exists():
      problem = checksums.mismatch(folder / CHECKSUMS, files)
      if problem:
        raise ValueError(
          f"{problem}. Save the model again, or restore the folder from a copy."
        )
    else:
      logger.warning("%s was saved before checksums; not verified.", folder)
    model = cls._from_settings(folder / SETTINGS, files[SETTINGS])
    where = folder / PARAMS
    try:
      arrays = serialization.msgpack_restore(files[PARAMS])
      params, mean, std = arrays["params"], arrays["mean"], arrays["std"]
      if not isinstance(params, dict):
        raise TypeError(f"params is a {type(params).__name__}, not a dict")
    except (ValueError, TypeError, KeyError) as e:  # msgpack's are ValueErrors
      raise ValueError(
        f"{where} cannot be read as saved parameters ({e!r})."
      ) from e
    model._check_arrays(where, folder / SETTINGS, params, mean, std)
    model.mean_, model.scale_ = mean, std
    model.params_ = jax.tree.map(jnp.asarray, params)
    return model

  @classmethod
  def _from_settings(cls, where: Path, blob: bytes) -> "SequenceAutoencoder":
    """The unfitted model that a settings.json describes, every value
    checked as by fit, with the fitted sizes and history."""
    try:
      saved = json.loads(blob)
    except ValueError as e:  # also a UnicodeDecodeError
      raise ValueError(f"{where} is not JSON ({e}).") from e
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
      found = saved.get("format") if isinstance(saved, dict) else saved
      raise ValueError(f"{where} holds {found!r}, not a saved {FORMAT}.")
    if not (
      isinstance(saved.get("settings"), dict)
      and isinstance(saved.get("fitted"), dict)
      and "history" in saved
    ):
      raise ValueError(f"{where} lacks the settings, fitted sizes or history.")
    unknown = set(saved["settings"]) - set(cls._get_param_names())
    if unknown:
      raise ValueError(f"{where} has unknown settings {sorted(unknown)}.")
    model = cls(**saved["settings"])
    try:
      model._check_settings()
      for name in FITTED:
        least = 1 if name == "n_features_in_" else 0
        _check_integer(name, saved["fitted"].get(name), least)
    except ValueError as e:
      raise ValueError(f"{where}: {e}") from e
    for name in FITTED:
      setattr(model, name, saved["fitted"][name])
    model.history_ = saved["history"]
    return model

  def _check_arrays(self, where: Path, settings: Path, params, mean, std):
    """A ValueError naming the array unless the parameters are those of the
    network the settings describe (names and shapes) and every array is
    finite, with a scale > 0."""
    F = self.n_features_in_
    K = max(self.future_steps_, 1)
    shapes = jax.eval_shape(
      lambda x, mask: self._network.init(jax.random.key(0), x, mask, K),
      jnp.zeros((1, 1, F)),
      jnp.ones((1, 1), bool),
    )["params"]
    scaling = jax.ShapeDtypeStruct((F,), np.float32)
    want = traverse_util.flatten_dict(shapes, sep="/")
    want |= {"mean": scaling, "std": scaling}
    got = traverse_util.flatten_dict(params, sep="/")
    got |= {"mean": mean, "std": std}
    for name in sorted(want.keys() | got.keys()):
      label = name if name in ("mean", "std") else f"params/{name}"
      if name not in got:
        raise ValueError(
          f"{where}: {label} is missing from it, but the model that "
          f"{settings} describes has it."
        )
      if name not in want:
        raise ValueError(
          f"{where}: {label} is not part of the model that {settings} "
          "describes."
        )
      array = np.asarray(got[name])
      if array.shape != want[name].shape:
        raise ValueError(
          f"{where}: {label} is {array.shape} in it but "
          f"{want[name].shape} in the model that {settings} describes."
        )
      if not np.isfinite(array).all() or (name == "std" and array.min() <= 0):
        raise ValueError(
          f"{where}: {label} holds NaN or infinite values"
          f"{' or a scale <= 0' * (name == 'std')}; refusing a model whose "
          "outputs would be wrong."
        )


def _read_saved(folder: Path) -> dict[str, bytes]:
  """The bytes of each file `save` writes, or an error naming what is
  missing."""
  what = "a folder saved by SequenceAutoencoder.save"
  if not folder.exists():
    raise FileNotFoundError(f"{folder} does not exist.")
  if not folder.is_dir():
    raise ValueError(f"{folder} is a file, not {what}.")
  files = {}
  for name in (SETTINGS, PARAMS):
    try:
      files[name] = (folder / name).read_bytes()
    except FileNotFoundError as e:
      raise FileNotFoundError(
        f"{folder / name} not found: {folder} is not {what} (which holds "
        f"{SETTINGS} and {PARAMS})."
      ) from e
  return files

"""The paper's LSTM classifier (section 4, Fig. 11), seeded from an encoder.

An LSTM stack reads a block of frames and a softmax readout classifies at
every step, always against the video's label (`per_step_loss`). A block's
prediction is the softmax averaged over its steps (`step_average`); a
video is cut into blocks of 16 frames with stride 8 (`block_layout`) and its
prediction is the average over its blocks (`average_per_video`), as in the
authors' DataHandler.GetResults.

Dropout (Zaremba et al. 2014) acts on the connections between layers, the
LSTM's output into the softmax included, never on the recurrent ones; an
optional `input_dropout_rate` drops input features. Both are on only when
`train=True`.

Seeding (`seed_from_encoder`): the classifier's LSTM has the encoder's
architecture and parameter paths (`lstm/layer_k/...` against
`encoder/layer_k/...`), so the encoder of any trained run of this repository
(autoencoder, future predictor or composite, conditional or not) is copied
into it array for array; only the readout starts at random. A ConvLSTM run's
encoder (`config.model.cell="conv"`) does not fit it: seeding refuses it.
`open_pretrained` opens the run, before the classifier writes anything, and
refuses one that is no run or whose encoder does not read the classifier's
frames.

`kind="single_frame"` is the paper's single-frame baseline: logistic
regression on each frame's input (a readout and nothing else), predictions
averaged over frames and blocks in the same way.
"""

import dataclasses
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lstm_unsup import config_lib, lstm
from lstm_unsup.run import folder, opening

Array = jax.Array
PyTree = Any
KINDS = ("lstm", "single_frame")
# The fields of a run's config.model that the classifier's LSTM copies.
ARCHITECTURE_FIELDS = (
  "hidden",
  "num_layers",
  "peepholes",
  "initializer",
  "forget_bias",
)


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
  """What `LSTMClassifier` needs: the number of classes and the fields of
  `config.model` of lstm_unsup/configs/classifier.py that describes them."""

  num_classes: int  # C
  kind: str = "lstm"
  hidden: int = 2048  # H
  num_layers: int = 1  # L
  peepholes: bool = False
  initializer: str = "authors"  # the paper's; LSTM alone defaults to "flax"
  forget_bias: float = 0.0
  dropout_rate: float = 0.5
  input_dropout_rate: float = 0.0


class DropoutLSTM(lstm.LSTM):
  """The LSTM stack with dropout between layers (not through time).

  The same parameters and paths as `lstm.LSTM` (`layer_k/...`), so an
  encoder's parameters fit it as they are.
  """

  dropout_rate: float = 0.0

  @nn.compact
  def __call__(
    self,
    x_BxTxD: Array,
    mask_BxT: Array | None = None,
    *,
    deterministic: bool = True,
  ) -> Array:
    """The top layer's outputs h_BxTxH (zero at masked steps)."""
    self._check_config()
    input_size = self._check_inputs(x_BxTxD, None, None)
    self._check_params(input_size)
    layers = [
      lstm.cast_matmul_weights(layer, self.dtype)
      for layer in self.layer_params(input_size)
    ]
    B, T = x_BxTxD.shape[:2]
    mask_BxT = self._check_mask(None, mask_BxT, B, T)
    h_BxTxH = x_BxTxD
    for k, layer in enumerate(layers):
      if k > 0:
        h_BxTxH = nn.Dropout(self.dropout_rate)(
          h_BxTxH, deterministic=deterministic
        )
      h_BxTxH, _ = lstm.run_stack(
        [layer],
        h_BxTxH,
        None,
        mask_BxT,
        gate_fn=self.gate_fn,
        activation_fn=self.activation_fn,
        unroll=self.unroll,
        custom_grad=self.custom_grad,
      )
    return h_BxTxH


class LSTMClassifier(nn.Module):
  """Per-step class logits of a block of frames (Fig. 11)."""

  config: ClassifierConfig

  @nn.compact
  def __call__(
    self,
    frames_BxTxD: Array,
    mask_BxT: Array | None = None,
    *,
    train: bool = False,
  ) -> Array:
    """logits_BxTxC: a softmax over the classes at every step."""
    c = self.config
    if c.kind not in KINDS:
      raise ValueError(f"Unknown classifier kind {c.kind!r}; one of {KINDS}.")
    x_BxTxD = nn.Dropout(c.input_dropout_rate)(
      frames_BxTxD, deterministic=not train
    )
    if c.kind == "lstm":
      h_BxTxH = DropoutLSTM(
        features=c.hidden,
        num_layers=c.num_layers,
        peepholes=c.peepholes,
        initializer=c.initializer,
        forget_bias=c.forget_bias,
        dropout_rate=c.dropout_rate,
        name="lstm",
      )(x_BxTxD, mask_BxT, deterministic=not train)
      x_BxTxD = nn.Dropout(c.dropout_rate)(h_BxTxH, deterministic=not train)
    return nn.Dense(c.num_classes, name="readout")(x_BxTxD)


# ----------------------------------------------------------------------------
# Per-step targets and averaged predictions.


def _step_weights(shape_BxT, mask_BxT: Array | None) -> Array:
  """Each valid step's share of its sequence: 1 / (valid steps)."""
  if mask_BxT is None:
    return jnp.full(shape_BxT, 1.0 / shape_BxT[1])
  valid = mask_BxT.astype(jnp.float32)
  return valid / jnp.maximum(valid.sum(axis=1, keepdims=True), 1.0)


def per_step_loss(
  logits_BxTxC: Array, labels_B: Array, mask_BxT: Array | None = None
) -> Array:
  """Softmax cross entropy at every step against the same label, averaged
  over each sequence's valid steps: loss_B in nats."""
  log_p = jax.nn.log_softmax(logits_BxTxC.astype(jnp.float32))
  C = logits_BxTxC.shape[-1]
  onehot_BxC = jax.nn.one_hot(labels_B, C)
  ce_BxT = -jnp.einsum("btc,bc->bt", log_p, onehot_BxC)
  return jnp.sum(ce_BxT * _step_weights(ce_BxT.shape, mask_BxT), axis=1)


def step_average(logits_BxTxC: Array, mask_BxT: Array | None = None) -> Array:
  """A block's prediction: the softmax averaged over its valid steps."""
  p_BxTxC = jax.nn.softmax(logits_BxTxC.astype(jnp.float32))
  w_BxT = _step_weights(p_BxTxC.shape[:2], mask_BxT)
  return jnp.einsum("btc,bt->bc", p_BxTxC, w_BxT)


def block_layout(
  lengths_N: np.ndarray, block_length: int = 16, stride: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Every block of every video: (video_M, start_M, length_M).

  Blocks start at 0, stride, 2 * stride, ... while they fit in the video; a
  video shorter than `block_length` is one shorter block (masked).
  """
  if block_length < 1 or stride < 1:
    raise ValueError(
      f"block_length and stride must be >= 1; got {block_length}, {stride}."
    )
  video, start, length = [], [], []
  for n, T in enumerate(np.asarray(lengths_N)):
    starts = range(0, max(int(T) - block_length, 0) + 1, stride)
    video += [n] * len(starts)
    start += list(starts)
    length += [min(block_length, int(T))] * len(starts)
  return (
    np.array(video, np.int64),
    np.array(start, np.int64),
    np.array(length, np.int64),
  )


def average_per_video(
  probs_MxC: np.ndarray, video_M: np.ndarray, num_videos: int
) -> np.ndarray:
  """Each video's prediction: the mean of its blocks' predictions."""
  sums_NxC = np.zeros((num_videos, probs_MxC.shape[1]), np.float64)
  np.add.at(sums_NxC, video_M, probs_MxC)
  counts_N = np.bincount(video_M, minlength=num_videos)
  return sums_NxC / np.maximum(counts_N, 1)[:, None]


# ----------------------------------------------------------------------------
# Seeding from a trained encoder.


def architecture_of(run_config) -> dict[str, Any]:
  """The classifier fields that make its LSTM the shape of a run's encoder."""
  return {name: run_config.model[name] for name in ARCHITECTURE_FIELDS}


def seed_from_encoder(params: PyTree, encoder_params: PyTree) -> PyTree:
  """`params` with the classifier's LSTM replaced by the encoder's, exactly.

  The structure, shapes and dtypes must match (build the classifier with
  `architecture_of` the run, on inputs of the encoder's frame size).
  """
  if "lstm" not in params:
    raise ValueError("Only an LSTM classifier can be seeded from an encoder.")
  ours = jax.tree_util.tree_flatten_with_path(params["lstm"])[0]
  theirs = jax.tree_util.tree_flatten_with_path(encoder_params)[0]
  ours_paths = [jax.tree_util.keystr(p) for p, _ in ours]
  their_paths = [jax.tree_util.keystr(p) for p, _ in theirs]
  if ours_paths != their_paths:
    raise ValueError(
      f"The encoder's parameters {their_paths} do not match the "
      f"classifier's LSTM {ours_paths}: give the classifier the encoder's "
      f"architecture (classifier.architecture_of)."
    )
  for path, (_, a), (_, b) in zip(ours_paths, ours, theirs):
    if a.shape != b.shape or a.dtype != b.dtype:
      raise ValueError(
        f"lstm{path} is {a.shape} {a.dtype} but the encoder's is {b.shape} "
        f"{b.dtype}: the labelled frames must have the encoder's size."
      )
  # Through the host: the same values, placed like freshly initialised ones
  # (the checkpoint's mesh sharding would make the jitted steps recompile).
  seeded = jax.tree.map(jnp.asarray, jax.device_get(encoder_params))
  return {**params, "lstm": seeded}


def open_pretrained(config, train):
  """(run config, encoder parameters) of config.pretrained.workdir for a
  classifier of `config` (configs/classifier.py) trained on `train` (a
  labelled.VideoSet), or (None, None) without one; a ConfigError if it is
  not a training run or its encoder does not read `train`'s frames."""
  where = config.pretrained.workdir
  if not where:
    return None, None
  if not folder.RunDir(where).is_run():
    held = f"holds no {folder.CONFIG}"
    what = held if os.path.exists(where) else "does not exist"
    raise config_lib.ConfigError(
      f"config.pretrained.workdir={where} {what}: it is not a training run. "
      "Give the --workdir of a run of python -m lstm_unsup.main, or leave "
      "it empty to start from random weights."
    )
  run_config, encoder = opening.encoder_of_run(where)
  reads = int(encoder["layer_0"]["w_input"].shape[-2])  # values a frame
  if reads != train.feature_dim:
    raise config_lib.ConfigError(_misfit(config, run_config, reads, train))
  return run_config, encoder


def _misfit(config, run_config, reads: int, train) -> str:
  """What the encoder reads, and what the classifier's frames are."""
  size, D = run_config.data.image_size, train.feature_dim
  channels = reads // (size * size)
  trained_on = f"{size}x{size} pixels"
  if channels != 1:
    trained_on += f", {channels} channels"
  theirs = (
    f"The encoder of {config.pretrained.workdir} reads frames of {reads} "
    f"values ({trained_on}, the frames it was trained on), but the "
    "classifier's"
  )
  if config.data.task == "percepts":
    return (
      f"{theirs} percepts have {D} features a frame "
      f"({config.data.percepts}): seed it from a run trained on frames of "
      f"{D} values."
    )
  ours = config.data.image_size
  fix = f"set --config.data.image_size={size}, or " * (reads == size * size)
  return (
    f"{theirs} frames have {D} ({ours}x{ours} pixels): {fix}seed it from a "
    f"run trained on {ours}x{ours} grey frames."
  )

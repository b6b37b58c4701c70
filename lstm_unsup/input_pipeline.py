"""Batches for training and evaluation, shaped for the models.

Training batches are generated on the fly, each a pure function of (seed,
step): Moving MNIST from training digits, or patches cropped from the
training windows of videos. Validation and test sequences are fixed sets:
Moving MNIST from held-out and test digits (or the standard
`mnist_test_seq.npy`), patches from the validation and test windows, which
share no video (or stretch of time) with training; the run's
`data_split.json` says how they were split. Fixed sets hold pixels (uint8,
or float in [0, 1]); `model_frames` turns them into what the model reads
(patches normalised per channel with the training windows' statistics).
Frames reach the model flattened: `inputs_BxTxD` (the first T frames) and
`future_BxKxD` (the K frames after them).

`check_batch` and `check_sequences` refuse arrays of the wrong rank, shape
or dtype, with a NaN or an infinity, or (for binary outputs) outside [0, 1],
with a DataError naming the array and what was expected.
"""

import functools
import os

import numpy as np
from absl import logging

from lstm_unsup import models
from lstm_unsup.data import digits as digits_lib
from lstm_unsup.data import moving_mnist, patches, splits, test_sets
from lstm_unsup.data import videos as videos_lib
from lstm_unsup.data.errors import DataError

DATASETS = ("moving_mnist", "patches")  # what config.data.dataset may be


def load_train_digits(config) -> digits_lib.Digits:
  d = config.data
  digits = digits_lib.load_digits(d.source, "train", d.data_dir)
  logging.info(
    "Training digits: %d from %s", len(digits.labels_N), digits.source
  )
  return digits


@functools.lru_cache(maxsize=4)
def _patch_source(source, layout, data_dir, rule, num_frames, size, stamp):
  del stamp  # only a cache key: the files as they are now
  return patches.make_source(
    source,
    rule=rule,
    num_frames=num_frames,
    patch_size=size,
    layout=layout,
    data_dir=data_dir,
  )


def patch_source(config) -> patches.PatchSource:
  """The config's patch videos, split, with training statistics (cached)."""
  d = config.data
  rule = splits.Rule(
    d.split,
    d.valid_fraction,
    d.test_fraction,
    d.split_gap_frames,
    d.split_at_cuts,
  )
  return _patch_source(
    d.patch_source,
    d.layout,
    d.data_dir,
    rule,
    num_frames(config),
    d.image_size,
    videos_lib.stamp(d.patch_source),
  )


def load_train_source(config):
  """What training batches are cut from: digits, or patch videos."""
  if config.data.dataset == "patches":
    source = patch_source(config)
    logging.info("Patch source: %s", source.description)
    logging.info("Patch split: %s", splits.summary(source.record))
    return source
  return load_train_digits(config)


def describe(source) -> str:
  return (
    source.description if hasattr(source, "description") else (source.source)
  )


def num_frames(config) -> int:
  """Frames per sequence: the inputs, then the future (if predicted)."""
  names = models.DECODER_SETS[config.model.decoders]
  future = config.model.num_future if "future" in names else 0
  return config.data.num_input_frames + future


def to_unit(frames: np.ndarray) -> np.ndarray:
  """float32 frames in [0, 1] from uint8 or float frames."""
  if frames.dtype == np.uint8:
    return frames.astype(np.float32) / 255.0
  return frames.astype(np.float32)


def model_frames(config, frames: np.ndarray, stats=None) -> np.ndarray:
  """What the model reads from pixel frames: [0, 1] for Moving MNIST,
  normalised per channel (`stats`, else the source's) for patches."""
  if config.data.dataset != "patches":
    return to_unit(frames)
  return (stats or patch_source(config).stats).normalise(frames)


def split_frames(config, frames_BxNxHxW: np.ndarray):
  """(inputs_BxTxD, future_BxKxD) from sequences of frames, flattened."""
  B, N = frames_BxNxHxW.shape[:2]
  flat = frames_BxNxHxW.reshape(B, N, -1)
  T = config.data.num_input_frames
  return flat[:, :T], flat[:, T:]


def check_values(array: np.ndarray, what: str, binary: bool) -> None:
  """Finite, and within [0, 1] for binary outputs (uint8: 0..255)."""
  if array.dtype == np.uint8:
    return
  if array.dtype.kind != "f":
    raise DataError(
      f"{what} has dtype {array.dtype}; expected uint8 or floating point."
    )
  finite = np.isfinite(array)
  if not finite.all():
    first = tuple(int(i) for i in np.argwhere(~finite)[0])
    raise DataError(
      f"{what} holds {array[first]} at index {first}; every value must be "
      "finite."
    )
  if binary and array.size and (array.min() < 0 or array.max() > 1):
    raise DataError(
      f"{what} spans [{array.min():g}, {array.max():g}]; binary outputs "
      "(config.model.output='binary') need frames in [0, 1]."
    )


def check_batch(config, inputs_BxTxD, future_BxKxD, what: str) -> None:
  """Raises DataError unless a batch is what the model expects."""
  B, T = config.train.batch_size, config.data.num_input_frames
  K = num_frames(config) - T
  for name, array, length in (
    ("inputs", inputs_BxTxD, T),
    ("future", future_BxKxD, K),
  ):
    array = np.asarray(array)
    if array.ndim != 3 or array.shape[:2] != (B, length):
      raise DataError(
        f"{what}: {name} has shape {array.shape}; expected ({B}, {length}, D)."
      )
    check_values(array, f"{what}: {name}", config.model.output == "binary")


def check_sequences(config, frames, what: str) -> None:
  """Raises DataError unless `frames` are (N, >= T + K, H, W[, 3]) sequences
  of the config's frame size, uint8 or float, finite, in range."""
  frames = np.asarray(frames)
  size = config.data.image_size
  tail = (size, size)
  if config.data.dataset == "patches":
    tail = (size, size, patch_source(config).channels)
  need = num_frames(config)
  if (
    frames.ndim != 2 + len(tail)
    or frames.shape[2:] != tail
    or frames.shape[1] < need
  ):
    expected = ", ".join(["N", f">= {need}", *map(str, tail)])
    raise DataError(f"{what} has shape {frames.shape}; expected ({expected}).")
  if len(frames) < 1:
    raise DataError(f"{what} holds no sequences.")
  check_values(frames, what, config.model.output == "binary")


def generator_options(config) -> dict:
  d = config.data
  return dict(
    num_frames=num_frames(config),
    num_digits=d.num_digits,
    image_size=d.image_size,
    step_length=d.step_length,
    bounce=d.bounce,
  )


def _patch_batch(config, source, stream: str, index: int, batch_size: int):
  """Raw crops of `stream`'s windows (pixels, as the videos hold them)."""
  return patches.patch_crops(
    config.seed if stream == "train" else test_sets.TEST_SEED,
    batch_size,
    num_frames=num_frames(config),
    patch_size=config.data.image_size,
    source=source,
    stream=stream,
    index=index,
  )


def train_batch(config, digits, step: int, rows: slice | None = None):
  """The training batch of `step`: the same on every run and machine; with
  `rows`, only those of its sequences (a process's part of the batch)."""
  if config.data.dataset == "patches":
    frames = _patch_batch(
      config, digits, "train", step, config.train.batch_size
    )  # crops are cheap: cut for the whole batch, then the rows kept
    frames = frames if rows is None else frames[rows]
    return split_frames(config, digits.stats.normalise(frames))
  frames = moving_mnist.generate(
    digits,
    config.seed,
    config.train.batch_size,
    stream="train",
    index=step,
    rows=rows,
    **generator_options(config),
  )
  return split_frames(config, frames)


def eval_sequences(config, split: str) -> np.ndarray:
  """A fixed evaluation set of pixels: uint8 (N, T + K, H, W) made once
  and cached for Moving MNIST; (N, T + K, P, P, C) crops for patches.

  "valid": held-out training digits or validation windows; "test": test
  digits or windows, or the field's test set when `config.eval.mnist_test_seq`
  names one; "mnist_test_seq": all of that set.
  """
  if split == "mnist_test_seq":
    return field_test_set(config)
  if split == "test" and config.eval.mnist_test_seq:
    return field_test_set(config, config.eval.num_test_sequences)
  count = {
    "valid": config.eval.num_valid_sequences,
    "test": config.eval.num_test_sequences,
  }[split]
  if config.data.dataset == "patches":
    # A fixed set: batches 0, 1, ... of the split's own windows, seed 42.
    source = patch_source(config)
    B = config.eval.batch_size
    chunks = [
      _patch_batch(config, source, split, i, B)
      for i in range((count + B - 1) // B)
    ]
    frames = np.concatenate(chunks)[:count]
    check_sequences(config, frames, f"The {split} set of {source.description}")
    return frames
  return test_sets.fixed_test_set(
    count,
    split=split,
    source=config.data.source,
    data_dir=config.data.data_dir,
    cache_dir=config.data.data_dir,
    **generator_options(config),
  )


def field_test_set(config, count: int | None = None) -> np.ndarray:
  """uint8 (N, T + K, 64, 64): the standard Moving MNIST test set that later
  papers report on, `config.eval.mnist_test_seq` ("tfds": TFDS moving_mnist
  in `config.data.data_dir`; else a path to mnist_test_seq.npy); its first
  `count` sequences (None: all 10,000)."""
  where = config.eval.mnist_test_seq
  if where == "tfds":
    frames = test_sets.load_tfds_moving_mnist(
      config.data.data_dir, num_sequences=count, as_float=False
    )
    where = f"TFDS moving_mnist in {config.data.data_dir}"
  else:
    frames = test_sets.load_mnist_test_seq(
      where, num_sequences=count, as_float=False
    )
  check_sequences(config, frames, where)
  return frames[:, : num_frames(config)]


def eval_set_name(config, split: str, count: int) -> str:
  """Which sequences `eval_sequences(config, split)` holds, in words, for
  results and tables."""
  field = split == "mnist_test_seq" or (
    split == "test" and config.eval.mnist_test_seq
  )
  if field:
    where = config.eval.mnist_test_seq
    name = "TFDS moving_mnist" if where == "tfds" else os.path.basename(where)
    return f"the field's test set {name}, its first {count:,} sequences"
  if config.data.dataset == "patches":
    return f"{count:,} {split} windows of {describe(patch_source(config))}"
  return f"our generated {split} set of {count:,} sequences of {split} digits"

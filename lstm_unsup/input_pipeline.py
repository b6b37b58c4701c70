"""Batches for training and evaluation, shaped for the models.

Training batches are generated on the fly from training digits, each a pure
function of (seed, step). Validation and test sequences are fixed sets made
from test digits (or the standard `mnist_test_seq.npy`). Frames reach the
model flattened: `inputs_BxTxD` (the first T frames) and `future_BxKxD` (the
K frames after them).
"""

import numpy as np
from absl import logging

from lstm_unsup import models
from lstm_unsup.data import digits as digits_lib
from lstm_unsup.data import moving_mnist, test_sets


def load_train_digits(config) -> digits_lib.Digits:
  d = config.data
  digits = digits_lib.load_digits(d.source, "train", d.data_dir)
  logging.info(
    "Training digits: %d from %s", len(digits.labels_N), digits.source
  )
  return digits


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


def split_frames(config, frames_BxNxHxW: np.ndarray):
  """(inputs_BxTxD, future_BxKxD) from sequences of frames, flattened."""
  B, N = frames_BxNxHxW.shape[:2]
  flat = frames_BxNxHxW.reshape(B, N, -1)
  T = config.data.num_input_frames
  return flat[:, :T], flat[:, T:]


def generator_options(config) -> dict:
  d = config.data
  return dict(
    num_frames=num_frames(config),
    num_digits=d.num_digits,
    image_size=d.image_size,
    step_length=d.step_length,
    bounce=d.bounce,
  )


def train_batch(config, digits, step: int):
  """The training batch of `step`: the same on every run and machine."""
  frames = moving_mnist.generate(
    digits,
    config.seed,
    config.train.batch_size,
    stream="train",
    index=step,
    **generator_options(config),
  )
  return split_frames(config, frames)


def eval_sequences(config, split: str) -> np.ndarray:
  """A fixed evaluation set, uint8 (N, T + K, H, W), made once and cached.

  "valid": held-out training digits; "test": test digits; "mnist_test_seq":
  the standard file at `config.eval.mnist_test_seq`.
  """
  if split == "mnist_test_seq":
    frames = test_sets.load_mnist_test_seq(
      config.eval.mnist_test_seq, as_float=False
    )
    return frames[:, : num_frames(config)]
  count = {
    "valid": config.eval.num_valid_sequences,
    "test": config.eval.num_test_sequences,
  }[split]
  return test_sets.fixed_test_set(
    count,
    split=split,
    source=config.data.source,
    data_dir=config.data.data_dir,
    cache_dir=config.data.data_dir,
    **generator_options(config),
  )

"""Batches for training and evaluation, shaped for the models.

Training batches are generated on the fly, each a pure function of (seed,
step): Moving MNIST from training digits, or natural-image patches. Moving
MNIST validation and test sequences are fixed sets made from held-out and
test digits (or the standard `mnist_test_seq.npy`). Frames reach the model
flattened: `inputs_BxTxD` (the first T frames) and `future_BxKxD` (the K
frames after them).
"""

import numpy as np
from absl import logging

from lstm_unsup import models
from lstm_unsup.data import digits as digits_lib
from lstm_unsup.data import moving_mnist, patches, test_sets


def load_train_digits(config) -> digits_lib.Digits:
  d = config.data
  digits = digits_lib.load_digits(d.source, "train", d.data_dir)
  logging.info(
    "Training digits: %d from %s", len(digits.labels_N), digits.source
  )
  return digits


def load_train_source(config):
  """What training batches are cut from: digits, or patch videos."""
  if config.data.dataset == "patches":
    source = patches.make_source(config.data.patch_source)
    logging.info("Patch source: %s", source.description)
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


def _patch_batch(config, source, stream: str, index: int, batch_size: int):
  frames, _ = patches.patch_sequences(
    config.seed if stream == "train" else test_sets.TEST_SEED,
    batch_size,
    num_frames=num_frames(config),
    patch_size=config.data.image_size,
    source=source,
    stream=stream,
    index=index,
  )
  return frames


def train_batch(config, digits, step: int):
  """The training batch of `step`: the same on every run and machine."""
  if config.data.dataset == "patches":
    frames = _patch_batch(
      config, digits, "train", step, config.train.batch_size
    )
    return split_frames(config, frames)
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
  if config.data.dataset == "patches":
    # A fixed set: batches 0, 1, ... of the split's own stream, seed 42.
    source = patches.make_source(config.data.patch_source)
    B = config.eval.batch_size
    chunks = [
      _patch_batch(config, source, split, i, B)
      for i in range((count + B - 1) // B)
    ]
    return np.concatenate(chunks)[:count]
  return test_sets.fixed_test_set(
    count,
    split=split,
    source=config.data.source,
    data_dir=config.data.data_dir,
    cache_dir=config.data.data_dir,
    **generator_options(config),
  )

"""Fixed evaluation sets: cached Moving MNIST sequences and the public files.

  fixed_test_set()        10,000 sequences from *test* digits, stream "test",
                          seed TEST_SEED. The paper's test protocol.
  fixed_validation_set()  1,000 sequences from *valid* digits (training
                          digits held out of the training pool), stream
                          "valid". The trainer evaluates on it during
                          training and on the test set once at the end, so
                          neither training nor model selection sees a test
                          digit.

Both are generated once, in chunks of CHUNK sequences (batch i of the stream
is `generate(..., index=i)`, so the first n sequences of a bigger set are
the set of n), and cached as uint8 .npy under `cache_dir` with every
parameter in the file name, each with its SHA-256 beside it
(`<name>.npy.sha256`, checked on every load). A deleted cache, or one that
fails its checksum or has none, is regenerated identically (with a warning).
uint8 is exact for MNIST, whose pixels are k/255; `to_float` gives the
model's float32 in [0, 1]. The digit source is in the name too: a set made
from the 1,000 offline test digits is not the set made from MNIST's 10,000,
and numbers on the two are not comparable.

Also here: `load_mnist_test_seq` reads the public mnist_test_seq.npy, and
`load_tfds_moving_mnist` reads TFDS `moving_mnist` (needs TensorFlow).
"""

import os
from pathlib import Path

import numpy as np
from absl import logging

from lstm_unsup.data import checksums
from lstm_unsup.data.digits import (
  DEFAULT_DATA_DIR,
  check_download_possible,
  load_digits,
)
from lstm_unsup.data.errors import DataError
from lstm_unsup.data.moving_mnist import BOUNCES, generate

TEST_SEED = 42  # the authors' global seed (lstm_combo.py)
CHUNK = 100  # sequences per generate() call: part of a set's definition
FORMAT_VERSION = 1
MNIST_TEST_SEQ_SHAPE = (20, 10000, 64, 64)  # time-major, uint8
MNIST_TEST_SEQ_URL = "http://www.cs.toronto.edu/~nitish/unsupervised_video/"


def to_float(frames_uint8: np.ndarray) -> np.ndarray:
  """uint8 frames to float32 in [0, 1] (exactly the generator's values)."""
  return np.asarray(frames_uint8).astype(np.float32) / np.float32(255)


def cache_name(split: str, digits_kind: str, num_sequences: int, **p) -> str:
  """The cache file name: every parameter that changes the sequences."""
  H, W = p["image_size"]
  speed = p["speed_range"]
  motion = (
    f"step{p['step_length']:g}"
    if speed is None
    else f"speed{speed[0]:g}-{speed[1]:g}"
  )
  return (
    f"moving_mnist_{split}_{digits_kind}_n{num_sequences}_t{p['num_frames']}"
    f"_{H}x{W}_d{p['num_digits']}_{motion}_{p['bounce']}_seed{p['seed']}"
    f"_v{FORMAT_VERSION}.npy"
  )


def fixed_test_set(
  num_sequences: int = 10000,
  *,
  source: str = "auto",
  data_dir: str | None = None,
  cache_dir: str | Path | None = None,
  split: str = "test",
  seed: int = TEST_SEED,
  num_frames: int = 20,
  num_digits: int = 2,
  image_size: int | tuple[int, int] = 64,
  step_length: float = 0.1,
  bounce: str = "authors",
  speed_range: tuple[float, float] | None = None,
) -> np.ndarray:
  """The fixed set of `split` digits: uint8 (N, T, H, W), read-only.

  Loaded from the cache under `cache_dir` (default data/; memory-mapped),
  or generated and cached there first.
  """
  if split not in ("valid", "test"):
    raise ValueError(f"Fixed sets use valid or test digits, not {split!r}.")
  if num_sequences < 1:
    raise ValueError(f"num_sequences must be >= 1; got {num_sequences}.")
  if bounce not in BOUNCES:
    raise ValueError(f"Unknown bounce {bounce!r}; choose one of {BOUNCES}.")
  size = (image_size, image_size) if np.isscalar(image_size) else image_size
  params = dict(
    seed=seed,
    num_frames=num_frames,
    num_digits=num_digits,
    image_size=tuple(size),
    step_length=step_length,
    bounce=bounce,
    speed_range=speed_range,
  )
  digits = load_digits(source, split, data_dir)
  path = Path(cache_dir or DEFAULT_DATA_DIR) / cache_name(
    split, digits.kind, num_sequences, **params
  )
  shape = (num_sequences, num_frames) + tuple(size)
  if path.exists():
    problem = _cache_problem(path, shape)
    if problem is None:
      logging.info("Loaded %s set %s (%s)", split, path, digits.source)
      return np.load(path, mmap_mode="r")
    logging.warning("%s; regenerating it.", problem)
  _write_set(path, digits, shape, params, split)
  logging.info("Wrote %s set %s (%s)", split, path, digits.source)
  return np.load(path, mmap_mode="r")


def _write_set(path: Path, digits, shape, params, split: str) -> None:
  """Generates chunk by chunk into a temporary file, then renames it."""
  path.parent.mkdir(parents=True, exist_ok=True)
  partial = path.with_name(path.name + f".partial{os.getpid()}")
  options = dict(params, stream=split)
  seed = options.pop("seed")
  try:  # interrupted (Ctrl-C) or failed: no half-made set is left behind
    out = np.lib.format.open_memmap(partial, "w+", np.uint8, shape)
    for index, first in enumerate(range(0, shape[0], CHUNK)):
      frames = generate(digits, seed, CHUNK, index=index, **options)
      count = min(CHUNK, shape[0] - first)
      out[first : first + count] = np.rint(frames[:count] * 255)
    out.flush()
    del out
    checksums.write(checksums.sidecar(path), {path.name: partial})
  except BaseException:
    partial.unlink(missing_ok=True)
    raise
  os.replace(partial, path)


def _cache_problem(path: Path, shape: tuple[int, ...]) -> str | None:
  """None if the cache at `path` is whole: the right header and the bytes
  its checksum (written with it) records; else what is wrong with it."""
  try:
    frames = _load_npy(path)
  except DataError as e:
    return str(e)
  if frames.shape != shape or frames.dtype != np.uint8:
    return f"{path} holds {frames.dtype} {frames.shape}, not uint8 {shape}"
  if not checksums.sidecar(path).exists():
    return (
      f"{path} has no checksum beside it (made before checksums, or its "
      "writing was cut short), so it is unverified"
    )
  return checksums.mismatch(checksums.sidecar(path), {path.name: path})


def _load_npy(path: Path) -> np.ndarray:
  """A memory-mapped .npy array, or a DataError if it cannot be one."""
  try:
    frames = np.load(path, mmap_mode="r")
  except (ValueError, OSError, EOFError) as e:  # truncated, or pickled
    raise DataError(f"{path} cannot be read as a .npy array ({e}).") from e
  if not isinstance(frames, np.ndarray):  # e.g. an .npz archive
    raise DataError(f"{path} holds {type(frames).__name__}, not one array.")
  return frames


def fixed_validation_set(num_sequences: int = 1000, **kwargs) -> np.ndarray:
  """The fixed validation set: held-out training digits, stream "valid"."""
  return fixed_test_set(num_sequences, split="valid", **kwargs)


def load_mnist_test_seq(
  path: str | Path,
  *,
  num_sequences: int | None = None,
  as_float: bool = True,
) -> np.ndarray:
  """The public Moving MNIST test file as batch-major (B, 20, 64, 64).

  mnist_test_seq.npy holds uint8 of shape (20, 10000, 64, 64), time first.
  Returns float32 in [0, 1] (all of it is 3.3 GB; `num_sequences` takes the
  first ones) or, with `as_float=False`, a uint8 memory-mapped view.
  """
  path = Path(path)
  if not path.exists():
    raise FileNotFoundError(
      f"{path} not found. Download mnist_test_seq.npy from "
      f"{MNIST_TEST_SEQ_URL} and put it in data/."
    )
  try:
    frames = _load_npy(path)
  except DataError as e:
    raise DataError(
      f"{e} Download mnist_test_seq.npy again from {MNIST_TEST_SEQ_URL}."
    ) from e
  if frames.shape != MNIST_TEST_SEQ_SHAPE or frames.dtype != np.uint8:
    hint = ""
    if frames.shape == (10000, 20, 64, 64):
      hint = " It looks batch-major; the standard file is time-major."
    raise DataError(
      f"{path}: expected the standard Moving MNIST test file, uint8 of shape "
      f"{MNIST_TEST_SEQ_SHAPE} (time, sequence, height, width); found "
      f"{frames.dtype} of shape {frames.shape}.{hint}"
    )
  sequences = frames.transpose(1, 0, 2, 3)[:num_sequences]
  return to_float(sequences) if as_float else sequences


def load_tfds_moving_mnist(
  data_dir: str | None = None,
  *,
  download: bool = False,
  num_sequences: int | None = None,
  as_float: bool = True,
) -> np.ndarray:
  """TFDS `moving_mnist` (its only split, test) as (B, 20, 64, 64).

  Read by random access (`as_data_source`) where the set was prepared as
  array_record, else through `tfds.load`. TFDS registers moving_mnist only
  with TensorFlow installed; without it, use `load_mnist_test_seq` on the
  .npy file.
  """
  import tensorflow_datasets as tfds

  try:
    builder = tfds.builder("moving_mnist", data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise ImportError(
      "TFDS moving_mnist needs TensorFlow (pip install tensorflow), which "
      "TFDS builds it with. Without it, download mnist_test_seq.npy from "
      f"{MNIST_TEST_SEQ_URL} into data/ and use load_mnist_test_seq."
    ) from e
  if download and not builder.is_prepared():
    check_download_possible(
      "TFDS moving_mnist",
      host=("www.cs.toronto.edu", 80),
      how_to=f"Download mnist_test_seq.npy from {MNIST_TEST_SEQ_URL} on a "
      "networked machine, put it in data/ and use load_mnist_test_seq.",
    )
    builder.download_and_prepare()
  try:
    source = builder.as_data_source(split="test")
  except NotImplementedError:  # prepared as TFRecords: TensorFlow reads it
    data = tfds.as_numpy(builder.as_dataset(split="test", batch_size=-1))
    sequences = data["image_sequence"][:num_sequences, ..., 0]
  else:
    count = len(source) if num_sequences is None else num_sequences
    count = min(count, len(source))
    sequences = np.stack(
      [np.asarray(source[i]["image_sequence"]) for i in range(count)]
    )[..., 0]  # B, T, H, W: the one channel dropped
  return to_float(sequences) if as_float else sequences

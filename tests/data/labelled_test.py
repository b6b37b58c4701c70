"""Tests of the labelled videos: the Moving MNIST task and percept files."""

import numpy as np
import pytest

from lstm_unsup.data import digits as digits_lib
from lstm_unsup.data import labelled


@pytest.fixture(scope="module")
def pools():
  return {s: digits_lib.load_digits("offline", s) for s in ("train", "test")}


def _videos(pools, split="train", per_class=3, **kwargs):
  kwargs = {"num_frames": 12, "image_size": 48, "step_length": 0.08} | kwargs
  return labelled.moving_digit_videos(pools[split], per_class, 0, **kwargs)


def test_classes_are_digit_times_direction_and_balanced(pools):
  videos = _videos(pools)
  assert videos.num_classes == 40 and len(videos) == 120
  np.testing.assert_array_equal(np.bincount(videos.labels_N), [3] * 40)
  assert videos.class_names[4 * 7 + 2] == "7 up-left"
  frames = videos.features(np.arange(len(videos)))
  assert frames.shape == (120, 12, 48 * 48) and frames.dtype == np.float32
  assert 0 <= frames.min() and frames.max() <= 1
  # The digit shown is of the class's digit, from the split's own pool.
  ids = videos.info["digit_ids_N"]
  np.testing.assert_array_equal(
    pools["train"].labels_N[ids], videos.labels_N // 4
  )
  few = _videos(pools, digit_classes=(3, 5))
  assert few.num_classes == 8 and few.class_names[4] == "5 down-right"
  assert set(pools["train"].labels_N[few.info["digit_ids_N"]]) == {3, 5}


def test_train_and_test_videos_use_their_own_digits(pools):
  for split in ("train", "test"):
    videos = _videos(pools, split, per_class=1)
    first = videos.features(np.arange(len(videos)))[:, 0].reshape(-1, 48, 48)
    pos = videos.info["positions_NxTx2"][:, 0]
    for n in range(0, 40, 7):  # the pasted digit is the pool's image
      r, c = pos[n]
      image = pools[split].images_Nx28x28[videos.info["digit_ids_N"][n]]
      np.testing.assert_array_equal(first[n, r : r + 28, c : c + 28], image)
  assert "test digits" in _videos(pools, "test").description


def test_motion_is_straight_inside_the_frame_and_in_the_quadrant(pools):
  videos = _videos(
    pools, per_class=5, image_size=64, num_frames=24, step_length=0.04
  )
  pos = videos.info["positions_NxTx2"]
  assert pos.min() >= 0 and pos.max() <= 64 - 28  # never at a wall's far side
  np.testing.assert_array_equal(
    labelled.motion_quadrant(pos), videos.labels_N % 4
  )
  steps = np.diff(pos, axis=1)  # constant velocity, up to flooring
  assert np.all(np.ptp(steps, axis=1) <= 1)
  # The margin keeps both components moving: every video moves > 5 px on each
  # axis (sin 10 deg * 0.04 * 23 frames * 36 px = 5.75).
  assert np.abs(pos[:, -1] - pos[:, 0]).min() >= 5


def test_a_reversed_video_is_a_possible_video_of_the_opposite_quadrant():
  # The argument behind the 50% ceiling of order-blind models: backwards,
  # a clip is a straight in-frame line with the opposite velocity, whose
  # start is drawn from the same (uniform) box.
  rng = np.random.default_rng(0)
  q = np.repeat(np.arange(4), 2000)
  unit = labelled.straight_trajectories(rng, q, 24, 0.04, 10.0)
  backwards = unit[:, ::-1]
  np.testing.assert_array_equal(
    labelled.motion_quadrant(backwards), (q + 2) % 4
  )
  assert backwards.min() >= 0 and backwards.max() <= 1
  # Same distribution of shown positions: the frames of quadrant 0 played
  # backwards are distributed as the frames of quadrant 2.
  forward_q2 = unit[q == 2].reshape(-1, 2)
  backward_q0 = backwards[q == 0].reshape(-1, 2)
  np.testing.assert_allclose(forward_q2.mean(0), backward_q0.mean(0), atol=0.02)
  np.testing.assert_allclose(forward_q2.std(0), backward_q0.std(0), atol=0.02)
  assert labelled.ORDER_BLIND_CEILING == 0.5


def test_bad_task_settings_are_refused(pools):
  with pytest.raises(ValueError, match="leaves the frame"):
    _videos(pools, step_length=0.2)
  with pytest.raises(ValueError, match="margin_degrees"):
    _videos(pools, margin_degrees=45)
  with pytest.raises(ValueError, match="per_class"):
    _videos(pools, per_class=0)


def test_take_per_class_draws_subsets(pools):
  videos = _videos(pools, per_class=5)
  a = labelled.take_per_class(videos, 2, seed=0)
  b = labelled.take_per_class(videos, 2, seed=1)
  np.testing.assert_array_equal(np.bincount(a.labels_N), [2] * 40)
  assert not np.array_equal(a.rows_N, b.rows_N)
  np.testing.assert_array_equal(
    a.features([0, 1]), videos.features(a.rows_N[:2])
  )
  with pytest.raises(ValueError, match="cannot take 6 per class"):
    labelled.take_per_class(videos, 6, seed=0)


# ----------------------------------------------------------------------------
# Percept files.


def _percepts(N=10, T=5, D=3):
  rng = np.random.default_rng(0)
  return {
    "features": rng.normal(size=(N, T, D)).astype(np.float32),
    "labels": np.arange(N) % 3,
    "split": np.array(["train", "test"] * (N // 2)),
    "lengths": np.full(N, T) - np.arange(N) % 2,
  }


@pytest.mark.parametrize("layout", ["npz", "npy"])
def test_percepts_load_from_npz_or_a_folder_of_npy(tmp_path, layout):
  arrays = _percepts()
  if layout == "npz":
    path = str(tmp_path / "percepts.npz")
    np.savez(path, **arrays)
  else:
    path = str(tmp_path)
    for key, value in arrays.items():
      np.save(tmp_path / f"{key}.npy", value)
  sets = labelled.load_percepts(path)
  assert set(sets) == {"train", "test"}
  train = sets["train"]
  assert len(train) == 5 and train.num_classes == 3 and train.feature_dim == 3
  np.testing.assert_array_equal(train.labels_N, arrays["labels"][::2])
  np.testing.assert_array_equal(train.lengths_N, arrays["lengths"][::2])
  np.testing.assert_array_equal(
    train.features([3, 1]), arrays["features"][[6, 2]]
  )
  assert sets["test"].features([0]).dtype == np.float32


def test_percepts_accept_integer_splits_and_default_lengths(tmp_path):
  arrays = _percepts()
  del arrays["lengths"]
  arrays["split"] = np.array([0, 2] * 5)
  np.savez(tmp_path / "p.npz", **arrays)
  sets = labelled.load_percepts(str(tmp_path / "p.npz"))
  np.testing.assert_array_equal(sets["test"].lengths_N, [5] * 5)


@pytest.mark.parametrize(
  "change, message",
  [
    ({"features": np.zeros((10, 5))}, "features must be N x T x D"),
    ({"labels": np.zeros(9, int)}, "labels must be 10 integers"),
    ({"labels": np.zeros(10)}, "labels must be 10 integers"),
    ({"labels": -np.ones(10, int)}, "labels must be >= 0"),
    ({"split": np.array(["train"] * 9)}, "split must hold 10"),
    ({"split": np.array(["train", "tset"] * 5)}, "unknown split names"),
    ({"split": np.array([0, 3] * 5)}, "integer splits"),
    ({"split": np.array(["train"] * 10)}, "no videos in the 'test'"),
    ({"lengths": np.full(10, 6)}, r"lengths must be 10 integers in \[1, 5\]"),
    ({"features": None}, r"missing \['features'\]"),
  ],
)
def test_bad_percept_files_say_what_is_wrong(tmp_path, change, message):
  arrays = _percepts() | change
  arrays = {k: v for k, v in arrays.items() if v is not None}
  np.savez(tmp_path / "p.npz", **arrays)
  with pytest.raises(ValueError, match=message):
    labelled.load_percepts(str(tmp_path / "p.npz"))
  with pytest.raises(FileNotFoundError, match="No percept data"):
    labelled.load_percepts(str(tmp_path / "absent.npz"))


def test_the_task_is_a_pure_function_of_its_seed(pools):
  a = _videos(pools, per_class=1).info["positions_NxTx2"]
  b = _videos(pools, per_class=1).info["positions_NxTx2"]
  np.testing.assert_array_equal(a, b)
  other = labelled.moving_digit_videos(
    pools["train"], 1, 1, num_frames=12, image_size=48, step_length=0.08
  )
  assert not np.array_equal(a, other.info["positions_NxTx2"])

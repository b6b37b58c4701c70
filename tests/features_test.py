"""The trained encoder as a feature extractor (features.py): encode, export,
layouts, patch runs and their recorded statistics."""

import json
import os

import numpy as np
import pytest

import lstm_unsup
from lstm_unsup import features, input_pipeline, train
from lstm_unsup.configs import patches
from lstm_unsup.data.errors import DataError
from lstm_unsup.run import opening, record


def test_encode_returns_the_encoder_final_state(quick_run):
  config, workdir = quick_run
  frames = input_pipeline.eval_sequences(config, "test")[:5]
  feats = lstm_unsup.encode(workdir, frames)
  assert feats.shape == (5, config.model.hidden * config.model.num_layers)
  _, model, params = opening.load_run(workdir)
  inputs, _ = input_pipeline.split_frames(
    config, input_pipeline.to_unit(frames)
  )
  carries = model.apply({"params": params}, inputs, method=model.encode)
  np.testing.assert_allclose(feats, carries[-1][1], rtol=1e-5, atol=1e-6)
  state = lstm_unsup.encode(workdir, frames, which="state")
  assert state.shape == (5, 2 * config.model.hidden)


def test_encode_rejects_videos_of_the_wrong_shape(quick_run):
  _, workdir = quick_run
  match = (
    r"Got videos of shape \(2, 10, 64, 64\); this run reads 4 or more "
    r"frames of 32x32 pixels with 1 channel\(s\)"
  )
  with pytest.raises(DataError, match=match):
    lstm_unsup.encode(workdir, np.zeros((2, 10, 64, 64), np.float32))


@pytest.mark.parametrize(
  "value, dtype, match",
  [
    (np.nan, np.float32, "must be finite"),
    (2.0, np.float32, r"must be finite and in \[0, 1\]"),
    (1, np.int32, "dtype int32; expected uint8, or float"),
  ],
)
def test_encode_rejects_bad_values(quick_run, value, dtype, match):
  config, workdir = quick_run
  size, T = config.data.image_size, config.data.num_input_frames
  frames = np.zeros((2, T, size, size), dtype)
  frames[0, 0, 0, 0] = value
  with pytest.raises(DataError, match=match):
    lstm_unsup.encode(workdir, frames)


def test_features_read_a_time_major_file_as_its_layout_says(
  quick_run, tmp_path
):
  config, workdir = quick_run
  frames = input_pipeline.eval_sequences(config, "test")  # (N, T, H, W)
  np.save(tmp_path / "tn.npy", frames.swapaxes(0, 1))  # as mnist_test_seq
  out = str(tmp_path / "f.npy")
  want = lstm_unsup.encode(workdir, frames)
  for layout in ("auto", "TN"):
    got, what = features.export(
      workdir, None, str(tmp_path / "tn.npy"), out, "h", layout
    )
    assert "time-major" in what
    np.testing.assert_allclose(got, want, rtol=1e-6)
  assert np.load(out).shape == (len(frames), config.model.hidden)


def _bouncing_squares(N=200, T=20, size=32, seed=0):
  """The issue's grey videos: a square bouncing in each, (N, T, H, W)."""
  rng = np.random.default_rng(seed)
  out = np.zeros((N, T, size, size), np.uint8)
  pos, vel = rng.uniform(0, size - 8, (N, 2)), rng.uniform(-2, 2, (N, 2))
  for t in range(T):
    for n, (r, c) in enumerate(pos.astype(int)):
      out[n, t, r : r + 8, c : c + 8] = 255
    pos += vel
    vel = np.where((pos < 0) | (pos > size - 8), -vel, vel)
    pos = np.clip(pos, 0, size - 8)
  return out


@pytest.fixture(scope="module")
def grey_patch_run(tmp_path_factory):
  root = tmp_path_factory.mktemp("grey")
  np.save(root / "squares.npy", _bouncing_squares())
  config = patches.get_config("quick")
  config.data.patch_source = str(root / "squares.npy")
  config.train.num_steps = 2
  train.train_and_evaluate(config, str(root / "run"))
  return config, str(root / "run"), root / "squares.npy"


def test_a_grey_video_file_trains_and_is_held_out_by_video(grey_patch_run):
  config, workdir, _ = grey_patch_run
  record = json.load(open(os.path.join(workdir, "data_split.json")))
  assert record["how"] == "video" and record["channels"] == 1
  names = {s: set(record[s]["windows"]) for s in ("train", "valid", "test")}
  assert (record["train"]["videos"], record["valid"]["videos"]) == (160, 20)
  assert not names["train"] & (names["valid"] | names["test"])
  assert not names["valid"] & names["test"]
  test = input_pipeline.eval_sequences(config, "test")
  assert test.shape == (16, 7, 8, 8, 1) and test.dtype == np.uint8


def test_features_of_patch_runs_on_their_own_splits_and_files(
  grey_patch_run, tmp_path
):
  config, workdir, squares = grey_patch_run
  out = str(tmp_path / "f.npy")
  for split in ("valid", "test"):
    got, _ = features.export(workdir, split, "", out, "h")
    assert got.shape == (16, config.model.hidden)
  with pytest.raises(DataError, match=r"8x8 pixels with 1 channel\(s\)"):
    features.export(workdir, None, str(squares), out, "h")  # 32x32 frames
  # Stats come from the run's data_split.json, fitted on training alone.
  stats = record.patch_stats(workdir)
  assert stats.mean_C.shape == (1,)
  test = input_pipeline.eval_sequences(config, "test")
  np.testing.assert_allclose(
    lstm_unsup.encode(workdir, test),
    lstm_unsup.encode(workdir, test[..., 0]),  # grey without its axis
  )


def test_the_shipped_clips_train_and_give_features(tmp_path):
  config = patches.get_config("quick")
  config.train.num_steps = 2
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  record = json.load(open(os.path.join(workdir, "data_split.json")))
  assert record["how"] == "time" and record["channels"] == 3
  got, what = features.export(workdir, "test", "", str(tmp_path / "f"), "state")
  assert got.shape == (16, 2 * config.model.hidden)


def test_the_output_is_where_it_says_and_a_missing_folder_is_refused_first(
  quick_run, tmp_path, monkeypatch
):
  _, workdir = quick_run
  got, _ = features.export(workdir, "test", "", str(tmp_path / "f"), "h")
  assert features.output_path(str(tmp_path / "f")) == str(tmp_path / "f.npy")
  np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), got)

  def no_encoding(*args, **kwargs):
    raise AssertionError("encoded before the output was checked")

  monkeypatch.setattr(features, "encode", no_encoding)
  missing = tmp_path / "missing" / "f.npy"
  with pytest.raises(FileNotFoundError, match="missing does not exist|make"):
    features.export(workdir, "test", "", str(missing), "h")


def _full_size(B=2, T=6, H=20, W=28, seed=1):
  """Grey uint8 videos larger than the quick patch run's 8x8 frames."""
  return np.random.default_rng(seed).integers(0, 256, (B, T, H, W), np.uint8)


def test_grid_crops_encode_every_tile_of_a_full_size_video(grey_patch_run):
  _, workdir, _ = grey_patch_run
  videos = _full_size()  # 20x28 frames: a 2x3 grid of 8x8 tiles
  feats = lstm_unsup.encode(workdir, videos, crops="grid")
  assert feats.shape == (2, 6, 32)  # (videos, tiles row-major, features)
  tiles = [
    videos[:, :, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8]
    for r in range(2)
    for c in range(3)
  ]
  by_hand = lstm_unsup.encode(workdir, np.concatenate(tiles))
  np.testing.assert_allclose(
    feats, by_hand.reshape(6, 2, 32).swapaxes(0, 1), rtol=1e-5, atol=1e-6
  )
  # The last 20 % 8 = 4 rows and 28 % 8 = 4 columns are not encoded.
  changed = videos.copy()
  changed[:, :, 16:], changed[:, :, :, 24:] = 0, 0
  np.testing.assert_array_equal(
    lstm_unsup.encode(workdir, changed, crops="grid"), feats
  )


def test_the_centre_crop_is_the_one_cut_by_hand(grey_patch_run):
  _, workdir, _ = grey_patch_run
  videos = _full_size(H=21, W=28)  # odd room: 13 rows, the top gets 6
  feats = lstm_unsup.encode(workdir, videos[..., None], crops="centre")
  assert feats.shape == (2, 1, 32)
  by_hand = lstm_unsup.encode(workdir, videos[:, :, 6:14, 10:18])
  np.testing.assert_allclose(feats[:, 0], by_hand, rtol=1e-5, atol=1e-6)


def test_random_crops_are_reproducible_with_their_seed(grey_patch_run):
  _, workdir, _ = grey_patch_run
  videos = _full_size()
  first, again, other = (
    lstm_unsup.encode(workdir, videos, crops="random", num_crops=5, seed=s)
    for s in (3, 3, 4)
  )
  assert first.shape == (2, 5, 32)
  np.testing.assert_array_equal(first, again)
  assert not np.allclose(first, other)
  # Each is the crop at the corner crop_corners gives, cut by hand.
  corners = features.crop_corners([(20, 28)] * 2, 8, "random", 5, seed=3)
  tiles = [
    videos[b, :, r : r + 8, c : c + 8] for b in range(2) for r, c in corners[b]
  ]
  by_hand = lstm_unsup.encode(workdir, np.stack(tiles))
  np.testing.assert_allclose(
    first.reshape(10, 32), by_hand, rtol=1e-5, atol=1e-6
  )


def test_large_frames_without_crops_name_the_flag_small_ones_stay_refused(
  grey_patch_run, tmp_path
):
  _, workdir, squares = grey_patch_run  # 32x32 frames for an 8x8 run
  out = str(tmp_path / "f.npy")
  with pytest.raises(DataError, match=r"give --crops=grid\|centre\|random"):
    features.export(workdir, None, str(squares), out, "h")
  with pytest.raises(DataError, match=r'crops="grid", "centre" or "random"'):
    lstm_unsup.encode(workdir, _full_size())
  for crops in (None, "grid"):  # smaller than 8x8 with or without crops
    with pytest.raises(DataError, match=r"\(2, 6, 6, 6\); this run reads") as e:
      lstm_unsup.encode(workdir, _full_size(H=6, W=6), crops=crops)
    assert "pass crops" not in str(e.value)
  feats, what = features.export(
    workdir, None, str(squares), out, "h", crops="grid"
  )
  assert feats.shape == (200, 16, 32) and np.load(out).shape == feats.shape
  assert "16 tiles of 8x8 per video (4 rows x 4 columns of tiles" in what


def test_grids_of_different_shapes_and_misused_crop_arguments_are_refused():
  videos = [np.zeros((4, 16, 24, 1)), np.zeros((4, 24, 16, 1))]  # 2x3, 3x2
  with pytest.raises(DataError, match=r"a\.mp4 makes a 2x3 grid .* b\.mp4 a"):
    features.cut_crops(videos, ["a.mp4", "b.mp4"], 8, "grid")
  centres = features.cut_crops(videos, ["a.mp4", "b.mp4"], 8, "centre")
  assert centres.shape == (2, 1, 4, 8, 8, 1)
  with pytest.raises(ValueError, match='only with crops="random"'):
    features.crop_corners([(16, 24)], 8, "grid", num_crops=3)
  with pytest.raises(ValueError, match="not one of"):
    features.crop_corners([(16, 24)], 8, "center")

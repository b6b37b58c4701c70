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

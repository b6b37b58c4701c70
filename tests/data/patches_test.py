"""Tests for the natural-image patch sequences (lstm_unsup/data/patches.py)."""

import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lstm_unsup.data import patches, splits
from lstm_unsup.data.errors import DataError, DataUnavailableError
from lstm_unsup.data.patches import make_source, patch_sequences


def _videos(num_videos=2, num_frames=12, size=40, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (num_videos, num_frames, size, size, 3), np.uint8)


def test_standin_shapes_normalisation_and_label():
  batch, stats = patch_sequences(0, 3, num_frames=6, source="standin")
  assert batch.shape == (3, 6, 32, 32, 3) and batch.dtype == np.float32
  assert np.isfinite(batch).all()
  source = make_source("standin")
  assert source.standin and "stand-in, not natural video" in source.description
  # The stats are those of the photos, in [0, 1] units.
  assert np.all((stats.mean_C > 0.2) & (stats.mean_C < 0.6))
  raw = stats.denormalise(batch)
  assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5


def test_standin_moves_smoothly():
  batch, stats = patch_sequences(1, 8, num_frames=10, source="standin")
  raw = stats.denormalise(batch)
  step = np.abs(np.diff(raw, axis=1)).mean()
  jump = np.abs(raw - raw[::-1]).mean()  # against other sequences
  assert 0 < step < 0.5 * jump  # frames change, but far less than a cut


@pytest.mark.parametrize("source", ["standin", "clips"])
def test_same_seed_same_batch(source):
  def batch(index=0):
    return patch_sequences(3, 2, num_frames=4, source=source, index=index)[0]

  np.testing.assert_array_equal(batch(), batch())
  assert not np.array_equal(batch(), batch(index=1))


def test_the_default_source_is_real_video_in_colour():
  source = make_source()
  assert not source.standin and source.channels == 3
  assert "real camera clips" in source.description
  assert [len(v) for v in source.videos] == [250, 120]
  batch, stats = patch_sequences(0, 4, num_frames=29)
  assert batch.shape == (4, 29, 32, 32, 3) and batch.dtype == np.float32
  # Video moves little from frame to frame, far less than across crops.
  raw = stats.denormalise(batch)
  assert (
    np.abs(np.diff(raw, axis=1)).mean() < 0.5 * np.abs(raw - raw[::-1]).mean()
  )


def _is_window_of(crop, videos):
  T, P = crop.shape[:2]
  for video in videos:
    for t0 in range(video.shape[0] - T + 1):
      for r in range(video.shape[1] - P + 1):
        for c in range(video.shape[2] - P + 1):
          window = video[t0 : t0 + T, r : r + P, c : c + P]
          if np.abs(window - crop).max() < 1e-5:
            return True
  return False


def test_array_source_crops_real_pixels():
  videos = _videos()
  source = make_source(videos, layout="NT")
  batch, stats = patch_sequences(0, 5, num_frames=8, source=source)
  units = videos.astype(np.float32) / 255
  for crop in stats.denormalise(batch):
    assert _is_window_of(crop, units)


def test_per_channel_normalisation_of_an_array_source():
  videos = _videos(num_videos=1, num_frames=30, size=32)
  videos[..., 0] //= 4  # a dark red channel
  source = make_source(videos, layout="NT")
  batch, stats = patch_sequences(0, 1, num_frames=30, source=source)
  units = videos.astype(np.float64) / 255
  np.testing.assert_allclose(stats.mean_C, units.mean((0, 1, 2, 3)), rtol=1e-5)
  np.testing.assert_allclose(stats.std_C, units.std((0, 1, 2, 3)), rtol=1e-4)
  # The crop is the whole video here, so it is normalised exactly.
  np.testing.assert_allclose(batch.mean((0, 1, 2, 3)), 0, atol=1e-4)
  np.testing.assert_allclose(batch.std((0, 1, 2, 3)), 1, atol=1e-3)


def test_grey_videos_give_one_channel_crops():
  videos = _videos(num_videos=3, num_frames=9)[..., 0]  # (N, T, H, W)
  source = make_source(videos, layout="NT")
  batch, stats = patch_sequences(0, 2, num_frames=9, source=source)
  assert source.channels == 1 and batch.shape == (2, 9, 32, 32, 1)
  assert stats.mean_C.shape == (1,)


def test_splits_crop_only_their_own_windows_and_fit_stats_on_training():
  # Six videos, each a constant brightness: a crop tells its video.
  levels = np.arange(6, dtype=np.uint8) * 40
  videos = np.broadcast_to(levels[:, None, None, None, None], (6, 8, 9, 9, 1))
  rule = splits.Rule(how="video", valid_fraction=0.2, test_fraction=0.2)
  source = make_source(videos, rule=rule, num_frames=5, layout="NT")
  seen = {}
  for split in splits.SPLITS:
    crops = patches.patch_crops(
      0, 64, num_frames=5, patch_size=4, source=source, stream=split
    )
    assert crops.dtype == np.uint8
    seen[split] = set(np.unique(crops))
    windows = {levels[w.video] for w in source.windows[split]}
    assert seen[split] == windows
  assert not seen["train"] & (seen["valid"] | seen["test"])
  train_levels = np.array(sorted(seen["train"])) / 255
  np.testing.assert_allclose(source.stats.mean_C, train_levels.mean(), 1e-5)


def test_stats_can_be_reused_across_sources():
  _, train_stats = patch_sequences(0, 1, num_frames=2, source="standin")
  batch, stats = patch_sequences(
    0,
    1,
    num_frames=2,
    source=make_source(_videos(), layout="NT"),
    stats=train_stats,
  )
  assert stats is train_stats


@pytest.mark.parametrize(
  "kwargs, error, message",
  [
    ({"source": np.zeros((4, 40, 40))}, DataError, r"expected \(N, T, H, W\)"),
    (
      {"source": make_source(_videos(num_frames=3), layout="NT")},
      DataError,
      r"has 3 frames; a sequence \(input and future frames\) needs 4",
    ),
    ({"batch_size": 0}, ValueError, ">= 1"),
    ({"source": "no/such/folder"}, DataUnavailableError, "No video file or"),
  ],
)
def test_bad_input_is_a_clear_error(kwargs, error, message):
  args = dict(seed=0, batch_size=2, num_frames=4)
  args.update(kwargs)
  with pytest.raises(error, match=message):
    patch_sequences(args.pop("seed"), args.pop("batch_size"), **args)


def test_noise_texture_fallback_looks_like_an_image():
  photo = patches._noise_photo(0)
  assert photo.shape == (427, 640, 3) and photo.dtype == np.uint8
  assert photo.min() == 0 and photo.max() == 255
  # 1/f noise is smooth: neighbours are far closer than random pixels.
  near = np.abs(np.diff(photo.astype(float), axis=1)).mean()
  far = np.abs(photo.astype(float) - photo[::-1, ::-1]).mean()
  assert near < 0.5 * far
  # Channels are correlated, as in photos.
  channels = photo.reshape(-1, 3).T.astype(float)
  assert np.corrcoef(channels)[0, 1:].min() > 0.5


# ----------------------------------------------------------------------------
# Through the command line: the README's example, and bad videos.

ROOT = Path(__file__).resolve().parents[2]


def _command(*args, cwd=ROOT):
  return subprocess.run(
    [sys.executable, "-m", *args],
    cwd=cwd,
    capture_output=True,
    text=True,
    timeout=300,
  )


def test_the_readme_own_video_example_runs_and_exports_features(tmp_path):
  readme = (ROOT / "README.md").read_text()
  section = readme.split("### Train on your own videos")[1]
  block = section.split("```bash\n")[1].split("```")[0]
  lines = [line.split("  #")[0] for line in block.strip().splitlines()]
  assert len(lines) == 3 and "(16, 32)" in section
  for line in lines:
    line = line.replace("my_videos", str(tmp_path / "videos"))
    line = line.replace("runs/mine", str(tmp_path / "run"))
    done = _command(*shlex.split(line)[2:])
    assert done.returncode == 0, done.stderr[-2000:]
  assert "Wrote features of shape (16, 32)" in done.stdout
  assert np.load(tmp_path / "run" / "features.npy").shape == (16, 32)


def _grey_and_colour(folder):
  folder.mkdir()
  for name, shape in (("a", (9, 12, 12)), ("b", (9, 12, 12, 3))):
    (folder / name).mkdir()
    for t, frame in enumerate(np.zeros(shape, np.uint8)):
      Image.fromarray(frame).save(folder / name / f"{t}.png")


def _frames(folder, T, size):
  (folder / "v").mkdir(parents=True)
  for t in range(T):
    Image.new("RGB", (size, size)).save(folder / "v" / f"{t:03d}.png")


@pytest.mark.parametrize(
  "name, make, message",
  [
    ("notes.txt", lambda p: p.write_text("hi"), "Bad data: {p} is not a video"),
    ("empty", lambda p: p.mkdir(), "Bad data: {p} holds no videos"),
    (
      "short",
      lambda p: _frames(p, 5, 12),
      "Bad data: {p}/v has 5 frames; a sequence (input and future frames) "
      "needs 7.",
    ),
    (
      "small",
      lambda p: _frames(p, 9, 6),
      "Bad data: {p}/v has frames of 6x6 pixels, smaller than the 8x8",
    ),
    ("mixed", _grey_and_colour, "Bad data: Videos differ in channels: {p}/a"),
    (
      "grey.npy",
      lambda p: np.save(p, np.zeros((200, 20, 32), np.uint8)),
      "Bad data: {p} has shape (200, 20, 32); expected (N, T, H, W) grey",
    ),
  ],
)
def test_bad_videos_end_in_one_line_and_leave_nothing(
  tmp_path, name, make, message
):
  path = tmp_path / name
  make(path)
  done = _command(
    "lstm_unsup.main",
    "--config=lstm_unsup/configs/patches.py:quick",
    f"--workdir={tmp_path / 'run'}",
    f"--config.data.patch_source={path}",
  )
  assert done.returncode == 1
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith(message.format(p=path)), last
  assert "Traceback" not in done.stderr
  assert not (tmp_path / "run").exists()

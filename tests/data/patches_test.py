"""Tests for the natural-image patch sequences (lstm_unsup/data/patches.py)."""

import numpy as np
import pytest
from PIL import Image

from lstm_unsup.data import patches
from lstm_unsup.data.patches import make_source, patch_sequences


def _videos(num_videos=2, num_frames=12, size=40, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (num_videos, num_frames, size, size, 3), np.uint8)


def test_standin_shapes_normalisation_and_label():
  batch, stats = patch_sequences(0, 3, num_frames=6)
  assert batch.shape == (3, 6, 32, 32, 3) and batch.dtype == np.float32
  assert np.isfinite(batch).all()
  source = make_source("standin")
  assert source.standin and "stand-in, not natural video" in source.description
  # The stats are those of the photos, in [0, 1] units.
  assert np.all((stats.mean_C > 0.2) & (stats.mean_C < 0.6))
  raw = stats.denormalise(batch)
  assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5


def test_standin_moves_smoothly():
  batch, stats = patch_sequences(1, 8, num_frames=10)
  raw = stats.denormalise(batch)
  step = np.abs(np.diff(raw, axis=1)).mean()
  jump = np.abs(raw - raw[::-1]).mean()  # against other sequences
  assert 0 < step < 0.5 * jump  # frames change, but far less than a cut


def test_same_seed_same_batch():
  a, _ = patch_sequences(3, 2, num_frames=4)
  np.testing.assert_array_equal(a, patch_sequences(3, 2, num_frames=4)[0])
  assert not np.array_equal(a, patch_sequences(3, 2, num_frames=4, index=1)[0])


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
  batch, stats = patch_sequences(0, 5, num_frames=8, source=videos)
  units = videos.astype(np.float32) / 255
  for crop in stats.denormalise(batch):
    assert _is_window_of(crop, units)


def test_per_channel_normalisation_of_an_array_source():
  videos = _videos(num_videos=1, num_frames=30, size=32)
  videos[..., 0] //= 4  # a dark red channel
  batch, stats = patch_sequences(0, 1, num_frames=30, source=videos)
  units = videos.astype(np.float64) / 255
  np.testing.assert_allclose(stats.mean_C, units.mean((0, 1, 2, 3)), rtol=1e-5)
  np.testing.assert_allclose(stats.std_C, units.std((0, 1, 2, 3)), rtol=1e-4)
  # The crop is the whole video here, so it is normalised exactly.
  np.testing.assert_allclose(batch.mean((0, 1, 2, 3)), 0, atol=1e-4)
  np.testing.assert_allclose(batch.std((0, 1, 2, 3)), 1, atol=1e-3)


def test_folder_of_frames_and_npy_sources(tmp_path):
  videos = _videos(num_videos=2, num_frames=5)
  for v, video in enumerate(videos):
    folder = tmp_path / "frames" / f"video{v}"
    folder.mkdir(parents=True)
    for t, frame in enumerate(video):
      Image.fromarray(frame).save(folder / f"{t:03d}.png")
  source = make_source(tmp_path / "frames")
  assert len(source.videos) == 2 and not source.standin
  np.testing.assert_array_equal(source.videos[1], videos[1])
  np.save(tmp_path / "videos.npy", videos)
  batch, _ = patch_sequences(0, 2, num_frames=5, source=tmp_path / "videos.npy")
  assert batch.shape == (2, 5, 32, 32, 3)


def test_stats_can_be_reused_across_sources():
  _, train_stats = patch_sequences(0, 1, num_frames=2)
  batch, stats = patch_sequences(
    0, 1, num_frames=2, source=_videos(), stats=train_stats
  )
  assert stats is train_stats


@pytest.mark.parametrize(
  "kwargs, error, message",
  [
    ({"source": np.zeros((4, 40, 40))}, ValueError, "colour video"),
    ({"source": _videos(num_frames=3)}, ValueError, "No video has"),
    ({"batch_size": 0}, ValueError, ">= 1"),
    ({"source": "no/such/folder"}, FileNotFoundError, "No .npy"),
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

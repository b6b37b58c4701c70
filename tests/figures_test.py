"""Figure 5's layout (figures.py): inputs, reconstruction, truth, prediction."""

import numpy as np
from PIL import Image, ImageDraw

from lstm_unsup import figures


def test_each_panel_shows_its_frames_where_the_layout_puts_them():
  B, T, K, H, W = 2, 3, 2, 8, 8
  inputs = np.zeros((B, T, H, W))
  inputs[1, 2] = 0.25  # the second sequence's last input is dark grey
  future = np.full((B, K, H, W, 3), 0.5)  # colour frames are kept
  image = figures.composite_figure(inputs, None, future, None, title="t")
  pixels = np.asarray(image)[:, figures.LABEL_WIDTH :]  # right of the labels
  assert pixels.shape[2] == 3 and pixels.shape[0] > B * 2 * H
  # The dark frame is there once, the 0.5-grey future frames B * K times,
  # each drawn `scale` times larger.
  s = figures.scale_factor(H, W)
  dark = np.all(pixels == figures.to_uint8(np.float32(0.25)), axis=-1)
  grey = np.all(pixels == figures.to_uint8(np.float32(0.5)), axis=-1)
  assert dark.sum() == s * H * s * W
  assert grey.sum() == B * K * s * H * s * W
  assert figures.to_uint8(np.array([-1.0, 0.5, 2.0])).tolist() == [0, 127, 255]


def _runs(mask_N: np.ndarray) -> list[tuple[int, int]]:
  """(start, stop) of each run of True in a 1-d mask."""
  edges = np.diff(np.concatenate([[0], mask_N.astype(int), [0]]))
  return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def test_small_frames_are_drawn_large_with_labels_that_do_not_overlap():
  B, T, K, H, W = 2, 4, 3, 8, 8  # a :quick patch run's figure
  colour = np.array([0.5, 0.75, 0.25])  # no text pixel is coloured
  recon = np.ones((B, T, H, W, 3)) * colour
  inputs, rest = recon.copy(), np.ones((B, K, H, W, 3)) * colour
  inputs[0, 1] = colour[::-1]  # one marked frame
  title = "2-layer composite, conditional future"
  image = figures.composite_figure(inputs, recon, rest, rest, title=title)
  pixels = np.asarray(image)
  marked = np.argwhere(np.all(pixels == (63, 191, 127), axis=-1))
  assert (marked.max(0) - marked.min(0) + 1).tolist() == [48, 48]
  frames = np.argwhere(np.all(pixels == (127, 191, 63), axis=-1))
  top, left = frames.min(0)
  # No label reaches into the frames: only they, their gaps and the
  # background are there.
  drawn = [(127, 191, 63), (63, 191, 127), (40, 40, 40), (255, 255, 255)]
  inside = pixels[top:, left:, None] == np.array(drawn)
  assert np.all(inside, axis=-1).any(axis=-1).all()
  text = np.any(pixels != 255, axis=-1)  # outside the frames: text
  text[top:, left:] = False
  title_width = ImageDraw.Draw(image).textlength(title)
  assert image.width >= title_width + 8
  # The title and each sequence's four labels are separate lines of text.
  lines = _runs(text.any(axis=1))
  assert len(lines) == 1 + 4 * B
  assert lines[0][1] <= top  # the title is above the frames


def test_large_frames_keep_their_size():
  B, T, H, W = 2, 10, 64, 64  # Moving MNIST: 10 in, 10 future
  frames = np.zeros((B, T, H, W))
  image = figures.composite_figure(frames, frames, frames, frames, title="t")
  assert figures.scale_factor(H, W) == 1
  # As before: labels, 2 x 10 frames and gaps wide; title, 2 x 2 rows high.
  assert image.size == (92 + T * 66 + 8 + T * 66, 16 + B * (2 * 66 + 6))


def test_a_figure_of_one_small_frame_is_as_wide_as_its_title(tmp_path):
  frames = np.full((1, 1, 8, 8), 0.5)
  title = "2-layer composite, conditional future"
  image = figures.composite_figure(frames, None, None, None, title=title)
  image.save(tmp_path / "f.png")
  with Image.open(tmp_path / "f.png") as saved:
    width, height = saved.size
  assert width >= ImageDraw.Draw(image).textlength(title) + 8
  assert height >= 16 + 2 * 48  # the title, then two rows of 48 pixels

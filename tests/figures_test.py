"""Figure 5's layout (figures.py): inputs, reconstruction, truth, prediction."""

import numpy as np

from lstm_unsup import figures


def test_each_panel_shows_its_frames_where_the_layout_puts_them():
  B, T, K, H, W = 2, 3, 2, 8, 8
  inputs = np.zeros((B, T, H, W))
  inputs[1, 2] = 0.25  # the second sequence's last input is dark grey
  future = np.full((B, K, H, W, 3), 0.5)  # colour frames are kept
  image = figures.composite_figure(inputs, None, future, None, title="t")
  pixels = np.asarray(image)[:, figures.LABEL_WIDTH :]  # right of the labels
  assert pixels.shape[2] == 3 and pixels.shape[0] > B * 2 * H
  # The dark frame is there once, the 0.5-grey future frames B * K times.
  dark = np.all(pixels == figures.to_uint8(np.float32(0.25)), axis=-1)
  grey = np.all(pixels == figures.to_uint8(np.float32(0.5)), axis=-1)
  assert dark.sum() == H * W
  assert grey.sum() == B * K * H * W
  assert figures.to_uint8(np.array([-1.0, 0.5, 2.0])).tolist() == [0, 127, 255]

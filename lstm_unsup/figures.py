"""Pictures of what a model sees and outputs, in the paper's Figure 5 layout.

For each sequence, two rows of frames:

  input frames          | future ground truth
  reconstruction (in    | future prediction
  time order)           |

so each reconstructed frame sits under the input frame it reconstructs and
each predicted frame under the frame it predicts. Frames smaller than
MIN_FRAME pixels (a `:quick` patch run's 8x8) are drawn an integer factor
larger, nearest-neighbour (`scale_factor`), so that each row is tall enough
for its two lines of labels; 64x64 Moving MNIST frames are drawn as they
are. The label column and the figure widen to fit their text.
"""

import numpy as np
from PIL import Image, ImageDraw

GAP = 2  # pixels between frames
LABEL_WIDTH = 92  # pixels of text on the left of each row, at least
MIN_FRAME = 48  # pixels: the shorter side of a frame as drawn, at least
LINE = 12  # pixels from one line of label text to the next
LABELS = (("input |", "future truth"), ("reconstr. |", "prediction"))


def scale_factor(H: int, W: int) -> int:
  """The integer factor that draws H x W frames at least MIN_FRAME pixels
  on their shorter side: 6 for 8x8, 2 for 32x32, 1 for 48x48 and up."""
  return max(1, -(-MIN_FRAME // min(H, W)))


def upscale(frames_NxHxWx3: np.ndarray, factor: int) -> np.ndarray:
  """Each pixel as a factor x factor block (nearest-neighbour); any
  leading axes."""
  return np.repeat(np.repeat(frames_NxHxWx3, factor, -3), factor, -2)


def to_uint8(frames: np.ndarray) -> np.ndarray:
  return (np.clip(np.asarray(frames, np.float32), 0.0, 1.0) * 255).astype(
    np.uint8
  )


def _rgb(frames: np.ndarray) -> np.ndarray:
  """Grey (..., H, W) or (..., H, W, 1), or colour (..., H, W, 3) frames as
  colour."""
  if frames.shape[-1] == 1 and frames.ndim >= 4:
    frames = frames[..., 0]
  return (
    frames
    if frames.shape[-1] == 3 and frames.ndim >= 4
    else np.repeat(frames[..., None], 3, axis=-1)
  )


def _row(frames_TxHxWx3: np.ndarray, width: int) -> np.ndarray:
  T, H, W = frames_TxHxWx3.shape[:3]
  row = np.full((H, width, 3), 40, np.uint8)
  for t in range(T):
    row[:, t * (W + GAP) : t * (W + GAP) + W] = to_uint8(frames_TxHxWx3[t])
  return row


def composite_figure(
  inputs_BxTxHxW: np.ndarray,
  reconstruction_BxTxHxW: np.ndarray | None,
  future_BxKxHxW: np.ndarray | None,
  prediction_BxKxHxW: np.ndarray | None,
  title: str = "",
) -> Image.Image:
  """Figure 5's layout; reconstruction must already be in time order.

  Frames are grey (B, T, H, W) or colour (B, T, H, W, 3) in [0, 1]. Missing
  decoders (None) leave their panels empty. Small frames are drawn
  `scale_factor` times larger.
  """
  factor = scale_factor(*np.shape(inputs_BxTxHxW)[2:4])
  inputs_BxTxHxW, reconstruction_BxTxHxW, future_BxKxHxW, prediction_BxKxHxW = (
    None if f is None else upscale(_rgb(np.asarray(f)), factor)
    for f in (
      inputs_BxTxHxW,
      reconstruction_BxTxHxW,
      future_BxKxHxW,
      prediction_BxKxHxW,
    )
  )
  B, T, H, W = inputs_BxTxHxW.shape[:4]
  K = 0 if future_BxKxHxW is None else future_BxKxHxW.shape[1]
  ruler = ImageDraw.Draw(Image.new("RGB", (1, 1)))

  def measure(text: str) -> int:  # pixels for the text and its margins
    return int(np.ceil(ruler.textlength(text))) + 8

  label_w = max([LABEL_WIDTH] + [measure(t) for p in LABELS for t in p])
  left = T * (W + GAP)
  width = max(label_w + left + GAP * 4 + K * (W + GAP), measure(title))
  row_h = H + GAP
  top = 16 if title else 0
  canvas = np.full((top + B * (2 * row_h + 6), width, 3), 255, np.uint8)
  for b in range(B):
    y = top + b * (2 * row_h + 6)
    pairs = [
      (inputs_BxTxHxW[b], future_BxKxHxW),
      (
        None if reconstruction_BxTxHxW is None else reconstruction_BxTxHxW[b],
        prediction_BxKxHxW,
      ),
    ]
    for r, (first, second) in enumerate(pairs):
      yy = y + r * row_h
      x0 = label_w
      if first is not None:
        canvas[yy : yy + H, x0 : x0 + left] = _row(first, left)
      if second is not None:
        x1 = x0 + left + GAP * 4
        canvas[yy : yy + H, x1 : x1 + K * (W + GAP)] = _row(
          second[b], K * (W + GAP)
        )
  image = Image.fromarray(canvas)
  draw = ImageDraw.Draw(image)
  if title:
    draw.text((4, 2), title, fill=(0, 0, 0))
  for b in range(B):
    for r, lines in enumerate(LABELS):  # two lines, centred on the row
      y = top + b * (2 * row_h + 6) + r * row_h + (H - 2 * LINE) // 2
      for k, line in enumerate(lines):
        draw.text((4, y + k * LINE), line, fill=(0, 0, 0))
  return image

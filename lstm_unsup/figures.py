"""Pictures of what a model sees and outputs, in the paper's Figure 5 layout.

For each sequence, two rows of frames:

  input frames          | future ground truth
  reconstruction (in    | future prediction
  time order)           |

so each reconstructed frame sits under the input frame it reconstructs and
each predicted frame under the frame it predicts.
"""

import numpy as np
from PIL import Image, ImageDraw

GAP = 2  # pixels between frames
LABEL_WIDTH = 92  # pixels of text on the left of each row


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
  decoders (None) leave their panels empty.
  """
  inputs_BxTxHxW, reconstruction_BxTxHxW, future_BxKxHxW, prediction_BxKxHxW = (
    None if f is None else _rgb(np.asarray(f))
    for f in (
      inputs_BxTxHxW,
      reconstruction_BxTxHxW,
      future_BxKxHxW,
      prediction_BxKxHxW,
    )
  )
  B, T, H, W = inputs_BxTxHxW.shape[:4]
  K = 0 if future_BxKxHxW is None else future_BxKxHxW.shape[1]
  left = T * (W + GAP)
  width = left + GAP * 4 + K * (W + GAP)
  row_h = H + GAP
  top = 16 if title else 0
  canvas = np.full(
    (top + B * (2 * row_h + 6), LABEL_WIDTH + width, 3), 255, np.uint8
  )
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
      x0 = LABEL_WIDTH
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
    y = top + b * (2 * row_h + 6)
    draw.text((4, y + H // 2 - 12), "input |", fill=(0, 0, 0))
    draw.text((4, y + H // 2), "future truth", fill=(0, 0, 0))
    draw.text((4, y + row_h + H // 2 - 12), "reconstr. |", fill=(0, 0, 0))
    draw.text((4, y + row_h + H // 2), "prediction", fill=(0, 0, 0))
  return image

"""Frame metrics in today's Moving MNIST benchmark units (OpenSTL, PredRNN).

Definitions follow chengtan9907/OpenSTL openstl/core/metrics.py with
spatial_norm=False (anchors 3.1). Predictions and targets are in [0, 1] with
shape (B, K, H, W) (grey) or (B, K, H, W, C) (channels last); flat frames
(B, K, D) can be given with `frame_shape`.

- "sse" (OpenSTL's "MSE"): squared error summed over the pixels of a frame,
  computed *before* clipping the predictions.
- "mae": absolute error summed over the pixels of a frame, before clipping.
- "psnr": -10 log10(mean squared error of the frame), after clipping the
  predictions to [0, 1]. A perfect frame would give +inf; we floor the mean
  squared error at `_PSNR_MIN_MSE` = 1e-10, so PSNR is capped at 100 dB.
- "ssim": skimage.metrics.structural_similarity with its 2-D defaults and
  data_range=1 (7x7 uniform window, K1=0.01, K2=0.03, sample covariance,
  mean over the region where the window fits), after clipping. For colour
  frames the SSIM of each channel is averaged.

Each metric is computed per frame, averaged over the batch for a per-lead-time
curve of shape (K,), and averaged over lead times by `summarize`.
`MetricAccumulator` keeps float64 sums so an evaluator can stream a test set.
"""

import dataclasses
import functools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

METRIC_NAMES = ("sse", "mae", "psnr", "ssim")
_PSNR_MIN_MSE = 1e-10  # caps PSNR at 100 dB for a perfect frame


def _to_frames(x: jax.Array, frame_shape: tuple[int, ...] | None) -> jax.Array:
  """Reshapes (B, K, D) to (B, K, *frame_shape) and checks the rank."""
  x = jnp.asarray(x)
  if frame_shape is not None:
    x = x.reshape(x.shape[:2] + tuple(frame_shape))
  if x.ndim not in (4, 5):
    raise ValueError(
      f"expected (B, K, H, W) or (B, K, H, W, C) frames, got shape {x.shape};"
      " pass frame_shape for flat frames"
    )
  return x


def _sum_pixels(x: jax.Array) -> jax.Array:
  return jnp.sum(x, axis=tuple(range(2, x.ndim)))


def sse_per_frame(preds: jax.Array, targets: jax.Array) -> jax.Array:
  """Squared error summed over each frame's pixels (unclipped); (B, K)."""
  return _sum_pixels(jnp.square(preds - targets))


def mae_per_frame(preds: jax.Array, targets: jax.Array) -> jax.Array:
  """Absolute error summed over each frame's pixels (unclipped); (B, K)."""
  return _sum_pixels(jnp.abs(preds - targets))


def psnr_per_frame(preds: jax.Array, targets: jax.Array) -> jax.Array:
  """PSNR in dB per frame for data range 1, predictions clipped; (B, K)."""
  preds = jnp.clip(preds, 0.0, 1.0)
  mse = jnp.mean(jnp.square(preds - targets), axis=tuple(range(2, preds.ndim)))
  return -10.0 * jnp.log10(jnp.maximum(mse, _PSNR_MIN_MSE))


def _box_mean(x_NxHxW: jax.Array, win: int) -> jax.Array:
  """Mean over every win x win window that fits ('valid'); separable sums."""
  h = x_NxHxW.shape[-2] - win + 1
  w = x_NxHxW.shape[-1] - win + 1
  rows = sum(x_NxHxW[..., i : i + h, :] for i in range(win))
  return sum(rows[..., :, j : j + w] for j in range(win)) / (win * win)


def _ssim_2d(x: jax.Array, y: jax.Array, win: int, data_range: float):
  """Mean SSIM over the last two axes (skimage's defaults); leading kept."""
  if min(x.shape[-2:]) < win:
    raise ValueError(f"frames {x.shape[-2:]} are smaller than window {win}")
  c1 = (0.01 * data_range) ** 2
  c2 = (0.03 * data_range) ** 2
  n = win * win
  cov_norm = n / (n - 1.0)  # sample covariance, skimage's default
  ux, uy = _box_mean(x, win), _box_mean(y, win)
  vx = cov_norm * (_box_mean(x * x, win) - ux * ux)
  vy = cov_norm * (_box_mean(y * y, win) - uy * uy)
  vxy = cov_norm * (_box_mean(x * y, win) - ux * uy)
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / (
    (ux * ux + uy * uy + c1) * (vx + vy + c2)
  )
  # The valid windows are exactly skimage's region after cropping
  # (win - 1) // 2 pixels from each side, so its padding mode never matters.
  return jnp.mean(s, axis=(-2, -1))


@functools.partial(jax.jit, static_argnames=("win_size",))
def ssim_per_frame(
  preds: jax.Array,
  targets: jax.Array,
  win_size: int = 7,
  data_range: float = 1.0,
) -> jax.Array:
  """SSIM per frame, predictions clipped to [0, 1]; (B, K).

  Frames are (H, W) or (H, W, C); colour SSIM is the mean over channels.
  """
  preds = jnp.clip(preds, 0.0, 1.0)
  if preds.ndim == 5:
    per_channel = _ssim_2d(
      jnp.moveaxis(preds, -1, 2),
      jnp.moveaxis(targets, -1, 2),
      win_size,
      data_range,
    )
    return jnp.mean(per_channel, axis=2)
  return _ssim_2d(preds, targets, win_size, data_range)


@functools.partial(jax.jit, static_argnames=("frame_shape",))
def per_frame_metrics(
  preds: jax.Array,
  targets: jax.Array,
  frame_shape: tuple[int, ...] | None = None,
) -> dict[str, jax.Array]:
  """All metrics per frame: {"sse", "mae", "psnr", "ssim"} -> (B, K)."""
  preds = _to_frames(preds, frame_shape).astype(jnp.float32)
  targets = _to_frames(targets, frame_shape).astype(jnp.float32)
  if preds.shape != targets.shape:
    raise ValueError(f"shape mismatch: {preds.shape} vs {targets.shape}")
  return {
    "sse": sse_per_frame(preds, targets),
    "mae": mae_per_frame(preds, targets),
    "psnr": psnr_per_frame(preds, targets),
    "ssim": ssim_per_frame(preds, targets),
  }


def frame_metrics(
  preds: jax.Array,
  targets: jax.Array,
  frame_shape: tuple[int, ...] | None = None,
) -> dict[str, jax.Array]:
  """Per-lead-time metrics, averaged over the batch: name -> (K,)."""
  per_frame = per_frame_metrics(preds, targets, frame_shape)
  return {name: jnp.mean(v, axis=0) for name, v in per_frame.items()}


def summarize(per_lead_time: Mapping[str, jax.Array]) -> dict[str, float]:
  """Averages each (K,) per-lead-time curve over frames into a float."""
  return {name: float(np.mean(v)) for name, v in per_lead_time.items()}


@dataclasses.dataclass
class MetricAccumulator:
  """Streaming float64 sums of per-frame metrics over a test set.

  `add` takes any mapping of (B, K) per-frame arrays (so paper losses can
  ride along with the frame metrics); `add_batch` computes the frame metrics
  from predictions first. `mask_B` marks the real (non-padding) sequences.
  """

  sums: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  count: float = 0.0

  def add(
    self,
    per_frame: Mapping[str, jax.Array],
    mask_B: jax.Array | np.ndarray | None = None,
  ) -> None:
    """Adds one batch of per-frame values, each of shape (B, K)."""
    for name, v in per_frame.items():
      v = np.asarray(v, dtype=np.float64)
      w = np.ones(v.shape[0]) if mask_B is None else np.asarray(mask_B, float)
      # `where` keeps non-finite values in padded sequences out of the sums.
      batch_sum = np.where(w[:, None] != 0, v * w[:, None], 0.0).sum(axis=0)
      self.sums[name] = self.sums.get(name, 0.0) + batch_sum
    if per_frame:
      b = next(iter(per_frame.values())).shape[0]
      self.count += b if mask_B is None else float(np.sum(mask_B))

  def add_sums(self, sums: Mapping[str, jax.Array], count) -> None:
    """Adds sums over a batch's sequences (K,) of per-frame values, and how
    many sequences they sum."""
    for name, v in sums.items():
      v = np.asarray(v, dtype=np.float64)
      self.sums[name] = self.sums.get(name, 0.0) + v
    self.count += float(count)

  def add_batch(
    self,
    preds: jax.Array,
    targets: jax.Array,
    mask_B: jax.Array | np.ndarray | None = None,
    frame_shape: tuple[int, ...] | None = None,
  ) -> None:
    """Computes the frame metrics for a batch and adds them."""
    self.add(per_frame_metrics(preds, targets, frame_shape), mask_B)

  def means(self) -> dict[str, np.ndarray]:
    """Per-lead-time means over every sequence added: name -> (K,)."""
    if self.count <= 0:
      raise ValueError("no sequences have been added")
    return {name: s / self.count for name, s in self.sums.items()}

  def summary(self) -> dict[str, float]:
    """Means over sequences and lead times: name -> float."""
    return summarize(self.means())

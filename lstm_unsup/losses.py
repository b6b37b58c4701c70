"""Training losses in the paper's units (Srivastava et al. 2015, section 3).

Every loss here is computed per frame first: for each sequence b and decoded
step k the per-pixel values are *summed* over all trailing (pixel) axes,
giving an array of shape (B, K). The paper's reported unit then averages that
over frames and sequences ("nats per frame" for binary data), which is what
the official code prints as Dec/Fut (lstm_combo.py GetLoss).

- Binary data (Moving MNIST): Bernoulli cross-entropy of the grey-level
  targets in [0, 1] (not binarised) under p = sigmoid(logits). We compute it
  from the logits in a stable form, so it needs no epsilon (the official
  code adds 1e-10 inside the logs, which only matters for saturated pixels),
  with a hand-written backward pass that keeps only p - y for it.
- Real-valued data (image patches): 0.5 * ||pred - target||^2 per frame.

`target_entropy` and `per_position_prior_ce` are reference points for
reporting: the lowest cross-entropy any model can reach on grey-level targets,
and what a model that ignores the input and predicts each pixel by its mean
would score.
"""

from typing import Literal, get_args

import jax
import jax.numpy as jnp
import numpy as np

LossKind = Literal["binary", "real"]
OUTPUTS = get_args(LossKind)  # what config.model.output may be


def _sum_pixels(x: jax.Array) -> jax.Array:
  """Sums over every axis after the leading (B, K) pair."""
  if x.ndim < 2:
    raise ValueError(f"expected at least (B, K) axes, got shape {x.shape}")
  return jnp.sum(x, axis=tuple(range(2, x.ndim)))


def _cross_entropy_pixels(logits, targets):
  # -[y log sigmoid(l) + (1 - y) log sigmoid(-l)], written as
  # max(l, 0) - l y + log(1 + exp(-|l|)): stable, and one expression that
  # XLA fuses into the reduction over pixels.
  return (
    jnp.maximum(logits, 0.0)
    - logits * targets
    + jnp.log1p(jnp.exp(-jnp.abs(logits)))
  )


@jax.custom_vjp
def _cross_entropy_sums(logits, targets):
  return _sum_pixels(_cross_entropy_pixels(logits, targets))


def _cross_entropy_fwd(logits, targets):
  # The residual is the gradient, sigmoid(logit) - y, made while the logits
  # are at hand: autodiff of the log-sigmoids would keep several arrays of
  # the logits' size alive until the backward pass.
  residuals = (jax.nn.sigmoid(logits) - targets, logits)
  return _cross_entropy_sums(logits, targets), residuals


def _cross_entropy_bwd(residuals, g_BxK):
  dlogits, logits = residuals
  g = jnp.reshape(g_BxK, g_BxK.shape + (1,) * (logits.ndim - 2))
  # d/dy of the cross-entropy is -logit; unused in training, where XLA then
  # drops it and the logits residual with it.
  return dlogits * g, -logits * g


_cross_entropy_sums.defvjp(_cross_entropy_fwd, _cross_entropy_bwd)


def bernoulli_cross_entropy(
  logits_BxKxD: jax.Array, targets_BxKxD: jax.Array
) -> jax.Array:
  """Per-frame Bernoulli cross-entropy from logits, summed over pixels.

  Per pixel: -[y log p + (1 - y) log(1 - p)] with p = sigmoid(logit) and y a
  grey level in [0, 1]. Trailing axes may be any frame shape. Its gradient
  is the familiar p - y (with respect to the logits) and -logit (targets).

  Returns:
    Array of shape (B, K) in nats per frame.
  """
  logits = jnp.asarray(logits_BxKxD)
  targets = jnp.asarray(targets_BxKxD, dtype=logits.dtype)
  return _cross_entropy_sums(logits, jnp.broadcast_to(targets, logits.shape))


def squared_error(
  preds_BxKxD: jax.Array, targets_BxKxD: jax.Array
) -> jax.Array:
  """Per-frame 0.5 * ||pred - target||^2, summed over pixels; shape (B, K)."""
  preds = jnp.asarray(preds_BxKxD)
  diff = preds - jnp.asarray(targets_BxKxD, dtype=preds.dtype)
  return 0.5 * _sum_pixels(jnp.square(diff))


def frame_loss(
  outputs_BxKxD: jax.Array, targets_BxKxD: jax.Array, kind: LossKind
) -> jax.Array:
  """Per-frame loss of shape (B, K) for `kind` "binary" or "real".

  "binary" treats `outputs` as logits (sigmoid readout, cross-entropy);
  "real" treats them as predictions (linear readout, squared error).
  """
  if kind == "binary":
    return bernoulli_cross_entropy(outputs_BxKxD, targets_BxKxD)
  if kind == "real":
    return squared_error(outputs_BxKxD, targets_BxKxD)
  raise ValueError(f"unknown loss kind {kind!r}; expected one of {OUTPUTS}")


UNITS = {"binary": "nats/frame", "real": "SE/frame"}  # of frame_loss, averaged
METRIC_KEYS = {"binary": "ce", "real": "se"}  # evaluation's future_<key> etc.


def _weights(per_frame_BxK: jax.Array, mask_BxK: jax.Array | None) -> jax.Array:
  if mask_BxK is None:
    return jnp.ones_like(per_frame_BxK)
  mask = jnp.asarray(mask_BxK, dtype=per_frame_BxK.dtype)
  if mask.shape != per_frame_BxK.shape:
    raise ValueError(
      f"mask shape {mask.shape} != per-frame shape {per_frame_BxK.shape}"
    )
  return mask


def sum_per_frame(
  per_frame_BxK: jax.Array, mask_BxK: jax.Array | None = None
) -> jax.Array:
  """Sum of per-frame values over frames and sequences (masked frames skipped).

  This is the loss the `paper` optimiser expects: the official code sums
  gradients over the batch and the frames.
  """
  w = _weights(per_frame_BxK, mask_BxK)
  # `where` rather than a product, so NaN/inf in padded frames cannot leak.
  return jnp.sum(jnp.where(w != 0, per_frame_BxK * w, 0.0))


def mean_per_frame(
  per_frame_BxK: jax.Array, mask_BxK: jax.Array | None = None
) -> jax.Array:
  """Average of per-frame values over frames and sequences (the paper's unit).

  `mask_BxK` (bool or float weights) excludes padded frames from the average.
  An all-zero mask gives 0, not NaN.
  """
  w = _weights(per_frame_BxK, mask_BxK)
  total = sum_per_frame(per_frame_BxK, w)
  count = jnp.sum(w)
  return jnp.where(count > 0, total / jnp.where(count > 0, count, 1.0), 0.0)


def sum_over_frames(
  per_frame_BxK: jax.Array, mask_BxK: jax.Array | None = None
) -> jax.Array:
  """Sum over frames, mean over sequences: the loss whose gradient the
  authors' 2015 code takes (each frame's derivative divided by the batch)."""
  return sum_per_frame(per_frame_BxK, mask_BxK) / per_frame_BxK.shape[0]


REDUCTIONS = {
  "mean": mean_per_frame,
  "sum": sum_per_frame,
  "sum_over_frames": sum_over_frames,
}


def paper_loss(
  outputs_BxKxD: jax.Array,
  targets_BxKxD: jax.Array,
  kind: LossKind = "binary",
  mask_BxK: jax.Array | None = None,
) -> jax.Array:
  """Scalar loss in the paper's unit: summed over pixels, mean over frames."""
  return mean_per_frame(
    frame_loss(outputs_BxKxD, targets_BxKxD, kind), mask_BxK
  )


def _binary_entropy_per_frame(y: np.ndarray, p: np.ndarray) -> np.ndarray:
  """-[y log p + (1 - y) log(1 - p)] summed over pixels, in float64 numpy."""
  with np.errstate(divide="ignore", invalid="ignore"):
    # 0 * log(0) counts as 0, as in the entropy's limit.
    pos = np.where(y > 0, y * np.log(p), 0.0)
    neg = np.where(y < 1, (1.0 - y) * np.log1p(-p), 0.0)
  ce = -(pos + neg)
  return ce.reshape(ce.shape[0], ce.shape[1], -1).sum(axis=-1)


def target_entropy(targets_BxKxD: jax.Array | np.ndarray) -> float:
  """Binary entropy of grey-level targets, summed per frame, mean over frames.

  Cross-entropy = entropy + KL, so this is the floor any model's
  `bernoulli_cross_entropy` can reach on these targets (0 for binary ones).
  Computed in float64 numpy; it is a reporting number, not a training loss.
  """
  y = np.asarray(targets_BxKxD, dtype=np.float64)
  if y.ndim < 3:
    raise ValueError(f"expected (B, K, *frame) targets, got shape {y.shape}")
  return float(_binary_entropy_per_frame(y, y).mean())


def per_position_prior_ce(
  train_frames_BxKxD: jax.Array | np.ndarray,
  test_frames_BxKxD: jax.Array | np.ndarray,
  eps: float = 1e-6,
) -> float:
  """Cross-entropy of predicting each pixel by its mean over a reference set.

  The prior p[d] is the mean of pixel d over every frame in
  `train_frames_BxKxD`, clipped to [eps, 1 - eps] so that a pixel never lit in
  the reference set costs a finite amount. Returns the Bernoulli
  cross-entropy of `test_frames_BxKxD` under that prior, summed per frame and
  averaged over test frames. Both inputs are (B, K, *frame) with the same
  frame shape. Averaging the result over equal-sized test batches is exact.
  """
  ref = np.asarray(train_frames_BxKxD, dtype=np.float64)
  y = np.asarray(test_frames_BxKxD, dtype=np.float64)
  if ref.ndim < 3 or ref.shape[2:] != y.shape[2:]:
    raise ValueError(
      f"frame shapes differ or are missing: {ref.shape} vs {y.shape}"
    )
  prior = np.clip(ref.mean(axis=(0, 1)), eps, 1.0 - eps)
  return float(_binary_entropy_per_frame(y, prior[None, None]).mean())

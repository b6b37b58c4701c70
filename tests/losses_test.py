"""Tests for lstm_unsup.losses against hand-computed and numpy values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_unsup import losses


def _np_bce_per_frame(logits, targets):
  p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
  y = np.asarray(targets, np.float64)
  ce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
  return ce.reshape(ce.shape[0], ce.shape[1], -1).sum(-1)


def test_bernoulli_cross_entropy_matches_numpy_per_frame():
  rng = np.random.default_rng(0)
  logits_BxKxD = rng.normal(size=(2, 3, 5)).astype(np.float32) * 3
  targets_BxKxD = rng.uniform(size=(2, 3, 5)).astype(np.float32)
  got = losses.bernoulli_cross_entropy(logits_BxKxD, targets_BxKxD)
  assert got.shape == (2, 3)
  np.testing.assert_allclose(
    got, _np_bce_per_frame(logits_BxKxD, targets_BxKxD), rtol=1e-5
  )


def test_bernoulli_cross_entropy_hand_values():
  # logit 0 -> p = 0.5: every pixel costs log 2 whatever the grey level.
  got = losses.bernoulli_cross_entropy(
    jnp.zeros((1, 1, 4)), jnp.array([[[0.0, 0.3, 0.7, 1.0]]])
  )
  np.testing.assert_allclose(got, [[4 * np.log(2.0)]], rtol=1e-6)


def test_bernoulli_cross_entropy_is_stable_for_saturated_logits():
  logits = jnp.array([[[100.0, -100.0, 100.0, -100.0]]])
  targets = jnp.array([[[1.0, 0.0, 0.0, 1.0]]])
  got = losses.bernoulli_cross_entropy(logits, targets)
  # Right with certainty costs ~0; wrong costs |logit| nats, no inf/NaN.
  np.testing.assert_allclose(got, [[200.0]], rtol=1e-6)
  grad = jax.grad(lambda x: losses.bernoulli_cross_entropy(x, targets).sum())(
    logits
  )
  # d/dlogit = sigmoid(logit) - target.
  np.testing.assert_allclose(grad, [[[0.0, 0.0, 1.0, -1.0]]], atol=1e-6)


def test_bernoulli_cross_entropy_gradients_match_autodiff_of_the_formula():
  # The hand-written backward pass (p - y for the logits, -logit for the
  # targets) against JAX's autodiff of the textbook formula, in float64,
  # with a weight per frame so that the cotangent is not all ones.
  def reference(logits, targets):
    ce = -(
      targets * jax.nn.log_sigmoid(logits)
      + (1.0 - targets) * jax.nn.log_sigmoid(-logits)
    )
    return ce.sum(axis=(2, 3))

  rng = np.random.default_rng(2)
  with jax.enable_x64(True):
    logits = jnp.asarray(rng.normal(size=(2, 3, 4, 5)) * 4)
    targets = jnp.asarray(rng.uniform(size=(2, 3, 4, 5)))
    weights_BxK = jnp.asarray(rng.normal(size=(2, 3)))

    def weighted(fn):
      return lambda x, y: (fn(x, y) * weights_BxK).sum()

    np.testing.assert_allclose(
      losses.bernoulli_cross_entropy(logits, targets),
      reference(logits, targets),
      rtol=1e-12,
    )
    got = jax.grad(weighted(losses.bernoulli_cross_entropy), (0, 1))(
      logits, targets
    )
    want = jax.grad(weighted(reference), (0, 1))(logits, targets)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_losses_reduce_over_any_frame_shape():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
  y = rng.uniform(size=(2, 3, 4, 5)).astype(np.float32)
  flat = lambda a: a.reshape(2, 3, 20)  # noqa: E731
  np.testing.assert_allclose(
    losses.bernoulli_cross_entropy(x, y),
    losses.bernoulli_cross_entropy(flat(x), flat(y)),
    rtol=1e-6,
  )
  np.testing.assert_allclose(
    losses.squared_error(x, y),
    losses.squared_error(flat(x), flat(y)),
    rtol=1e-6,
  )


def test_squared_error_hand_values():
  preds = jnp.array([[[1.0, 2.0], [0.5, 0.5]]])  # B=1, K=2, D=2
  targets = jnp.array([[[0.0, 0.0], [0.5, 1.5]]])
  np.testing.assert_allclose(
    losses.squared_error(preds, targets), [[2.5, 0.5]], rtol=1e-6
  )


def test_frame_loss_dispatch():
  x = jnp.array([[[0.0, 1.0]]])
  y = jnp.array([[[1.0, 1.0]]])
  np.testing.assert_allclose(
    losses.frame_loss(x, y, "binary"), losses.bernoulli_cross_entropy(x, y)
  )
  np.testing.assert_allclose(losses.frame_loss(x, y, "real"), [[0.5]])
  with pytest.raises(ValueError, match="unknown loss kind"):
    losses.frame_loss(x, y, "poisson")


def test_paper_loss_is_summed_over_pixels_mean_over_frames():
  preds = jnp.array([[[1.0, 1.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 3.0]]])
  targets = jnp.zeros_like(preds)
  # Per frame 0.5*sum sq: [[1, 2], [0, 4.5]] -> mean 7.5 / 4.
  np.testing.assert_allclose(
    losses.paper_loss(preds, targets, "real"), 7.5 / 4, rtol=1e-6
  )
  mask = jnp.array([[1.0, 1.0], [0.0, 1.0]])
  np.testing.assert_allclose(
    losses.paper_loss(preds, targets, "real", mask), 7.5 / 3, rtol=1e-6
  )


def test_mean_per_frame_masking():
  per_frame = jnp.array([[1.0, 2.0, jnp.nan], [3.0, jnp.inf, 5.0]])
  mask = jnp.array([[True, True, False], [True, False, True]])
  np.testing.assert_allclose(
    losses.mean_per_frame(per_frame, mask), 11.0 / 4, rtol=1e-6
  )
  np.testing.assert_allclose(losses.sum_per_frame(per_frame, mask), 11.0)
  np.testing.assert_allclose(
    losses.mean_per_frame(jnp.array([[1.0, 3.0]])), 2.0, rtol=1e-6
  )


def test_all_zero_mask_gives_zero_not_nan_with_finite_grad():
  per_frame = jnp.array([[1.0, 2.0]])
  zero = jnp.zeros((1, 2))
  assert float(losses.mean_per_frame(per_frame, zero)) == 0.0
  grad = jax.grad(lambda v: losses.mean_per_frame(v, zero))(per_frame)
  np.testing.assert_array_equal(grad, np.zeros((1, 2)))
  with pytest.raises(ValueError, match="mask shape"):
    losses.mean_per_frame(per_frame, jnp.ones((2, 1)))


def test_paper_loss_jits():
  x = jnp.ones((2, 3, 4))
  y = jnp.full((2, 3, 4), 0.5)
  got = jax.jit(losses.paper_loss, static_argnames="kind")(x, y, kind="binary")
  # Each pixel: softplus(1) - 0.5 * 1.
  np.testing.assert_allclose(got, 4 * (np.log1p(np.e) - 0.5), rtol=1e-6)


def test_target_entropy_hand_values():
  half = np.full((2, 3, 4), 0.5)
  np.testing.assert_allclose(losses.target_entropy(half), 4 * np.log(2.0))
  binary = np.array([[[0.0, 1.0, 1.0]]])
  assert losses.target_entropy(binary) == 0.0
  # Mixed: one pixel at 0.25 -> -(.25 log .25 + .75 log .75), one at 0.
  mixed = np.array([[[0.25, 0.0]]])
  want = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
  np.testing.assert_allclose(losses.target_entropy(mixed), want)


def test_target_entropy_is_the_cross_entropy_floor():
  rng = np.random.default_rng(2)
  y = rng.uniform(0.01, 0.99, size=(2, 2, 6)).astype(np.float32)
  logit_y = np.log(y) - np.log1p(-y)  # the best logits for these targets
  best = float(losses.bernoulli_cross_entropy(logit_y, y).mean())
  np.testing.assert_allclose(best, losses.target_entropy(y), rtol=1e-5)
  other = float(losses.bernoulli_cross_entropy(logit_y + 0.3, y).mean())
  assert other > best


def test_per_position_prior_ce_hand_values():
  # Reference pixel means: [0.5, 0.25].
  train = np.array([[[1.0, 0.0], [0.0, 0.5]]])  # B=1, K=2, D=2
  test = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # B=2, K=1, D=2
  frame0 = -(np.log(0.5) + np.log(0.75))
  frame1 = -(np.log(0.5) + np.log(0.25))
  np.testing.assert_allclose(
    losses.per_position_prior_ce(train, test), (frame0 + frame1) / 2
  )


def test_per_position_prior_ce_clips_never_lit_pixels():
  train = np.zeros((1, 2, 3))
  test = np.array([[[0.0, 0.0, 1.0]]])
  got = losses.per_position_prior_ce(train, test, eps=1e-6)
  np.testing.assert_allclose(got, -np.log(1e-6) - 2 * np.log1p(-1e-6))
  with pytest.raises(ValueError, match="frame shapes"):
    losses.per_position_prior_ce(train, np.zeros((1, 2, 4)))

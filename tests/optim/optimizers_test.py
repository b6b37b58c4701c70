"""Tests for lstm_unsup.optim.optimizers against numpy recurrences and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lstm_unsup.optim import optimizers


def _params():
  rng = np.random.default_rng(0)
  return {
    "dense": {
      "kernel": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
      "bias": jnp.asarray(rng.normal(size=(4,)), jnp.float32),
    },
    "peephole": jnp.asarray(rng.normal(size=(4,)), jnp.float32),
  }


def _grads(seed, scale=1.0):
  rng = np.random.default_rng(seed)
  return jax.tree.map(
    lambda p: jnp.asarray(rng.normal(size=p.shape) * scale, jnp.float32),
    _params(),
  )


def test_paper_never_moves_a_weight_more_than_clip():
  tx = optimizers.paper_momentum()
  params = _params()
  state = tx.init(params)
  for step in range(4):
    grads = _grads(step, scale=1e6)
    updates, state = tx.update(grads, state, params)
    new_params = optax.apply_updates(params, updates)
    for old, new in zip(
      jax.tree.leaves(params), jax.tree.leaves(new_params), strict=True
    ):
      # float32 rounding of w + v adds at most one ulp of |w| (~1e-7 here).
      assert np.max(np.abs(np.asarray(new) - np.asarray(old))) <= 1e-4 + 1e-6
    for u in jax.tree.leaves(updates):
      assert np.max(np.abs(u)) <= 1e-4
    params = new_params


def test_paper_decays_weights_but_not_biases():
  params = _params()
  zero_grads = jax.tree.map(jnp.zeros_like, params)
  tx = optimizers.paper_momentum()
  updates, _ = tx.update(zero_grads, tx.init(params), params)
  # Default hyperparameters: the L2 step is -lr * l2 * w = -1e-8 * w.
  np.testing.assert_allclose(
    updates["dense"]["kernel"], -1e-8 * params["dense"]["kernel"], rtol=1e-5
  )
  np.testing.assert_allclose(
    updates["peephole"], -1e-8 * params["peephole"], rtol=1e-5
  )
  np.testing.assert_array_equal(updates["dense"]["bias"], np.zeros(4))
  # Big enough to see in float32 params: biases stay put, weights shrink.
  tx = optimizers.paper_momentum(learning_rate=0.1, l2=0.5, clip=10.0)
  updates, _ = tx.update(zero_grads, tx.init(params), params)
  new = optax.apply_updates(params, updates)
  np.testing.assert_array_equal(new["dense"]["bias"], params["dense"]["bias"])
  np.testing.assert_allclose(
    new["dense"]["kernel"], 0.95 * params["dense"]["kernel"], rtol=1e-6
  )


def _np_paper(params, grads_seq, learning_rate, momentum, l2, clip, decay):
  """Float64 numpy: v = clip(m v - lr (g + l2 w)); w += v, per leaf."""
  w = {k: np.asarray(v, np.float64) for k, v in params.items()}
  v = {k: np.zeros_like(x) for k, x in w.items()}
  for grads in grads_seq:
    for k in w:
      g = np.asarray(grads[k], np.float64) + (l2 * w[k] if decay[k] else 0.0)
      v[k] = np.clip(momentum * v[k] - learning_rate * g, -clip, clip)
      w[k] = w[k] + v[k]
  return w, v


def test_paper_matches_numpy_recurrence_over_three_steps():
  params = {"w": _params()["dense"]["kernel"], "bias": _params()["peephole"]}
  rng = np.random.default_rng(1)
  grads_seq = [
    {
      k: jnp.asarray(rng.normal(size=p.shape), jnp.float32)
      for k, p in params.items()
    }
    for _ in range(3)
  ]
  # Clip 0.05 with lr 0.1 and unit gradients: some elements clip, some not.
  hp = dict(learning_rate=0.1, momentum=0.9, l2=0.2, clip=0.05)
  tx = optimizers.paper_momentum(**hp)
  state = tx.init(params)
  got = params
  update_fn = jax.jit(tx.update)
  for grads in grads_seq:
    updates, state = update_fn(grads, state, got)
    got = optax.apply_updates(got, updates)
  want_w, want_v = _np_paper(
    params, grads_seq, decay={"w": True, "bias": False}, **hp
  )
  v = np.asarray(state.velocity["w"])
  assert np.any(np.isclose(np.abs(v), 0.05)), "clip never active"
  assert np.any(np.abs(v) < 0.049), "clip always active"
  for k in params:
    np.testing.assert_allclose(got[k], want_w[k], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
      state.velocity[k], want_v[k], rtol=1e-5, atol=1e-7
    )


def _np_rmsprop_momentum(params, grads_seq, decay, lr, momentum, l2, clip):
  """The 2015 util.py Param.Update in float64 numpy, line by line: dw +=
  l2 w; history = sqrt(0.95 history^2 + 0.05 dw^2) from ones; dw /=
  history; v = momentum v - lr dw, clipped; w += v."""
  w = {k: np.asarray(p, np.float64) for k, p in params.items()}
  v = {k: np.zeros_like(x) for k, x in w.items()}
  r = {k: np.ones_like(x) for k, x in w.items()}
  for grads in grads_seq:
    for k in w:
      dw = np.asarray(grads[k], np.float64) + (l2 * w[k] if decay[k] else 0)
      r[k] = np.sqrt(0.95 * r[k] ** 2 + 0.05 * dw**2)
      v[k] = np.clip(momentum * v[k] - lr * dw / r[k], -clip, clip)
      w[k] = w[k] + v[k]
  return w, v


def test_rmsprop_momentum_matches_the_2015_update_over_three_steps():
  params = {"w": _params()["dense"]["kernel"], "bias": _params()["peephole"]}
  rng = np.random.default_rng(2)
  grads_seq = [
    {
      k: jnp.asarray(rng.normal(size=p.shape) * 3, jnp.float32)
      for k, p in params.items()
    }
    for _ in range(3)
  ]
  hp = dict(lr=0.1, momentum=0.9, l2=0.2, clip=0.12)
  tx = optimizers.rmsprop_momentum(
    learning_rate=hp["lr"], momentum=0.9, l2=0.2, clip=0.12
  )
  state, got = tx.init(params), params
  for grads in grads_seq:
    updates, state = jax.jit(tx.update)(grads, state, got)
    got = optax.apply_updates(got, updates)
  want_w, want_v = _np_rmsprop_momentum(
    params, grads_seq, {"w": True, "bias": False}, **hp
  )
  v = np.asarray(state.velocity["w"])
  assert np.any(np.isclose(np.abs(v), 0.12)), "clip never active"
  assert np.any(np.abs(v) < 0.11), "clip always active"
  for k in params:
    # float32 against float64 over three steps of O(1) values.
    np.testing.assert_allclose(got[k], want_w[k], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.velocity[k], want_v[k], atol=1e-6)


def test_each_optimiser_names_its_loss_reduction():
  assert set(optimizers.LOSS_REDUCTIONS) == set(optimizers.NAMES)
  assert optimizers.LOSS_REDUCTIONS == {
    "adam": "mean",
    "paper": "sum",
    "rmsprop_momentum": "sum_over_frames",
  }


def test_paper_accepts_custom_decay_mask():
  params = {"a": jnp.ones(2), "b": jnp.ones(2)}
  zeros = jax.tree.map(jnp.zeros_like, params)
  for mask in ({"a": False, "b": True}, lambda p: {"a": False, "b": True}):
    tx = optimizers.paper_momentum(
      learning_rate=0.1, l2=1.0, clip=1.0, decay_mask=mask
    )
    updates, _ = tx.update(zeros, tx.init(params), params)
    np.testing.assert_allclose(updates["a"], [0.0, 0.0])
    np.testing.assert_allclose(updates["b"], [-0.1, -0.1])
  with pytest.raises(ValueError, match="needs params"):
    tx.update(zeros, tx.init(params))


def test_default_decay_mask_is_name_based():
  mask = optimizers.default_decay_mask(
    {"lstm": {"Bias_hi": 1.0, "kernel": 1.0}, "readout": [2.0, 3.0]}
  )
  assert mask == {
    "lstm": {"Bias_hi": False, "kernel": True},
    "readout": [True, True],
  }


@pytest.mark.parametrize(
  "kwargs",
  [
    dict(learning_rate=1e-2, clip_norm=1.0),
    dict(learning_rate=1e-2, clip_norm=None),
    dict(learning_rate=1e-2, clip_norm=2.0, warmup_steps=2, decay_steps=5),
  ],
)
def test_fused_adam_matches_optax_chain(kwargs):
  schedule = optimizers.make_schedule(
    kwargs["learning_rate"],
    kwargs.get("warmup_steps", 0),
    kwargs.get("decay_steps", 0),
  )
  reference = optax.adam(schedule)
  if kwargs["clip_norm"] is not None:
    reference = optax.chain(
      optax.clip_by_global_norm(kwargs["clip_norm"]), reference
    )
  fused = optimizers.adam(**kwargs)
  params = _params()
  p_ref, p_fused = params, params
  s_ref, s_fused = reference.init(params), fused.init(params)
  # Alternate big (clipped) and small (unclipped) gradients.
  for step in range(6):
    grads = _grads(step, scale=10.0 if step % 2 else 0.01)
    u_ref, s_ref = reference.update(grads, s_ref, p_ref)
    u_fused, s_fused = jax.jit(fused.update)(grads, s_fused, p_fused)
    for a, b in zip(
      jax.tree.leaves(u_ref), jax.tree.leaves(u_fused), strict=True
    ):
      np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-8)
    p_ref = optax.apply_updates(p_ref, u_ref)
    p_fused = optax.apply_updates(p_fused, u_fused)


def test_unfused_adam_is_the_optax_chain():
  tx = optimizers.adam(learning_rate=1e-2, clip_norm=1.0, fused=False)
  grads = _grads(0, scale=10.0)
  params = _params()
  updates, _ = tx.update(grads, tx.init(params), params)
  ref = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))
  want, _ = ref.update(grads, ref.init(params), params)
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(updates), strict=True):
    np.testing.assert_allclose(b, a, rtol=1e-6)


def test_make_schedule_values():
  const = optimizers.make_schedule(1e-3)
  np.testing.assert_allclose([const(0), const(10**6)], [1e-3, 1e-3])
  warm = optimizers.make_schedule(1e-3, warmup_steps=4)
  np.testing.assert_allclose(
    [warm(0), warm(2), warm(4), warm(100)], [0.0, 5e-4, 1e-3, 1e-3], rtol=1e-6
  )
  cos = optimizers.make_schedule(
    1e-3, warmup_steps=2, decay_steps=12, final_lr_fraction=0.1
  )
  # Halfway through the cosine (step 7 of 2..12): (peak + end) / 2.
  np.testing.assert_allclose(
    [cos(2), cos(7), cos(12)], [1e-3, 5.5e-4, 1e-4], rtol=1e-5
  )
  with pytest.raises(ValueError, match="decay_steps"):
    optimizers.make_schedule(1e-3, warmup_steps=5, decay_steps=5)


def test_build_optimizer_names_and_errors():
  params = _params()
  for name in ("adam", "paper"):
    tx = optimizers.build_optimizer(name, learning_rate=1e-3)
    updates, _ = tx.update(_grads(0), tx.init(params), params)
    assert jax.tree.structure(updates) == jax.tree.structure(params)
  with pytest.raises(ValueError, match="unknown optimizer"):
    optimizers.build_optimizer("sgd")
  with pytest.raises(ValueError, match="learning_rate must be positive"):
    optimizers.build_optimizer("adam", learning_rate=0.0)
  with pytest.raises(ValueError, match="learning_rate must be positive"):
    optimizers.build_optimizer("paper", learning_rate=-1e-4)
  with pytest.raises(ValueError, match="clip must be positive"):
    optimizers.build_optimizer("paper", clip=0.0)
  with pytest.raises(ValueError, match="momentum"):
    optimizers.build_optimizer("paper", momentum=1.0)
  with pytest.raises(ValueError, match="bad arguments"):
    optimizers.build_optimizer("paper", clip_norm=1.0)


@pytest.mark.parametrize("name", optimizers.NAMES)
def test_from_config_reads_the_fields_the_trainer_and_classifier_share(name):
  from lstm_unsup.configs import classifier, default

  params = {"w": jnp.ones((3,)), "bias": jnp.ones((3,))}
  grads = {"w": jnp.array([1.0, -2.0, 0.5]), "bias": jnp.full((3,), 0.3)}
  for config in (default.get_config("quick"), classifier.get_config("quick")):
    config.optim.name = name
    o = dict(config.optim)
    got = optimizers.from_config(config.optim)
    if name == "adam":
      want = optimizers.adam(o["learning_rate"], o["clip_norm"])
    else:
      hp = dict(momentum=o["momentum"], l2=o["l2"], clip=o["update_clip"])
      builder = getattr(optimizers, name.replace("paper", "paper_momentum"))
      want = builder(learning_rate=o["learning_rate"], **hp)
    a, _ = got.update(grads, got.init(params), params)
    b, _ = want.update(grads, want.init(params), params)
    for k in params:
      np.testing.assert_array_equal(a[k], b[k])

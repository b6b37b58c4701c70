"""Tests of the LSTM module (lstm/module.py): a numpy reference, Flax
parity, jit, masking, shapes, parameter names and clear errors."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_unsup import lstm
from lstm_unsup.lstm import LSTM, params_from_flax

B, T, D, H = 3, 5, 4, 6


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm(layers, x_BxTxD, carries=None, act=np.tanh):
  """A plain float64 loop of the paper's cell, written from the equations."""
  x = np.asarray(x_BxTxD, np.float64)
  finals = []
  for k, p in enumerate(layers):
    p = {n: np.asarray(a, np.float64) for n, a in p.items()}
    Hk = p["w_recurrent"].shape[0]
    if carries is None:
      c, h = np.zeros((x.shape[0], Hk)), np.zeros((x.shape[0], Hk))
    else:
      c, h = (np.asarray(a, np.float64) for a in carries[k])
    outs = []
    for t in range(x.shape[1]):
      z = x[:, t] @ p["w_input"] + h @ p["w_recurrent"] + p["bias"]
      zi, zf, zg, zo = (
        z[:, :Hk],
        z[:, Hk : 2 * Hk],
        z[:, 2 * Hk : 3 * Hk],
        z[:, 3 * Hk :],
      )
      if "w_peephole" in p:
        zi = zi + p["w_peephole"][0] * c
        zf = zf + p["w_peephole"][1] * c
      c = _sigmoid(zf) * c + _sigmoid(zi) * act(zg)
      if "w_peephole" in p:
        zo = zo + p["w_peephole"][2] * c
      h = _sigmoid(zo) * act(c)
      outs.append(h)
    finals.append((c, h))
    x = np.stack(outs, axis=1)
  return x, finals


def _init(model, x, key=0):
  return model.init(jax.random.key(key), x)["params"]


@pytest.mark.parametrize(
  "peepholes, act",
  [(False, "tanh"), (True, "tanh"), (True, "relu")],
)
def test_matches_numpy_reference_in_float64(peepholes, act):
  with jax.enable_x64(True):
    model = LSTM(
      features=H,
      num_layers=2,
      peepholes=peepholes,
      activation_fn=act,
      initializer="torch",
      param_dtype=jnp.float64,
    )
    x = jax.random.normal(jax.random.key(1), (B, T, D), jnp.float64)
    params = _init(model, x)
    carries = tuple(
      tuple(
        jax.random.normal(jax.random.key(10 + 2 * k + i), (B, H), jnp.float64)
        for i in range(2)
      )
      for k in range(2)
    )
    out, finals = model.apply({"params": params}, x, carries)
    layers = [params["layer_0"], params["layer_1"]]
    np_act = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0)}[act]
    ref_out, ref_finals = numpy_lstm(layers, x, carries, np_act)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    for (c, h), (rc, rh) in zip(finals, ref_finals):
      np.testing.assert_allclose(c, rc, rtol=1e-12, atol=1e-12)
      np.testing.assert_allclose(h, rh, rtol=1e-12, atol=1e-12)


def _flax_stack(num_layers):
  class FlaxStack(nn.Module):
    @nn.compact
    def __call__(self, x):
      finals = []
      for k in range(num_layers):
        cell = nn.OptimizedLSTMCell(H, name=f"cell_{k}")
        carry, x = nn.RNN(cell, return_carry=True)(x)
        finals.append(carry)
      return x, tuple(finals)

  return FlaxStack()


def test_parity_with_flax_optimized_lstm_cell():
  x = jax.random.normal(jax.random.key(2), (B, T, D))
  flax_model = _flax_stack(2)
  flax_params = flax_model.init(jax.random.key(3), x)["params"]
  ours = params_from_flax([flax_params["cell_0"], flax_params["cell_1"]])
  model = LSTM(features=H, num_layers=2)

  def flax_loss(p, x):
    out, finals = flax_model.apply({"params": p}, x)
    return jnp.sum(out**2) + sum(jnp.sum(c * h) for c, h in finals)

  def our_loss(p, x):
    out, finals = model.apply({"params": p}, x)
    return jnp.sum(out**2) + sum(jnp.sum(c * h) for c, h in finals)

  out_f, finals_f = flax_model.apply({"params": flax_params}, x)
  out_o, finals_o = model.apply({"params": ours}, x)
  np.testing.assert_allclose(out_o, out_f, rtol=1e-5, atol=1e-6)
  for (cf, hf), (co, ho) in zip(finals_f, finals_o):  # both carries are (c, h)
    np.testing.assert_allclose(co, cf, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ho, hf, rtol=1e-5, atol=1e-6)

  gf_p, gf_x = jax.grad(flax_loss, argnums=(0, 1))(flax_params, x)
  go_p, go_x = jax.grad(our_loss, argnums=(0, 1))(ours, x)
  np.testing.assert_allclose(go_x, gf_x, rtol=1e-4, atol=1e-6)
  # Concatenation is linear, so converting Flax's gradients gives ours.
  gf_as_ours = params_from_flax([gf_p["cell_0"], gf_p["cell_1"]])
  for k in ("layer_0", "layer_1"):
    for name in ("w_input", "w_recurrent", "bias"):
      np.testing.assert_allclose(
        go_p[k][name],
        gf_as_ours[k][name],
        rtol=1e-4,
        atol=1e-6,
        err_msg=f"{k}/{name}",
      )


def test_jit_equals_eager():
  model = LSTM(features=H, num_layers=2, peepholes=True)
  x = jax.random.normal(jax.random.key(4), (B, T, D))
  params = _init(model, x)
  eager = model.apply({"params": params}, x)
  jitted = jax.jit(model.apply)({"params": params}, x)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
    eager,
    jitted,
  )


@pytest.mark.parametrize("peepholes", [False, True])
def test_masking_equals_truncation(peepholes):
  model = LSTM(
    features=H, num_layers=2, peepholes=peepholes, initializer="torch"
  )
  x = jax.random.normal(jax.random.key(5), (B, T, D))
  params = _init(model, x)
  lengths = jnp.array([T, 2, 0])
  carries = tuple(
    (jnp.full((B, H), 0.1 * k), jnp.full((B, H), -0.2 * k)) for k in (1, 2)
  )
  out, finals = model.apply({"params": params}, x, carries, seq_lengths=lengths)
  for b, n in enumerate(lengths.tolist()):
    one = tuple((c[b : b + 1], h[b : b + 1]) for c, h in carries)
    if n == 0:  # nothing to read: the final state is the initial one
      want_finals = one
    else:
      want_out, want_finals = model.apply(
        {"params": params}, x[b : b + 1, :n], one
      )
      np.testing.assert_allclose(out[b, :n], want_out[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out[b, n:], 0.0)
    for (c, h), (wc, wh) in zip(finals, want_finals):
      np.testing.assert_allclose(c[b], wc[0], rtol=1e-6, atol=1e-6)
      np.testing.assert_allclose(h[b], wh[0], rtol=1e-6, atol=1e-6)
  # A mask with the same prefix gives the same result.
  mask = lstm.lengths_to_mask(lengths, T)
  out_m, _ = model.apply({"params": params}, x, carries, mask=mask)
  np.testing.assert_array_equal(out_m, out)


def test_traced_seq_lengths_work_under_jit_vmap_grad_and_scan():
  # The range check needs concrete values; traced lengths skip it instead of
  # failing with a ConcretizationTypeError.
  model = LSTM(features=H, num_layers=2)
  x = jax.random.normal(jax.random.key(6), (B, T, D))
  params = {"params": _init(model, x)}
  lengths = jnp.array([T, 2, 0])
  want, _ = model.apply(params, x, seq_lengths=lengths)

  def run(l):
    return model.apply(params, x, seq_lengths=l)[0]

  np.testing.assert_allclose(jax.jit(run)(lengths), want, atol=1e-6)
  np.testing.assert_allclose(
    jax.jit(lambda x: run((x[:, :, 0] > -99).sum(1) - lengths * 0))(x),
    model.apply(params, x)[0],
    atol=1e-6,
  )
  by_row = jax.vmap(
    lambda x1, l1: model.apply(params, x1[None], seq_lengths=l1[None])[0][0]
  )(x, lengths)
  np.testing.assert_allclose(by_row, want, atol=1e-6)
  _, scanned = jax.lax.scan(lambda c, l: (c, run(l)), 0, lengths[None])
  np.testing.assert_allclose(scanned[0], want, atol=1e-6)
  grads = jax.jit(
    jax.grad(lambda p, l: model.apply(p, x, seq_lengths=l)[0].sum())
  )(params, lengths)
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  # Concrete lengths are still checked, even inside a jitted function.
  with pytest.raises(ValueError, match=r"\[0, 5\]"):
    jax.jit(lambda x: model.apply(params, x, seq_lengths=np.array([1, 9, 2])))(
      x
    )


def test_shapes_dtypes_and_parameter_names():
  model = LSTM(features=H, num_layers=3, peepholes=True)
  x = jnp.zeros((B, T, D), jnp.bfloat16)
  params = _init(model, x)
  assert set(params) == {"layer_0", "layer_1", "layer_2"}
  assert params["layer_0"]["w_input"].shape == (D, 4 * H)
  assert params["layer_1"]["w_input"].shape == (H, 4 * H)
  assert params["layer_2"]["w_recurrent"].shape == (H, 4 * H)
  assert params["layer_0"]["bias"].shape == (4 * H,)
  assert params["layer_0"]["w_peephole"].shape == (3, H)
  out, finals = model.apply({"params": params}, jnp.zeros((B, T, D)))
  assert out.shape == (B, T, H) and out.dtype == jnp.float32
  assert len(finals) == 3
  assert all(c.shape == h.shape == (B, H) for c, h in finals)


def test_fed_nothing_runs_from_initial_carries():
  model = LSTM(features=H, num_layers=2)
  carries = tuple((jnp.ones((B, H)), jnp.ones((B, H))) for _ in range(2))
  params = model.init(jax.random.key(0), None, carries, num_steps=4)["params"]
  assert "w_input" not in params["layer_0"]
  out, _ = model.apply({"params": params}, None, carries, num_steps=4)
  assert out.shape == (B, 4, H)
  # Fed nothing is the same as fed zeros through zero input weights.
  zeros_in = {
    "layer_0": dict(params["layer_0"], w_input=jnp.zeros((D, 4 * H))),
    "layer_1": params["layer_1"],
  }
  out_z, _ = model.apply({"params": zeros_in}, jnp.zeros((B, 4, D)), carries)
  np.testing.assert_allclose(out, out_z, rtol=1e-6)


@pytest.mark.parametrize(
  "call, match",
  [
    (lambda m, p: m.apply(p, jnp.zeros((B, D))), "rank 2"),
    (lambda m, p: m.apply(p, jnp.zeros((B, T, D + 1))), "expect 4"),
    (
      lambda m, p: m.apply(
        p, jnp.zeros((B, T, D)), seq_lengths=jnp.array([1, 2, T + 1])
      ),
      r"\[0, 5\]",
    ),
    (
      lambda m, p: m.apply(
        p, jnp.zeros((B, T, D)), seq_lengths=jnp.array([1, -1, 2])
      ),
      r"\[0, 5\]",
    ),
    (
      lambda m, p: m.apply(
        p, jnp.zeros((B, T, D)), seq_lengths=jnp.array([1.0, 2.0, 3.0])
      ),
      "integers",
    ),
    (
      lambda m, p: m.apply(
        p, jnp.zeros((B, T, D)), mask=jnp.ones((B, T + 1), bool)
      ),
      "mask",
    ),
    (
      lambda m, p: m.apply(
        p, jnp.zeros((B, T, D)), [(jnp.zeros((B, H)), jnp.zeros((B, H)))]
      ),
      "per layer",
    ),
  ],
)
def test_bad_input_gets_a_clear_error(call, match):
  model = LSTM(features=H, num_layers=2)
  params = model.init(jax.random.key(0), jnp.zeros((B, T, D)))
  with pytest.raises(ValueError, match=match):
    call(model, params)


def test_bad_configuration_gets_a_clear_error():
  x = jnp.zeros((B, T, D))
  with pytest.raises(ValueError, match="features"):
    LSTM(features=0).init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="activation"):
    LSTM(features=H, activation_fn="swishy").init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="initializer"):
    LSTM(features=H, initializer="glorot").init(jax.random.key(0), x)


def test_a_layer_fed_nothing_needs_a_carry():
  params = lstm.init_layer(jax.random.key(0), None, H)
  with pytest.raises(ValueError, match="needs an initial carry"):
    lstm.scan_layer(params, None, None, num_steps=T)

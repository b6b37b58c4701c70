"""Tests of the ConvLSTM: numpy reference, Flax parity, backward pass."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_unsup import lstm
from lstm_unsup.lstm import ConvLSTM, conv, conv_params_from_flax
from tests.lstm.recurrence_test import (
  _all_eqns,
  _assert_trees_close,
  _fed_nothing_grads,
  _stack_loss,
)

# A grid that is not square catches swapped height and width.
B, T, Hg, Wg, C, F = 2, 3, 5, 4, 2, 3


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def numpy_conv(x_NxHxWxC, w_kxkxCxG):
  """Cross-correlation with SAME padding (more at the end for even k), as a
  plain sum over the kernel's offsets."""
  kh, kw = w_kxkxCxG.shape[:2]
  pads = [(0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)]
  xp = np.pad(x_NxHxWxC, pads)
  N, H, W, _ = x_NxHxWxC.shape
  out = np.zeros((N, H, W, w_kxkxCxG.shape[-1]))
  for dy in range(kh):
    for dx in range(kw):
      out += xp[:, dy : dy + H, dx : dx + W] @ w_kxkxCxG[dy, dx]
  return out


def numpy_conv_lstm(layers, x_BxTxHxWxC, carries):
  """A plain float64 loop of Shi et al.'s eq. 3, written from the equations
  (gate order i, f, g, o; peepholes on c_{t-1} for i, f and on c_t for o)."""
  x = np.asarray(x_BxTxHxWxC, np.float64)
  finals = []
  for k, p in enumerate(layers):
    p = {n: np.asarray(a, np.float64) for n, a in p.items()}
    Fk = p["w_recurrent"].shape[-1] // 4
    c, h = (np.asarray(a, np.float64) for a in carries[k])
    outs = []
    for t in range(x.shape[1]):
      z = numpy_conv(x[:, t], p["w_input"]) + numpy_conv(h, p["w_recurrent"])
      z = z + p["bias"]
      zi, zf, zg, zo = (z[..., j * Fk : (j + 1) * Fk] for j in range(4))
      if "w_peephole" in p:
        zi = zi + p["w_peephole"][0] * c
        zf = zf + p["w_peephole"][1] * c
      c = _sigmoid(zf) * c + _sigmoid(zi) * np.tanh(zg)
      if "w_peephole" in p:
        zo = zo + p["w_peephole"][2] * c
      h = _sigmoid(zo) * np.tanh(c)
      outs.append(h)
    finals.append((c, h))
    x = np.stack(outs, axis=1)
  return x, finals


def _carries(num_layers=2, scale=1.0):
  keys = jax.random.split(jax.random.key(10), (num_layers, 2))
  return tuple(
    tuple(scale * jax.random.normal(k, (B, Hg, Wg, F)) for k in pair)
    for pair in keys
  )


def _model(**kwargs):
  fields = dict(
    features=F, kernel_size=(3, 3), num_layers=2, initializer="torch"
  )
  return ConvLSTM(**dict(fields, **kwargs))


def _x(key=1, dtype=jnp.float32):
  return jax.random.normal(jax.random.key(key), (B, T, Hg, Wg, C), dtype)


@pytest.mark.parametrize(
  "peepholes, kernel", [(False, (3, 3)), (True, (3, 3)), (True, (2, 3))]
)
def test_matches_numpy_reference_in_float64(peepholes, kernel):
  with jax.enable_x64(True):
    model = _model(
      peepholes=peepholes, kernel_size=kernel, param_dtype=jnp.float64
    )
    x = _x(dtype=jnp.float64)
    params = model.init(jax.random.key(0), x)["params"]
    params = jax.tree.map(lambda a: a + 0.1, params)  # nonzero biases
    carries = jax.tree.map(lambda a: a.astype(jnp.float64), _carries())
    out, finals = model.apply({"params": params}, x, carries)
    layers = [params["layer_0"], params["layer_1"]]
    ref_out, ref_finals = numpy_conv_lstm(layers, x, carries)
    assert out.dtype == jnp.float64 and out.shape == (B, T, Hg, Wg, F)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    for (c, h), (rc, rh) in zip(finals, ref_finals):
      np.testing.assert_allclose(c, rc, rtol=1e-12, atol=1e-12)
      np.testing.assert_allclose(h, rh, rtol=1e-12, atol=1e-12)


def _swap_gates(layer, a, b):
  """The layer with gate blocks a and b (0..3 = i, f, g, o) exchanged."""
  out = dict(layer)
  for name in ("w_input", "w_recurrent", "bias"):
    blocks = list(jnp.split(layer[name], 4, axis=-1))
    blocks[a], blocks[b] = blocks[b], blocks[a]
    out[name] = jnp.concatenate(blocks, axis=-1)
  return out


@pytest.mark.parametrize(
  "break_it",
  [
    lambda p: _swap_gates(p, 0, 1),  # input and forget gates
    lambda p: _swap_gates(p, 2, 3),  # candidate and output gate
    lambda p: dict(p, w_recurrent=jnp.zeros_like(p["w_recurrent"])),
    lambda p: dict(p, w_peephole=p["w_peephole"][::-1]),  # i and o peepholes
  ],
  ids=["swap i f", "swap g o", "no hidden conv", "swap peepholes"],
)
def test_the_reference_check_has_teeth(break_it):
  # A cell with two gates swapped, without the hidden-state convolution or
  # with the wrong peepholes computes something the reference tells apart
  # by far more than the test's tolerance.
  with jax.enable_x64(True):
    model = _model(peepholes=True, num_layers=1, param_dtype=jnp.float64)
    x = _x(dtype=jnp.float64)
    params = model.init(jax.random.key(0), x)["params"]
    params = jax.tree.map(lambda a: a + 0.1, params)
    carries = jax.tree.map(lambda a: a.astype(jnp.float64), _carries()[:1])
    out, _ = model.apply({"params": params}, x, carries)
    broken = [break_it(params["layer_0"])]
    ref_out, _ = numpy_conv_lstm(broken, x, carries)
    assert np.abs(np.asarray(out) - ref_out).max() > 1e-3


def test_conv_step_is_one_step_of_the_loop():
  model = _model(peepholes=True)
  x = _x()
  params = model.init(jax.random.key(0), x)["params"]
  layers = [params["layer_0"], params["layer_1"]]
  carries = _carries()
  out, finals = model.apply({"params": params}, x[:, :1], carries)
  inp = x[:, 0]
  for layer, carry, (c, h) in zip(layers, carries, finals):
    got_c, got_h = lstm.conv_step(layer, carry, inp)
    np.testing.assert_allclose(got_c, c, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_h, h, rtol=1e-6, atol=1e-6)
    inp = got_h
  np.testing.assert_allclose(inp, out[:, 0], rtol=1e-6, atol=1e-6)


def _flax_stack(num_layers, kernel):
  class FlaxStack(nn.Module):
    @nn.compact
    def __call__(self, x):
      finals = []
      for k in range(num_layers):
        cell = nn.ConvLSTMCell(F, kernel_size=kernel, name=f"cell_{k}")
        carry, x = nn.RNN(cell, return_carry=True)(x)
        finals.append(carry)
      return x, tuple(finals)

  return FlaxStack()


def _flax_grads_as_ours(g):
  """Flax's gradients in our layout: each of its two biases gets the whole
  gradient of our one bias, so ours equals either (here: ih's)."""

  def ifgo(a):
    i, g_, f, o = jnp.split(a, 4, axis=-1)
    return jnp.concatenate([i, f, g_, o], axis=-1)

  return {
    "w_input": ifgo(g["ih"]["kernel"]),
    "w_recurrent": ifgo(g["hh"]["kernel"]),
    "bias": ifgo(g["ih"]["bias"]),
    "bias_hh": ifgo(g["hh"]["bias"]),
  }


@pytest.mark.parametrize("kernel", [(3, 3), (2, 3)])
def test_parity_with_flax_conv_lstm_cell(kernel):
  x = _x(2)
  flax_model = _flax_stack(2, kernel)
  flax_params = flax_model.init(jax.random.key(3), x)["params"]
  # Nonzero Flax biases: their sum (and Flax's +1) must land in ours.
  flax_params = jax.tree.map(
    lambda a: a + 0.05 if a.ndim == 1 else a, flax_params
  )
  ours = conv_params_from_flax([flax_params["cell_0"], flax_params["cell_1"]])
  model = ConvLSTM(features=F, kernel_size=kernel, num_layers=2)

  def loss(model, p, x):
    out, finals = model.apply({"params": p}, x)
    return jnp.sum(out**2) + sum(jnp.sum(c * h) for c, h in finals)

  out_f, finals_f = flax_model.apply({"params": flax_params}, x)
  out_o, finals_o = model.apply({"params": ours}, x)
  np.testing.assert_allclose(out_o, out_f, rtol=1e-5, atol=1e-6)
  for (cf, hf), (co, ho) in zip(finals_f, finals_o):  # both carries (c, h)
    np.testing.assert_allclose(co, cf, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ho, hf, rtol=1e-5, atol=1e-6)

  grad = functools.partial(jax.grad, argnums=(0, 1))
  gf_p, gf_x = grad(functools.partial(loss, flax_model))(flax_params, x)
  go_p, go_x = grad(functools.partial(loss, model))(ours, x)
  np.testing.assert_allclose(go_x, gf_x, rtol=1e-4, atol=1e-5)
  for k in ("0", "1"):
    want = _flax_grads_as_ours(gf_p[f"cell_{k}"])
    got = go_p[f"layer_{k}"]
    for name in ("w_input", "w_recurrent", "bias"):
      np.testing.assert_allclose(
        got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=f"{k}/{name}"
      )
    np.testing.assert_allclose(got["bias"], want["bias_hh"], atol=1e-5)


def test_jit_equals_eager():
  model = _model(peepholes=True)
  x = _x(4)
  params = model.init(jax.random.key(0), x)
  eager = model.apply(params, x)
  jitted = jax.jit(model.apply)(params, x)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6),
    eager,
    jitted,
  )


def test_masking_keeps_the_state_past_each_end():
  model = _model(peepholes=True)
  x = _x(5)
  params = model.init(jax.random.key(0), x)
  carries = _carries(scale=0.3)
  lengths = jnp.array([T, 1])
  out, finals = model.apply(params, x, carries, seq_lengths=lengths)
  row = tuple((c[1:], h[1:]) for c, h in carries)
  want_out, want_finals = model.apply(params, x[1:, :1], row)
  np.testing.assert_allclose(out[1, :1], want_out[0], rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(out[1, 1:], 0.0)
  for (c, h), (wc, wh) in zip(finals, want_finals):
    np.testing.assert_allclose(c[1], wc[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h[1], wh[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
  "peepholes, masked, carried, kernel",
  [
    (False, False, True, (3, 3)),
    (True, True, True, (3, 3)),
    (True, True, False, (2, 3)),  # from zeros: the first step is skipped
    (True, False, False, (3, 3)),
  ],
)
def test_custom_backward_pass_equals_autodiff(
  peepholes, masked, carried, kernel
):
  kwargs = dict(peepholes=peepholes, kernel_size=kernel)
  fast, slow = _model(**kwargs), _model(custom_grad=False, **kwargs)
  x = _x(7)
  params = fast.init(jax.random.key(0), x)["params"]
  carries = _carries(scale=0.5) if carried else None
  lengths = jnp.array([T, 1]) if masked else None
  weights = jax.random.normal(jax.random.key(8), (B, T, Hg, Wg, F))

  def grads(model):
    loss = functools.partial(_stack_loss, model)
    argnums = (0, 1, 2) if carried else (0, 1)
    return jax.grad(loss, argnums=argnums)(params, x, carries, lengths, weights)

  want, got = grads(slow), grads(fast)
  _assert_trees_close(got, want)
  assert np.abs(np.asarray(got[0]["layer_0"]["w_recurrent"])).sum() > 0


@pytest.mark.parametrize("masked", [False, True])
def test_custom_backward_pass_equals_autodiff_when_fed_nothing(masked):
  # A stack fed nothing adds its bias inside the loop, and the custom
  # backward pass sums the bias gradient over batch and grid itself.
  kwargs = dict(peepholes=True)
  fast, slow = _model(**kwargs), _model(custom_grad=False, **kwargs)
  carries = _carries(scale=0.5)
  params = fast.init(jax.random.key(3), None, carries, num_steps=T)["params"]
  assert "w_input" not in params["layer_0"]
  params = jax.tree.map(lambda a: a + 0.1, params)
  lengths = jnp.array([T, 1]) if masked else None
  weights = jax.random.normal(jax.random.key(8), (B, T, Hg, Wg, F))
  got, want = _fed_nothing_grads(fast, slow, params, carries, lengths, weights)
  _assert_trees_close(got, want)


def test_the_weight_gradient_is_one_convolution_after_the_loop():
  # The custom backward pass: inside the reverse loop, one convolution per
  # step (the gradient with respect to h); the recurrent weight gradient of
  # all steps is one convolution outside it. Autodiff makes it per step.
  x = _x()
  carries = _carries()[:1]

  def conv_counts(custom_grad):
    model = _model(num_layers=1, custom_grad=custom_grad)
    params = model.init(jax.random.key(0), x)
    grad = jax.grad(lambda p: model.apply(p, x, carries)[0].sum())
    eqns = list(_all_eqns(jax.make_jaxpr(grad)(params).jaxpr.eqns))
    inside = {"forward": 0, "backward": 0}
    for loop in (e for e in eqns if e.primitive.name == "scan"):
      kind = "backward" if loop.params["reverse"] else "forward"
      inside[kind] += _count_convs(_all_eqns(loop.params["jaxpr"].eqns))
    return inside, _count_convs(eqns) - sum(inside.values())

  inside, outside = conv_counts(True)
  assert inside == {"forward": 1, "backward": 1} and outside == 3, outside
  inside, outside = conv_counts(False)
  assert inside == {"forward": 1, "backward": 2} and outside == 2, outside


def _count_convs(eqns) -> int:
  return sum(e.primitive.name == "conv_general_dilated" for e in eqns)


def test_bfloat16_convolutions_keep_float32_parameters_and_state():
  f32, bf16 = _model(peepholes=True), _model(peepholes=True, dtype=jnp.bfloat16)
  x = _x(9)
  params = f32.init(jax.random.key(0), x)["params"]
  carries = _carries(scale=0.3)
  want, _ = f32.apply({"params": params}, x, carries)
  out, finals = bf16.apply({"params": params}, x, carries)
  assert out.dtype == jnp.float32
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(finals))
  np.testing.assert_allclose(out, want, atol=5e-2)
  assert not np.array_equal(out, want)
  grads = jax.grad(_stack_loss, argnums=1)(bf16, params, x, carries, None, 1.0)
  assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))


def test_shapes_and_parameter_names():
  model = _model(num_layers=3, peepholes=True, kernel_size=(5, 3))
  params = model.init(jax.random.key(0), _x())["params"]
  assert set(params) == {"layer_0", "layer_1", "layer_2"}
  assert params["layer_0"]["w_input"].shape == (5, 3, C, 4 * F)
  assert params["layer_1"]["w_input"].shape == (5, 3, F, 4 * F)
  assert params["layer_2"]["w_recurrent"].shape == (5, 3, F, 4 * F)
  assert params["layer_0"]["bias"].shape == (4 * F,)
  assert params["layer_0"]["w_peephole"].shape == (3, Hg, Wg, F)


def test_initializers_and_the_forget_bias():
  x = _x()
  for name in lstm.INITIALIZERS:
    params = _model(initializer=name, forget_bias=1.0).init(
      jax.random.key(0), x
    )["params"]["layer_0"]
    bias = np.asarray(params["bias"])
    if name != "torch":  # zero biases, plus 1 on the forget gate
      np.testing.assert_array_equal(bias, np.repeat([0, 1, 0, 0], F))
  flax_like = conv.init_conv_layer(jax.random.key(0), C, 64, (5, 5))
  std = float(np.std(flax_like["w_recurrent"]))
  assert abs(std - 1 / np.sqrt(5 * 5 * 64)) < 0.1 / np.sqrt(5 * 5 * 64)


@pytest.mark.parametrize(
  "call, match",
  [
    (lambda m, p: m.apply(p, jnp.zeros((B, T, 4 * Wg))), "rank 3"),
    (lambda m, p: m.apply(p, jnp.zeros((B, T, Hg, Wg, C + 1))), "expect 2"),
    (lambda m, p: m.apply(p, jnp.zeros((B, T, Hg + 1, Wg, C))), "peepholes"),
    (
      lambda m, p: m.apply(p, _x(), [(jnp.zeros((B, F)),) * 2] * 2),
      r"\(2, 5, 4, 3\)",
    ),
  ],
)
def test_bad_input_gets_a_clear_error(call, match):
  model = _model(peepholes=True)
  params = model.init(jax.random.key(0), _x())
  with pytest.raises(ValueError, match=match):
    call(model, params)


def test_bad_configuration_gets_a_clear_error():
  with pytest.raises(ValueError, match="kernel_size"):
    _model(kernel_size=(0, 3)).init(jax.random.key(0), _x())
  with pytest.raises(ValueError, match="initializer"):
    _model(initializer="glorot").init(jax.random.key(0), _x())
  with pytest.raises(ValueError, match="ConvLSTMCell"):
    conv_params_from_flax([{"ii": {}}])

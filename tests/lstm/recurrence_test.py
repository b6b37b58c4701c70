"""Tests of the time loop (lstm/recurrence.py): its hand-written backward
pass against autodiff, the zero start, bfloat16 matmuls and the backward
matmul's form."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_unsup import lstm
from lstm_unsup.lstm import LSTM, recurrence

B, T, D, H = 3, 5, 4, 6


def _init(model, x, key=0):
  return model.init(jax.random.key(key), x)["params"]


def _two_layer_carries():
  return tuple(
    (jnp.full((B, H), 0.3), jnp.full((B, H), -0.1 * k)) for k in (1, 2)
  )


def _stack_loss(model, params, x, carries, lengths, weights):
  """A scalar that reads every output and both parts of every final carry."""
  out, finals = model.apply({"params": params}, x, carries, seq_lengths=lengths)
  return jnp.sum(out * weights) + sum(
    jnp.sum(c**2) + jnp.sum(jnp.sin(h)) for c, h in finals
  )


# Two float32 computations of the same gradient sum the same terms in other
# orders. Each element sums at most a few hundred terms here (batch x steps,
# x kernel taps for a ConvLSTM), whose rounding grows about as sqrt(n) eps
# of the terms' scale: about 20 eps for n = 400. An element that cancels to
# near zero keeps that error in absolute terms, so the tolerance is relative
# to the leaf's largest value, with a margin of 3x on the estimate. The
# instruction set (AVX2, AVX-512, NEON) changes the order, not this bound.
GRAD_EPS = 64 * float(np.finfo(np.float32).eps)  # 7.6e-6


def _assert_trees_close(got, want):
  """Leaf by leaf: custom gradients against autodiff, to float32 rounding
  of sums in another order (GRAD_EPS of each leaf's largest value)."""

  def close(g, w):
    scale = float(np.max(np.abs(np.asarray(w)))) if np.size(w) else 0.0
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=GRAD_EPS * scale)

  jax.tree.map(close, got, want)


@pytest.fixture(params=["hoisted transpose", "by transpose"])
def backward_form(request, monkeypatch):
  """Runs a test with each form of the backward recurrent matmul: at these
  small sizes the threshold would otherwise pick the first alone."""
  by_transpose = request.param == "by transpose"
  monkeypatch.setattr(
    recurrence, "BY_TRANSPOSE_MIN_BYTES", 0 if by_transpose else 2**62
  )
  return request.param


@pytest.mark.parametrize(
  "peepholes, act, masked",
  [(False, "tanh", False), (True, "tanh", True), (True, "relu", False)],
)
def test_custom_backward_pass_equals_autodiff(
  peepholes, act, masked, backward_form
):
  x = jax.random.normal(jax.random.key(7), (B, T, D))
  carries = _two_layer_carries()
  kwargs = dict(
    features=H,
    num_layers=2,
    peepholes=peepholes,
    activation_fn=act,
    initializer="torch",
  )
  fast, slow = LSTM(**kwargs), LSTM(custom_grad=False, **kwargs)
  params = _init(fast, x)
  lengths = jnp.array([T, 3, 0]) if masked else None
  weights = jax.random.normal(jax.random.key(8), (B, T, H))

  def grads(model):
    loss = functools.partial(_stack_loss, model)
    return jax.grad(loss, argnums=(0, 1, 2))(
      params, x, carries, lengths, weights
    )

  want, got = grads(slow), grads(fast)
  _assert_trees_close(got, want)
  assert np.abs(np.asarray(got[0]["layer_0"]["w_recurrent"])).sum() > 0


@pytest.mark.parametrize("masked", [False, True])
def test_custom_backward_pass_equals_autodiff_when_fed_nothing(
  masked, backward_form
):
  # A stack fed nothing adds its bias inside the loop, and the custom
  # backward pass sums the bias gradient itself.
  carries = _two_layer_carries()
  kwargs = dict(features=H, num_layers=2, peepholes=True, initializer="torch")
  fast, slow = LSTM(**kwargs), LSTM(custom_grad=False, **kwargs)
  params = fast.init(jax.random.key(3), None, carries, num_steps=T)["params"]
  params = jax.tree.map(lambda a: a + 0.1, params)  # nonzero biases
  lengths = jnp.array([T, 3, 0]) if masked else None
  weights = jax.random.normal(jax.random.key(8), (B, T, H))
  got, want = _fed_nothing_grads(fast, slow, params, carries, lengths, weights)
  _assert_trees_close(got, want)
  assert np.abs(np.asarray(got[0]["layer_0"]["bias"])).sum() > 0


def _fed_nothing_grads(fast, slow, params, carries, lengths, weights):
  """Gradients with respect to (params, carries) of a loss of a stack fed
  nothing for as many steps as `weights` has: by `fast` (custom) and by
  `slow` (autodiff)."""
  steps = weights.shape[1]

  def loss(model, params, carries):
    out, finals = model.apply(
      {"params": params}, None, carries, num_steps=steps, seq_lengths=lengths
    )
    return jnp.sum(out * weights) + sum(jnp.sum(c**2) for c, _ in finals)

  grad = functools.partial(jax.grad, argnums=(0, 1))
  return tuple(
    grad(functools.partial(loss, model))(params, carries)
    for model in (fast, slow)
  )


@pytest.mark.parametrize("masked", [False, True])
def test_a_stack_started_from_zeros_skips_no_gradient(masked, backward_form):
  # Without initial carries, each layer runs its first step without the
  # recurrent matmul (h is zero there). Outputs, final carries and gradients
  # must equal those of explicit zero carries, with either backward pass.
  x = jax.random.normal(jax.random.key(7), (B, T, D))
  kwargs = dict(features=H, num_layers=2, peepholes=True, initializer="torch")
  fast, slow = LSTM(**kwargs), LSTM(custom_grad=False, **kwargs)
  params = _init(fast, x)
  lengths = jnp.array([T, 1, 0]) if masked else None
  zeros = tuple((jnp.zeros((B, H)), jnp.zeros((B, H))) for _ in range(2))
  weights = jax.random.normal(jax.random.key(8), (B, T, H))

  def value_and_grads(model, carries):
    loss = functools.partial(_stack_loss, model)
    return jax.value_and_grad(loss, argnums=(0, 1))(
      params, x, carries, lengths, weights
    )

  want = value_and_grads(slow, zeros)
  for model in (fast, slow):
    got = value_and_grads(model, None)
    _assert_trees_close(got, want)
  # The skipped matmul: one fewer recurrent product in the loop than steps.
  eqns = jax.make_jaxpr(lambda p: fast.apply({"params": p}, x))(params).eqns
  loops = [e for e in _all_eqns(eqns) if e.primitive.name == "scan"]
  assert sorted(e.params["length"] for e in loops) == [T - 1, T - 1]


def _all_eqns(eqns):
  """Every equation, those inside loops and custom rules included."""
  for eqn in eqns:
    yield eqn
    for param in eqn.params.values():
      for sub in param if isinstance(param, (list, tuple)) else [param]:
        if hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
          yield from _all_eqns(sub.jaxpr.eqns)
        elif hasattr(sub, "eqns"):
          yield from _all_eqns(sub.eqns)


def _dot_dtypes(fn, *args) -> set[tuple[str, ...]]:
  """(lhs, rhs, result) dtypes of every matmul in fn's jaxpr, loops included."""
  found = set()
  for eqn in _all_eqns(jax.make_jaxpr(fn)(*args).jaxpr.eqns):
    if eqn.primitive.name == "dot_general":
      avals = [v.aval for v in (*eqn.invars, *eqn.outvars)]
      found.add(tuple(str(a.dtype) for a in avals))
  return found


def test_bfloat16_matmuls_keep_float32_parameters_and_state():
  kwargs = dict(features=H, num_layers=2, peepholes=True, initializer="torch")
  f32, bf16 = LSTM(**kwargs), LSTM(dtype=jnp.bfloat16, **kwargs)
  x = jax.random.normal(jax.random.key(9), (B, T, D))
  carries = tuple(
    (jnp.full((B, H), 0.2), jnp.full((B, H), -0.1 * k)) for k in (1, 2)
  )
  params = _init(f32, x)
  # The same parameters (checkpoint keys, dtypes and values) either way.
  jax.tree.map(np.testing.assert_array_equal, _init(bf16, x), params)
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(params))
  want_out, want_finals = f32.apply({"params": params}, x, carries)
  out, finals = bf16.apply({"params": params}, x, carries)
  assert out.dtype == jnp.float32
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(finals))
  jax.tree.map(
    lambda g, w: np.testing.assert_allclose(g, w, atol=3e-2),
    (out, finals),
    (want_out, want_finals),
  )
  assert not np.array_equal(out, want_out)  # it did compute in bfloat16
  # Every matmul takes bfloat16 operands and gives float32.
  dots = _dot_dtypes(lambda p: bf16.apply({"params": p}, x, carries), params)
  assert dots == {("bfloat16", "bfloat16", "float32")}, dots


@pytest.mark.parametrize("masked", [False, True])
def test_bfloat16_custom_backward_pass_is_close_to_autodiff(
  masked, backward_form
):
  x = jax.random.normal(jax.random.key(7), (B, T, D))
  carries = _two_layer_carries()
  kwargs = dict(
    features=H,
    num_layers=2,
    peepholes=True,
    initializer="torch",
    dtype=jnp.bfloat16,
  )
  fast, slow = LSTM(**kwargs), LSTM(custom_grad=False, **kwargs)
  params = _init(fast, x)
  mask = lstm.lengths_to_mask(jnp.array([T, 3, 0]), T) if masked else None
  weights = jax.random.normal(jax.random.key(8), (B, T, H))

  def loss(model, params, x, carries):
    out, finals = model.apply({"params": params}, x, carries, mask=mask)
    return jnp.sum(out * weights) + sum(
      jnp.sum(c**2) + jnp.sum(jnp.sin(h)) for c, h in finals
    )

  grad = functools.partial(jax.grad, argnums=(0, 1, 2))
  want = grad(functools.partial(loss, slow))(params, x, carries)
  got = grad(functools.partial(loss, fast))(params, x, carries)

  def check(g, w):
    assert g.dtype == w.dtype == jnp.float32
    assert np.all(np.isfinite(g))
    # Both round to bfloat16 in different places: compare to the scale.
    np.testing.assert_allclose(g, w, atol=2e-2 * np.abs(w).max())

  jax.tree.map(check, got, want)
  assert np.abs(np.asarray(got[0]["layer_0"]["w_recurrent"])).sum() > 0
  # The custom backward pass's own matmuls run in bfloat16 too.
  dots = _dot_dtypes(grad(functools.partial(loss, fast)), params, x, carries)
  assert ("bfloat16", "bfloat16", "float32") in dots, dots


@pytest.mark.parametrize("hidden, transposed", [(256, True), (512, False)])
def test_large_recurrent_weights_are_not_transposed_in_the_backward_pass(
  hidden, transposed
):
  # From 4 MiB (H=512 in float32) the backward matmul contracts the weights
  # as they are stored; smaller ones get one hoisted transposed copy.
  w = jnp.zeros((hidden, 4 * hidden))
  dz = jnp.ones((2, 4 * hidden))

  def times_w_T(w, dz):
    return recurrence._recurrent_backward_matmul(w)(dz)

  eqns = jax.make_jaxpr(times_w_T)(w, dz).eqns
  weight_transposes = [
    e
    for e in eqns
    if e.primitive.name == "transpose" and e.invars[0].aval.shape == w.shape
  ]
  assert bool(weight_transposes) == transposed
  w = jax.random.normal(jax.random.key(0), w.shape)
  want = dz @ w.T  # float32 sums of 4H terms, in another order
  np.testing.assert_allclose(times_w_T(w, dz), want, rtol=1e-5, atol=1e-3)

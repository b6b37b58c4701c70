"""The LSTM's time loop: `jax.lax.scan` over one layer, and stacked layers.

Masked steps (past a sequence's end) keep the carry and output zeros. The
backward pass is our own reverse scan (`custom_grad=True`): it computes the
per-step gradients of the pre-activations, and then the recurrent weight
gradient of all steps as one large matmul, instead of the T small
accumulations that autodiff of the loop makes; large recurrent weights are
contracted as stored there, never transposed. It equals JAX's autodiff of
the same loop (`custom_grad=False`), which the tests check. A layer fed
inputs and started from zeros (`run_stack` without initial carries) skips
its first step's recurrent matmul, whose input is zero, in both passes.

The products with the weights are a `Product`: `DENSE` (matmuls, the
paper's FC-LSTM) by default, or `conv.CONV` (convolutions over a grid, the
ConvLSTM); the loop, masking and backward pass are the same for both.
"""

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from lstm_unsup.lstm.cell import (
  Array,
  Carry,
  LayerParams,
  activation,
  matmul,
  pointwise,
  project_inputs,
)


class Product(NamedTuple):
  """How a layer multiplies by its weights (plain functions).

  project(params, x_Nx...xD): input-side pre-activations, bias included, of
    inputs with any leading axes (time and batch);
  recurrent(h, w_recurrent): the recurrent pre-activations;
  transposed(w_recurrent): dz -> the gradient of `recurrent` with respect
    to h (whatever is loop-invariant, such as a transposed copy, is made
    once, outside the loop);
  weight_gradient(hs_TxBx..., dzs_TxBx..., w_recurrent): the gradient of
    w_recurrent summed over all steps and sequences, in one operation.
  """

  project: Callable
  recurrent: Callable
  transposed: Callable
  weight_gradient: Callable


def _masked(valid_Bx1, new, old):
  return new if valid_Bx1 is None else jnp.where(valid_Bx1, new, old)


def _per_sequence(valid_B: Array | None, ndim: int) -> Array | None:
  """The mask of one step, shaped to broadcast over a state of rank ndim."""
  if valid_B is None:
    return None
  return valid_B.reshape(valid_B.shape + (1,) * (ndim - 1))


def per_gate(bias_G: Array, ndim: int) -> Array:
  """One bias per gate, shaped to broadcast over an array of rank ndim."""
  return bias_G.reshape((1,) * (ndim - 1) + bias_G.shape)


def _forward_scan(
  w_rec, peep, bias, gates_x, c0, h0, mask, fns, unroll, steps, product
):
  """The time loop; also returns what the backward pass needs.

  A layer fed nothing has `gates_x=None` and runs `steps` steps on the
  pre-activations bias + h W_recurrent, so no T x B x 4H array of biases is
  made; otherwise `bias` is None (it is inside gates_x). A layer fed inputs
  and started from zeros (`c0 = h0 = None`) runs its first step outside the
  loop and without the recurrent matmul, whose input h is zero there.
  """

  def advance(carry, inputs, recurrent=True):
    c, h = carry
    gx_BxG, valid_B = inputs
    valid = _per_sequence(valid_B, h.ndim)
    z = per_gate(bias, h.ndim) if gx_BxG is None else gx_BxG
    if recurrent:
      z = z + product.recurrent(h, w_rec)
    c_new, h_new = pointwise(z, c, peep, *fns)
    c_new = _masked(valid, c_new.astype(c.dtype), c)
    h_new = _masked(valid, h_new.astype(h.dtype), h)
    out = _masked(valid, h_new, jnp.zeros_like(h_new))
    return (c_new, h_new), (out, z, c, h)

  def loop(carry, xs, length):
    return jax.lax.scan(advance, carry, xs, length=length, unroll=unroll)

  if c0 is not None:
    (c, h), (outs, zs, cs, hs) = loop((c0, h0), (gates_x, mask), steps)
    return (c, h, outs), (None, zs, cs, hs)
  G = gates_x.shape[-1]
  start = zero_carry(gates_x.shape[1:-1], G // 4, sum_dtype(w_rec))
  first, rest = _split_first_step((gates_x, mask))
  carry, (out0, z0, _, _) = advance(start, first, recurrent=False)
  (c, h), (outs, zs, cs, hs) = loop(carry, rest, None)
  outs = jnp.concatenate([out0[None], outs])
  return (c, h, outs), (z0, zs, cs, hs)


def _split_first_step(tree):
  """(step 0, steps 1..T-1) of time-major arrays; None stays None."""
  return jax.tree.map(lambda a: a[0], tree), jax.tree.map(lambda a: a[1:], tree)


# Recurrent weights at least this large are never transposed in the backward
# pass (`_matmul_by_transpose`). Smaller ones fit in the CPU's cache, where
# the transposed copy is cheap and the plain form measured as fast or faster
# (H=256: 5% faster at batch 80); at H >= 512 the new form was faster (H=1024,
# batch 16: 12 to 14%). Tests set it to 0 to check that form at small sizes.
BY_TRANSPOSE_MIN_BYTES = 4 * 2**20


def _matmul_by_transpose(dz_BxG: Array, w_HxG: Array) -> Array:
  """dz @ w.T, computed as (w @ dz.T).T so that w is never transposed.

  On the CPU, XLA would otherwise copy w transposed once per step (16 MiB at
  H=1024, and transposes run far below memory speed there) or have the
  matmul library repack it at every time step; this way only the small
  B x 4H operand is repacked. The barrier keeps XLA from folding the outer
  transpose back into the matmul, which would restore the slow form.
  """
  # As cell.matmul: dz cast to w's dtype, the result in the wider dtype.
  dh_HxB = jnp.dot(
    w_HxG,
    dz_BxG.T.astype(w_HxG.dtype),
    preferred_element_type=jnp.promote_types(dz_BxG.dtype, w_HxG.dtype),
  )
  return jax.lax.optimization_barrier(dh_HxB).T


def _recurrent_backward_matmul(w_rec: Array) -> Callable[[Array], Array]:
  """dz -> dz @ w_rec.T, in the faster form for w_rec's size."""
  if w_rec.size * w_rec.dtype.itemsize >= BY_TRANSPOSE_MIN_BYTES:
    return functools.partial(_matmul_by_transpose, w_HxG=w_rec)
  w_rec_T = w_rec.T  # hoisted: one transpose for all steps
  return lambda dz: matmul(dz, w_rec_T)


def _dense_weight_gradient(hs_TxBxH, dzs_TxBxG, w_rec):
  # Like the forward matmuls: operands in w_rec's dtype, sums wider.
  hs, dzs = (a.astype(w_rec.dtype) for a in (hs_TxBxH, dzs_TxBxG))
  return jnp.einsum(
    "tbh,tbg->hg", hs, dzs, preferred_element_type=sum_dtype(w_rec)
  )


# The FC-LSTM's products: matmuls over the last axis.
DENSE = Product(
  project=project_inputs,
  recurrent=matmul,
  transposed=_recurrent_backward_matmul,
  weight_gradient=_dense_weight_gradient,
)


@functools.partial(jax.custom_vjp, nondiff_argnums=(7, 8, 9, 10))
def _scan_custom(
  w_rec, peep, bias, gates_x, c0, h0, mask, fns, unroll, steps, product
):
  args = (w_rec, peep, bias, gates_x, c0, h0, mask, fns, unroll, steps)
  return _forward_scan(*args, product)[0]


def _scan_custom_fwd(
  w_rec, peep, bias, gates_x, c0, h0, mask, fns, unroll, steps, product
):
  args = (w_rec, peep, bias, gates_x, c0, h0, mask, fns, unroll, steps)
  out, (z0, zs, cs, hs) = _forward_scan(*args, product)
  return out, (w_rec, peep, bias, z0, zs, cs, hs, mask)


def _scan_custom_bwd(fns, unroll, steps, product, residuals, cotangents):
  """Reverse scan for the per-step gradients; the weight gradient of all
  steps is then one large matmul (or convolution) instead of T small
  accumulations."""
  w_rec, peep, bias, z0, zs, cs, hs, mask = residuals
  dc_T, dh_T, douts = cotangents
  times_w_rec_T = product.transposed(w_rec)

  def back(carry, inputs, recurrent=True):
    dc, dh, dpeep = carry
    z, c_prev, dout, valid_B = inputs
    valid = _per_sequence(valid_B, dc.ndim)
    # A masked step changed nothing: its gradients pass straight through.
    live_dc = _masked(valid, dc, jnp.zeros_like(dc))
    live_dh = _masked(valid, dh + dout, jnp.zeros_like(dh))
    _, vjp = jax.vjp(lambda z, c, p: pointwise(z, c, p, *fns), z, c_prev, peep)
    dz, dc_prev, dp = vjp((live_dc, live_dh))
    # From zeros, the first step's h was no input: nothing to pass back.
    dh_prev = _masked(valid, times_w_rec_T(dz), dh) if recurrent else None
    dc_prev = _masked(valid, dc_prev, dc)
    if dpeep is not None:
      dpeep = dpeep + dp
    return (dc_prev, dh_prev, dpeep), dz

  zero_start = z0 is not None
  if zero_start:
    first, (douts, mask) = _split_first_step((douts, mask))
  dpeep0 = None if peep is None else jnp.zeros_like(peep)
  (dc0, dh0, dpeep), dzs = jax.lax.scan(
    back,
    (dc_T, dh_T, dpeep0),
    (zs, cs, douts, mask),
    reverse=True,
    unroll=unroll,
  )
  # The result goes back in w_rec's dtype, as custom_vjp requires. A zero
  # start's first step read h = 0, so its term is left out.
  dw_rec = product.weight_gradient(hs, dzs, w_rec)
  if zero_start:
    zeros = jnp.zeros_like(dc0)
    inputs = (z0, zeros, *first)
    (_, _, dpeep), dz0 = back((dc0, dh0, dpeep), inputs, recurrent=False)
    dzs = jnp.concatenate([dz0[None], dzs])
    dc0 = dh0 = None  # the zeros it started from are no inputs
  if bias is None:  # fed inputs: the bias gradient flows through gates_x
    dbias, dgates_x = None, dzs
  else:
    every_axis_but_gates = tuple(range(dzs.ndim - 1))
    dbias, dgates_x = dzs.sum(every_axis_but_gates).astype(bias.dtype), None
  return (dw_rec.astype(w_rec.dtype), dpeep, dbias, dgates_x, dc0, dh0, None)


_scan_custom.defvjp(_scan_custom_fwd, _scan_custom_bwd)


def scan_layer(
  params: LayerParams,
  gates_x_TxBxG: Array | None,
  carry: Carry | None,
  mask_TxB: Array | None = None,
  *,
  num_steps: int | None = None,
  unroll: int = 1,
  custom_grad: bool = True,
  gate_fn: Callable = jax.nn.sigmoid,
  activation_fn: Callable = jnp.tanh,
  product: Product = DENSE,
) -> tuple[Carry, Array]:
  """Runs one layer over time. Masked steps keep the carry and output 0.

  `gates_x_TxBxG` holds the input-side pre-activations, bias included
  (`cell.project_inputs`); None runs a layer fed nothing for `num_steps`
  steps (or the mask's length), on its bias alone. `carry=None` starts a
  layer fed inputs from zeros, and skips its first recurrent matmul.

  With `custom_grad` the backward pass is our own reverse scan (the same
  gradients as autodiff, checked by the tests, but faster); without it JAX
  differentiates the loop.
  """
  fed_nothing = gates_x_TxBxG is None
  if fed_nothing and num_steps is None:
    if mask_TxB is None:
      raise ValueError("A layer fed nothing needs num_steps or a mask.")
    num_steps = mask_TxB.shape[0]
  if carry is None:
    if fed_nothing:
      raise ValueError("A layer fed nothing needs an initial carry.")
    carry = (None, None)
  args = (
    params["w_recurrent"],
    params.get("w_peephole"),
    params["bias"] if fed_nothing else None,
    gates_x_TxBxG,
    *carry,
    mask_TxB,
    (gate_fn, activation_fn),
    unroll,
    num_steps if fed_nothing else None,
    product,
  )
  if custom_grad:
    c, h, outs = _scan_custom(*args)
  else:
    c, h, outs = _forward_scan(*args)[0]
  return (c, h), outs


def sum_dtype(w_rec: Array):
  """float32, or the weights' dtype if wider: the dtype of the state and of
  sums over steps, even when the weights are narrower."""
  return jnp.promote_types(w_rec.dtype, jnp.float32)


def zero_carry(
  batch_size: int | Sequence[int], features: int, dtype=jnp.float32
) -> Carry:
  """Zeros of shape B x features, or B x H x W x features for a batch
  shape (B, H, W) (a ConvLSTM's grid)."""
  batch_shape = (batch_size,) if isinstance(batch_size, int) else batch_size
  zeros = jnp.zeros((*batch_shape, features), dtype)
  return zeros, zeros


def run_stack(
  layers: Sequence[LayerParams],
  x_BxTxD: Array | None,
  initial_carries: Sequence[Carry] | None = None,
  mask_BxT: Array | None = None,
  *,
  num_steps: int | None = None,
  batch_size: int | Sequence[int] | None = None,
  gate_fn: str | Callable = "sigmoid",
  activation_fn: str | Callable = "tanh",
  unroll: int = 1,
  custom_grad: bool = True,
  product: Product = DENSE,
) -> tuple[Array, tuple[Carry, ...]]:
  """Runs stacked layers; layer k reads layer k-1's h.

  Args:
    layers: one parameter dict per layer, bottom first.
    x_BxTxD: inputs (B x T x H x W x C for `conv.CONV`), or None for a
      stack fed nothing (then give `num_steps` and, without
      `initial_carries`, `batch_size`: B, or (B, H, W) for a ConvLSTM).
    initial_carries: one (c, h) per layer; zeros when omitted.
    mask_BxT: True where a step is real. Masked steps leave every layer's
      carry unchanged and give zero outputs.
    product: how the layers multiply by their weights (`DENSE`, the
      default, or `conv.CONV`).

  Returns:
    The top layer's outputs h (B x T x H) and every layer's final (c, h).
  """
  kwargs = dict(
    gate_fn=activation(gate_fn),
    activation_fn=activation(activation_fn),
    product=product,
  )
  H = layers[0]["w_recurrent"].shape[-1] // 4
  state_dtype = sum_dtype(layers[0]["w_recurrent"])
  if x_BxTxD is not None:
    num_steps = x_BxTxD.shape[1]
  elif initial_carries is not None:
    batch_size = initial_carries[0][0].shape[:-1]
  if initial_carries is None:
    # Layers fed inputs start from None, zeros that skip the first recurrent
    # matmul (`scan_layer`); a stack fed nothing starts from real zeros.
    start = (
      None if x_BxTxD is not None else zero_carry(batch_size, H, state_dtype)
    )
    initial_carries = [start for _ in layers]
  mask_TxB = None if mask_BxT is None else jnp.swapaxes(mask_BxT, 0, 1)
  h_TxBxH = None
  finals = []
  for k, (params, carry) in enumerate(zip(layers, initial_carries)):
    gates_x = None  # a layer fed nothing adds its bias inside the loop
    if k == 0 and x_BxTxD is not None:
      # Projected in the inputs' own order and then put time-major: the
      # weight gradient then reads the inputs where they are, instead of
      # keeping a time-major copy of them alive until the backward pass.
      gates_x = jnp.swapaxes(product.project(params, x_BxTxD), 0, 1)
    elif h_TxBxH is not None:
      gates_x = product.project(params, h_TxBxH)
    carry, h_TxBxH = scan_layer(
      params,
      gates_x,
      None if carry is None else tuple(carry),
      mask_TxB,
      num_steps=num_steps,
      unroll=unroll,
      custom_grad=custom_grad,
      **kwargs,
    )
    finals.append(carry)
  return jnp.swapaxes(h_TxBxH, 0, 1), tuple(finals)


def lengths_to_mask(seq_lengths_B: Array, num_steps: int) -> Array:
  """B x T mask, True for the first seq_lengths[b] steps of sequence b."""
  return jnp.arange(num_steps)[None, :] < jnp.asarray(seq_lengths_B)[:, None]

"""The paper's LSTM: plain functions over explicit parameters, scanned in time.

One layer's parameters are a dict of arrays (gate order i, f, g, o, as in the
authors' code and in Flax):

  w_input      D x 4H   input weights (absent for a layer that is fed nothing)
  w_recurrent  H x 4H   recurrent weights
  bias         4H       one bias per gate
  w_peephole   3 x H    peepholes for i, f, o (only when peepholes are on)

The cell (Srivastava et al. 2015, eq. 1-5; Graves 2013), with z the gate
pre-activations x W_input + h W_recurrent + b split into four blocks:

  i = gate(z_i + p_i * c)        f = gate(z_f + p_f * c)
  g = act(z_g)                   c' = f * c + i * g
  o = gate(z_o + p_o * c')       h' = o * act(c')

The input and forget gates peek at the previous cell c; the output gate at the
new cell c', as in the authors' CUDA kernel. The carry is (c, h), as in Flax.

Speed: whenever the inputs of all time steps are known ahead, their
projection is one large matmul outside `jax.lax.scan`; the loop body only
does the H x 4H recurrent matmul.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Carry = tuple[Array, Array]  # (c_BxH, h_BxH)
LayerParams = dict[str, Array]

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
  "sigmoid": jax.nn.sigmoid,
  "tanh": jnp.tanh,
  "relu": jax.nn.relu,
  "identity": lambda x: x,
}
INITIALIZERS = ("authors", "flax", "torch")


def activation(name: str | Callable[[Array], Array]) -> Callable:
  """Looks up an activation by name (or passes a callable through)."""
  if callable(name):
    return name
  if name not in ACTIVATIONS:
    raise ValueError(
      f"Unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}."
    )
  return ACTIVATIONS[name]


# ----------------------------------------------------------------------------
# Initialisation.


def _uniform(scale: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)

  return init


def _blockwise_orthogonal(key, shape, dtype=jnp.float32):
  """Flax's recurrent init: an orthogonal H x H matrix per gate."""
  H, G = shape
  keys = jax.random.split(key, G // H)
  ortho = jax.nn.initializers.orthogonal()
  return jnp.concatenate([ortho(k, (H, H), dtype) for k in keys], axis=1)


def _weight_inits(initializer: str, features: int):
  """(input, recurrent, peephole, bias) initialisers of one scheme."""
  if initializer == "authors":  # util.py of the authors' code
    return _uniform(0.01), _uniform(0.01), _uniform(0.1), nn.initializers.zeros
  if initializer == "flax":  # flax.linen.LSTMCell defaults
    return (
      nn.initializers.lecun_normal(),
      _blockwise_orthogonal,
      nn.initializers.zeros,
      nn.initializers.zeros,
    )
  if initializer == "torch":  # torch.nn.LSTM: U(+-1/sqrt(H)) everywhere
    u = _uniform(1.0 / np.sqrt(features))
    return u, u, u, u
  raise ValueError(
    f"Unknown initializer {initializer!r}; choose one of {INITIALIZERS}."
  )


def init_layer(
  key: Array,
  input_size: int | None,
  features: int,
  *,
  peepholes: bool = False,
  initializer: str = "authors",
  forget_bias: float = 0.0,
  dtype: Any = jnp.float32,
) -> LayerParams:
  """Parameters of one layer; `input_size=None` makes a layer fed nothing."""
  w_in, w_rec, w_peep, b = _weight_inits(initializer, features)
  k_in, k_rec, k_peep, k_b = jax.random.split(key, 4)
  G = 4 * features
  params = {}
  if input_size is not None:
    params["w_input"] = w_in(k_in, (input_size, G), dtype)
  params["w_recurrent"] = w_rec(k_rec, (features, G), dtype)
  bias = b(k_b, (G,), dtype)
  params["bias"] = bias.at[features : 2 * features].add(forget_bias)
  if peepholes:
    params["w_peephole"] = w_peep(k_peep, (3, features), dtype)
  return params


# ----------------------------------------------------------------------------
# The cell and its time loop.


def project_inputs(params: LayerParams, x_TxBxD: Array | None, T: int, B: int):
  """Input-side gate pre-activations of all steps in one matmul: T x B x 4H."""
  bias = params["bias"]
  if x_TxBxD is None:
    return jnp.broadcast_to(bias, (T, B, bias.shape[0]))
  if "w_input" not in params:
    raise ValueError(
      "This LSTM layer was created without input weights (it is fed "
      "nothing); call it without inputs."
    )
  w = params["w_input"]
  return (
    jnp.einsum("tbd,dg->tbg", x_TxBxD.astype(w.dtype), w) + bias[None, None]
  )


def gate_values(
  z_BxG: Array,
  c_BxH: Array,
  peephole_3xH: Array | None,
  gate_fn: Callable = jax.nn.sigmoid,
  activation_fn: Callable = jnp.tanh,
) -> tuple[Array, ...]:
  """Every quantity of one step, from the full pre-activations z:
  (i, f, g, o, c', h'), each B x H."""
  z_i, z_f, z_g, z_o = jnp.split(z_BxG, 4, axis=-1)
  if peephole_3xH is not None:
    p_i, p_f, p_o = peephole_3xH[:, None]  # each 1 x H
    z_i = z_i + p_i * c_BxH
    z_f = z_f + p_f * c_BxH
  i, f, g = gate_fn(z_i), gate_fn(z_f), activation_fn(z_g)
  c_new = f * c_BxH + i * g
  if peephole_3xH is not None:
    z_o = z_o + p_o * c_new
  o = gate_fn(z_o)
  return i, f, g, o, c_new, o * activation_fn(c_new)


def pointwise(
  z_BxG: Array,
  c_BxH: Array,
  peephole_3xH: Array | None,
  gate_fn: Callable = jax.nn.sigmoid,
  activation_fn: Callable = jnp.tanh,
) -> Carry:
  """The elementwise part of the cell: the new (c, h) from z and c."""
  values = gate_values(z_BxG, c_BxH, peephole_3xH, gate_fn, activation_fn)
  return values[4], values[5]


def cell(
  params: LayerParams,
  carry: Carry,
  gates_x_BxG: Array,
  *,
  gate_fn: Callable = jax.nn.sigmoid,
  activation_fn: Callable = jnp.tanh,
) -> Carry:
  """One step of the cell, given the input-side pre-activations."""
  c_BxH, h_BxH = carry
  z_BxG = gates_x_BxG + h_BxH @ params["w_recurrent"]
  return pointwise(
    z_BxG, c_BxH, params.get("w_peephole"), gate_fn, activation_fn
  )


def step(
  params: LayerParams,
  carry: Carry,
  x_BxD: Array | None,
  **cell_kwargs,
) -> Carry:
  """One step from raw inputs (for loops that feed back their own outputs)."""
  B = carry[0].shape[0]
  x = None if x_BxD is None else x_BxD[None]
  gates_x = project_inputs(params, x, 1, B)[0]
  return cell(params, carry, gates_x, **cell_kwargs)


def _masked(valid_Bx1, new, old):
  return new if valid_Bx1 is None else jnp.where(valid_Bx1, new, old)


def _forward_scan(w_rec, peep, gates_x, c0, h0, mask, fns, unroll):
  """The time loop; also returns what the backward pass needs."""

  def body(carry, inputs):
    c, h = carry
    gx_BxG, valid_B = inputs
    valid = None if valid_B is None else valid_B[:, None]
    z = gx_BxG + h @ w_rec
    c_new, h_new = pointwise(z, c, peep, *fns)
    c_new = _masked(valid, c_new.astype(c.dtype), c)
    h_new = _masked(valid, h_new.astype(h.dtype), h)
    out = _masked(valid, h_new, jnp.zeros_like(h_new))
    return (c_new, h_new), (out, z, c, h)

  (c, h), (outs, zs, cs, hs) = jax.lax.scan(
    body, (c0, h0), (gates_x, mask), unroll=unroll
  )
  return (c, h, outs), (zs, cs, hs)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def _scan_custom(w_rec, peep, gates_x, c0, h0, mask, fns, unroll):
  return _forward_scan(w_rec, peep, gates_x, c0, h0, mask, fns, unroll)[0]


def _scan_custom_fwd(w_rec, peep, gates_x, c0, h0, mask, fns, unroll):
  out, (zs, cs, hs) = _forward_scan(
    w_rec, peep, gates_x, c0, h0, mask, fns, unroll
  )
  return out, (w_rec, peep, zs, cs, hs, mask)


def _scan_custom_bwd(fns, unroll, residuals, cotangents):
  """Reverse scan for the per-step gradients; the weight gradient of all
  steps is then one large matmul instead of T small accumulations."""
  w_rec, peep, zs, cs, hs, mask = residuals
  dc_T, dh_T, douts = cotangents
  w_rec_T = w_rec.T

  def body(carry, inputs):
    dc, dh, dpeep = carry
    z, c_prev, dout, valid_B = inputs
    valid = None if valid_B is None else valid_B[:, None]
    # A masked step changed nothing: its gradients pass straight through.
    live_dc = _masked(valid, dc, jnp.zeros_like(dc))
    live_dh = _masked(valid, dh + dout, jnp.zeros_like(dh))
    _, vjp = jax.vjp(lambda z, c, p: pointwise(z, c, p, *fns), z, c_prev, peep)
    dz, dc_prev, dp = vjp((live_dc, live_dh))
    dh_prev = _masked(valid, dz @ w_rec_T, dh)
    dc_prev = _masked(valid, dc_prev, dc)
    if dpeep is not None:
      dpeep = dpeep + dp
    return (dc_prev, dh_prev, dpeep), dz

  dpeep0 = None if peep is None else jnp.zeros_like(peep)
  (dc0, dh0, dpeep), dzs = jax.lax.scan(
    body,
    (dc_T, dh_T, dpeep0),
    (zs, cs, douts, mask),
    reverse=True,
    unroll=unroll,
  )
  dw_rec = jnp.einsum("tbh,tbg->hg", hs, dzs.astype(hs.dtype))
  return dw_rec.astype(w_rec.dtype), dpeep, dzs, dc0, dh0, None


_scan_custom.defvjp(_scan_custom_fwd, _scan_custom_bwd)


def scan_layer(
  params: LayerParams,
  gates_x_TxBxG: Array,
  carry: Carry,
  mask_TxB: Array | None = None,
  *,
  unroll: int = 1,
  custom_grad: bool = True,
  gate_fn: Callable = jax.nn.sigmoid,
  activation_fn: Callable = jnp.tanh,
) -> tuple[Carry, Array]:
  """Runs one layer over time. Masked steps keep the carry and output 0.

  With `custom_grad` the backward pass is our own reverse scan (the same
  gradients as autodiff, checked by the tests, but faster); without it JAX
  differentiates the loop.
  """
  args = (
    params["w_recurrent"],
    params.get("w_peephole"),
    gates_x_TxBxG,
    *carry,
    mask_TxB,
    (gate_fn, activation_fn),
    unroll,
  )
  if custom_grad:
    c, h, outs = _scan_custom(*args)
  else:
    c, h, outs = _forward_scan(*args)[0]
  return (c, h), outs


def zero_carry(batch_size: int, features: int, dtype=jnp.float32) -> Carry:
  zeros = jnp.zeros((batch_size, features), dtype)
  return zeros, zeros


def run_stack(
  layers: Sequence[LayerParams],
  x_BxTxD: Array | None,
  initial_carries: Sequence[Carry] | None = None,
  mask_BxT: Array | None = None,
  *,
  num_steps: int | None = None,
  batch_size: int | None = None,
  gate_fn: str | Callable = "sigmoid",
  activation_fn: str | Callable = "tanh",
  unroll: int = 1,
  custom_grad: bool = True,
) -> tuple[Array, tuple[Carry, ...]]:
  """Runs stacked layers; layer k reads layer k-1's h.

  Args:
    layers: one parameter dict per layer, bottom first.
    x_BxTxD: inputs, or None for a stack fed nothing (then give `num_steps`
      and, without `initial_carries`, `batch_size`).
    initial_carries: one (c, h) per layer; zeros when omitted.
    mask_BxT: True where a step is real. Masked steps leave every layer's
      carry unchanged and give zero outputs.

  Returns:
    The top layer's outputs h (B x T x H) and every layer's final (c, h).
  """
  kwargs = dict(
    gate_fn=activation(gate_fn), activation_fn=activation(activation_fn)
  )
  H = layers[0]["w_recurrent"].shape[0]
  # State stays in float32 (or wider) even when weights are narrower.
  state_dtype = jnp.promote_types(layers[0]["w_recurrent"].dtype, jnp.float32)
  if x_BxTxD is not None:
    batch_size, num_steps = x_BxTxD.shape[:2]
  elif initial_carries is not None:
    batch_size = initial_carries[0][0].shape[0]
  if initial_carries is None:
    initial_carries = [zero_carry(batch_size, H, state_dtype) for _ in layers]
  mask_TxB = None if mask_BxT is None else jnp.swapaxes(mask_BxT, 0, 1)
  h_TxBxH = None if x_BxTxD is None else jnp.swapaxes(x_BxTxD, 0, 1)
  finals = []
  for params, carry in zip(layers, initial_carries):
    gates_x = project_inputs(params, h_TxBxH, num_steps, batch_size)
    carry, h_TxBxH = scan_layer(
      params,
      gates_x,
      tuple(carry),
      mask_TxB,
      unroll=unroll,
      custom_grad=custom_grad,
      **kwargs,
    )
    finals.append(carry)
  return jnp.swapaxes(h_TxBxH, 0, 1), tuple(finals)


def lengths_to_mask(seq_lengths_B: Array, num_steps: int) -> Array:
  """B x T mask, True for the first seq_lengths[b] steps of sequence b."""
  return jnp.arange(num_steps)[None, :] < jnp.asarray(seq_lengths_B)[:, None]


# ----------------------------------------------------------------------------
# Flax Linen wrapper.


class _LayerParams(nn.Module):
  """Holds one layer's parameters under readable names."""

  input_size: int | None
  features: int
  peepholes: bool
  initializer: str
  forget_bias: float
  param_dtype: Any

  @nn.compact
  def __call__(self) -> LayerParams:
    # Create the whole dict with one key, then register each array, so the
    # parameter paths read layer_k/w_input, layer_k/w_recurrent, ...
    def make(name):
      def init(key):
        return init_layer(
          key,
          self.input_size,
          self.features,
          peepholes=self.peepholes,
          initializer=self.initializer,
          forget_bias=self.forget_bias,
          dtype=self.param_dtype,
        )[name]

      return self.param(name, init)

    names = ["w_recurrent", "bias"]
    if self.input_size is not None:
      names.insert(0, "w_input")
    if self.peepholes:
      names.append("w_peephole")
    return {name: make(name) for name in names}


class LSTM(nn.Module):
  """A stack of `num_layers` LSTM layers of `features` units.

  Call with `x_BxTxD` (or None, with `num_steps`, for a stack fed nothing) and
  optionally `initial_carries` (one (c, h) per layer), `seq_lengths` (B ints)
  or `mask` (B x T bools). Returns `(outputs_BxTxH, final_carries)`, where
  final_carries holds each layer's (c, h) at its sequence's own last step.
  """

  features: int
  num_layers: int = 1
  peepholes: bool = False
  initializer: str = "authors"  # "authors" | "flax" | "torch"
  forget_bias: float = 0.0
  gate_fn: str = "sigmoid"
  activation_fn: str = "tanh"
  unroll: int = 1
  custom_grad: bool = True  # our backward pass; False: JAX's autodiff
  param_dtype: Any = jnp.float32

  def _check_config(self):
    if self.features < 1 or self.num_layers < 1:
      raise ValueError(
        f"LSTM needs features >= 1 and num_layers >= 1; got "
        f"features={self.features}, num_layers={self.num_layers}."
      )
    activation(self.gate_fn), activation(self.activation_fn)
    _weight_inits(self.initializer, self.features)

  def layer_params(self, input_size: int | None) -> list[LayerParams]:
    return [
      _LayerParams(
        input_size=input_size if k == 0 else self.features,
        features=self.features,
        peepholes=self.peepholes,
        initializer=self.initializer,
        forget_bias=self.forget_bias,
        param_dtype=self.param_dtype,
        name=f"layer_{k}",
      )()
      for k in range(self.num_layers)
    ]

  @nn.compact
  def __call__(
    self,
    x_BxTxD: Array | None,
    initial_carries: Sequence[Carry] | None = None,
    seq_lengths: Array | None = None,
    mask: Array | None = None,
    *,
    num_steps: int | None = None,
  ) -> tuple[Array, tuple[Carry, ...]]:
    self._check_config()
    input_size = self._check_inputs(x_BxTxD, num_steps, initial_carries)
    self._check_params(input_size)
    layers = self.layer_params(input_size)
    B, T = self._batch_and_steps(x_BxTxD, num_steps, initial_carries)
    mask = self._check_mask(seq_lengths, mask, B, T)
    return run_stack(
      layers,
      x_BxTxD,
      initial_carries,
      mask,
      num_steps=T,
      batch_size=B,
      gate_fn=self.gate_fn,
      activation_fn=self.activation_fn,
      unroll=self.unroll,
      custom_grad=self.custom_grad,
    )

  # -- input checks: clear errors instead of tracebacks from inside JAX. --

  def _check_inputs(self, x, num_steps, initial_carries) -> int | None:
    if x is None:
      if num_steps is None or num_steps < 1:
        raise ValueError("An LSTM fed nothing needs num_steps >= 1.")
      if initial_carries is None:
        raise ValueError("An LSTM fed nothing needs initial_carries.")
      return None
    if x.ndim != 3:
      raise ValueError(
        f"LSTM inputs must have shape [batch, time, features] (x_BxTxD); got "
        f"an array of rank {x.ndim} with shape {tuple(x.shape)}."
      )
    if x.shape[1] < 1:
      raise ValueError(f"LSTM inputs have no time steps: {tuple(x.shape)}.")
    return x.shape[-1]

  def _check_params(self, input_size):
    if self.is_initializing() or not self.has_variable("params", "layer_0"):
      return
    have = self.variables["params"]["layer_0"].get("w_input")
    if input_size is not None and have is None:
      raise ValueError(
        "This LSTM was initialised without inputs (fed nothing); it cannot "
        "be applied to inputs."
      )
    if input_size is not None and have.shape[0] != input_size:
      raise ValueError(
        f"LSTM inputs have {input_size} features but the parameters "
        f"(layer_0/w_input) expect {have.shape[0]}."
      )

  def _batch_and_steps(self, x, num_steps, initial_carries):
    if x is not None:
      B, T = x.shape[:2]
    else:
      B, T = initial_carries[0][0].shape[0], num_steps
    if initial_carries is not None:
      if len(initial_carries) != self.num_layers:
        raise ValueError(
          f"initial_carries must hold one (c, h) per layer "
          f"({self.num_layers}); got {len(initial_carries)}."
        )
      for k, carry in enumerate(initial_carries):
        shapes = [tuple(a.shape) for a in carry]
        if len(carry) != 2 or any(s != (B, self.features) for s in shapes):
          raise ValueError(
            f"initial_carries[{k}] must be (c, h), each of shape "
            f"{(B, self.features)}; got shapes {shapes}."
          )
    return B, T

  def _check_mask(self, seq_lengths, mask, B, T) -> Array | None:
    if seq_lengths is not None and mask is not None:
      raise ValueError("Give seq_lengths or mask, not both.")
    if mask is not None:
      if tuple(mask.shape) != (B, T):
        raise ValueError(
          f"mask must have shape {(B, T)} (batch, time); got "
          f"{tuple(mask.shape)}."
        )
      return jnp.asarray(mask, bool)
    if seq_lengths is None:
      return None
    seq_lengths = jnp.asarray(seq_lengths)
    if seq_lengths.shape != (B,) or not jnp.issubdtype(
      seq_lengths.dtype, jnp.integer
    ):
      raise ValueError(
        f"seq_lengths must be {B} integers (one per sequence); got shape "
        f"{tuple(seq_lengths.shape)} of dtype {seq_lengths.dtype}."
      )
    if not isinstance(seq_lengths, jax.core.Tracer):
      lo, hi = int(seq_lengths.min()), int(seq_lengths.max())
      if lo < 0 or hi > T:
        raise ValueError(
          f"seq_lengths must lie in [0, {T}] (the number of time steps); "
          f"got values from {lo} to {hi}."
        )
    return lengths_to_mask(seq_lengths, T)


# ----------------------------------------------------------------------------
# Interoperability.


def params_from_flax(flax_params: Sequence[Any]) -> dict[str, LayerParams]:
  """Converts `flax.linen.OptimizedLSTMCell` parameters into ours.

  Args:
    flax_params: one entry per layer, bottom first: the cell's parameter dict
      (keys ii, if, ig, io, hi, hf, hg, ho), or the parameters of an
      `nn.RNN` around it (a dict with a single "cell" entry).

  Returns:
    Parameters for `LSTM(num_layers=len(flax_params)).apply({"params": ...})`.
  """
  ours = {}
  for k, layer in enumerate(flax_params):
    if "cell" in layer:
      layer = layer["cell"]
    missing = {"ii", "if", "ig", "io", "hi", "hf", "hg", "ho"} - set(layer)
    if missing:
      raise ValueError(
        f"Layer {k} is not an LSTMCell parameter dict: missing "
        f"{sorted(missing)}."
      )
    ours[f"layer_{k}"] = {
      "w_input": jnp.concatenate(
        [layer[f"i{g}"]["kernel"] for g in "ifgo"], axis=1
      ),
      "w_recurrent": jnp.concatenate(
        [layer[f"h{g}"]["kernel"] for g in "ifgo"], axis=1
      ),
      "bias": jnp.concatenate([layer[f"h{g}"]["bias"] for g in "ifgo"]),
    }
  return ours

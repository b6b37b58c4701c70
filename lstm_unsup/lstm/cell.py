"""The LSTM cell of the paper: plain functions over explicit parameters.

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

Precision: every matmul runs in its weights' dtype (the other operand is cast
to it) and accumulates in the state's dtype, so bfloat16 weights give
bfloat16 matmuls with float32 pre-activations, cells and outputs.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn  # initialisers only
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


def weight_initializers(initializer: str, features: int):
  """(input, recurrent, peephole, bias) initialisers of one scheme."""
  if initializer == "authors":  # util.py of the authors' code
    return _uniform(0.01), _uniform(0.01), _uniform(0.1), nn.initializers.zeros
  if initializer == "flax":  # flax.linen.LSTMCell's, zero peepholes
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
  initializer: str = "flax",
  forget_bias: float = 0.0,
  dtype: Any = jnp.float32,
  kernel_size: tuple[int, ...] = (),
  grid: tuple[int, ...] = (),
  initializers: Callable = weight_initializers,
) -> LayerParams:
  """Parameters of one layer; `input_size=None` makes a layer fed nothing.
  The default initializer is the module's (`LSTM`), Flax's LSTMCell's.
  A ConvLSTM's layer (`conv.init_conv_layer`) has weights of `kernel_size`
  x inputs x 4H, peepholes of 3 x `grid` x H, and its own `initializers`.
  """
  w_in, w_rec, w_peep, b = initializers(initializer, features)
  k_in, k_rec, k_peep, k_b = jax.random.split(key, 4)
  G = 4 * features
  params = {}
  if input_size is not None:
    params["w_input"] = w_in(k_in, (*kernel_size, input_size, G), dtype)
  params["w_recurrent"] = w_rec(k_rec, (*kernel_size, features, G), dtype)
  bias = b(k_b, (G,), dtype)
  params["bias"] = bias.at[features : 2 * features].add(forget_bias)
  if peepholes:
    params["w_peephole"] = w_peep(k_peep, (3, *grid, features), dtype)
  return params


# ----------------------------------------------------------------------------
# The cell and its time loop.


def matmul(x: Array, w: Array, out_dtype: Any = None) -> Array:
  """x @ w with x cast to w's dtype, accumulated and returned in `out_dtype`
  (default: the wider of x's and w's dtypes). With bfloat16 weights this is a
  bfloat16 matmul with a float32 result; with equal dtypes it is `x @ w`."""
  if out_dtype is None:
    out_dtype = jnp.promote_types(x.dtype, w.dtype)
  return jnp.dot(x.astype(w.dtype), w, preferred_element_type=out_dtype)


def project_inputs(
  params: LayerParams,
  x_NxD: Array | None,
  T: int | None = None,
  B: int | None = None,
) -> Array:
  """Input-side gate pre-activations, bias included, of inputs with any
  leading axes (time and batch, in either order): one matmul, N x 4H.
  A layer fed nothing (`x_NxD=None`) gets its bias broadcast to T x B x 4H.
  """
  bias = params["bias"]
  if x_NxD is None:
    return jnp.broadcast_to(bias, (T, B, bias.shape[0]))
  if "w_input" not in params:
    raise ValueError(
      "This LSTM layer was created without input weights (it is fed "
      "nothing); call it without inputs."
    )
  w = params["w_input"]
  # Flattened to one 2-D matmul: its weight gradient is then a 2-D matmul
  # too, which XLA runs on the CPU without copying the gradient transposed
  # first (it did for the gradient of a 3-D einsum, which sums two axes).
  gates_NxG = jnp.dot(
    x_NxD.reshape(-1, x_NxD.shape[-1]).astype(w.dtype),
    w,
    preferred_element_type=bias.dtype,
  )
  return (gates_NxG + bias[None]).reshape(x_NxD.shape[:-1] + bias.shape)


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
  z_BxG = gates_x_BxG + matmul(h_BxH, params["w_recurrent"])
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

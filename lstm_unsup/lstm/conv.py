"""The convolutional LSTM: plain functions over explicit parameters.

X. Shi et al., "Convolutional LSTM Network: A Machine Learning Approach for
Precipitation Nowcasting", NIPS 2015 (arXiv:1506.04214), eq. 3: the cell of
`cell.py` with its matmuls replaced by convolutions over a grid, which keeps
the encoder-predictor design of Srivastava et al. In this file's tensor
names H x W is the grid (height x width), C the input channels and F the
features (hidden channels) of a layer; G = 4F. One layer's parameters (gate
order i, f, g, o, as in `cell.py`):

  w_input      k x k x C x G   input convolution (absent if fed nothing)
  w_recurrent  k x k x F x G   hidden-state convolution
  bias         G               one bias per gate and feature
  w_peephole   3 x H x W x F   peepholes W_ci, W_cf, W_co (only when on)

With * a convolution (stride 1, SAME padding) and . an elementwise product:

  z = W_x * x + W_h * h + b
  i = gate(z_i + W_ci . c)       f = gate(z_f + W_cf . c)
  g = act(z_g)                   c' = f . c + i . g
  o = gate(z_o + W_co . c')      h' = o . act(c')

The elementwise part is `cell.pointwise`, unchanged: peepholes of the
state's shape broadcast over the batch. The time loop, masking, stacks and
the backward pass are `recurrence.py`'s, given `CONV`, this file's products:
the input convolution of all steps runs once, outside the loop, and the
custom backward pass takes the recurrent weight gradient of all steps as one
convolution after the reverse scan, instead of one per step.

Precision: as in `cell.py`, every convolution runs in its weights' dtype
and accumulates in the state's dtype.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn  # initialisers only
import jax
import jax.numpy as jnp
import numpy as np

from lstm_unsup.lstm.cell import (
  Array,
  Carry,
  LayerParams,
  init_layer,
  pointwise,
  weight_initializers,
)
from lstm_unsup.lstm.recurrence import Product, per_gate, run_stack, sum_dtype

# Inputs, kernels and outputs as the rest of JAX and Flax lay them out.
_LAYOUT = ("NHWC", "HWIO", "NHWC")


def same_padding(kernel_hw: Sequence[int]) -> tuple[tuple[int, int], ...]:
  """(low, high) padding of each spatial axis that keeps the grid's size at
  stride 1: `jax.lax`'s (and so Flax's) "SAME", larger high for even k."""
  return tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel_hw)


def conv(
  x_NxHxWxC: Array,
  w_kxkxCxG: Array,
  out_dtype: Any = None,
  padding: Sequence[tuple[int, int]] | None = None,
) -> Array:
  """x * w over the last three axes (any leading axes, such as time and
  batch, are one batch), with x cast to w's dtype and the sums in
  `out_dtype` (default: the wider of the two); SAME padding by default."""
  if out_dtype is None:
    out_dtype = jnp.promote_types(x_NxHxWxC.dtype, w_kxkxCxG.dtype)
  lead = x_NxHxWxC.shape[:-3]
  y = jax.lax.conv_general_dilated(
    x_NxHxWxC.reshape(-1, *x_NxHxWxC.shape[-3:]).astype(w_kxkxCxG.dtype),
    w_kxkxCxG,
    window_strides=(1, 1),
    padding=padding or same_padding(w_kxkxCxG.shape[:2]),
    dimension_numbers=_LAYOUT,
    preferred_element_type=out_dtype,
  )
  return y.reshape(lead + y.shape[1:])


def project_inputs(params: LayerParams, x_NxHxWxC: Array) -> Array:
  """Input-side gate pre-activations, bias included, of inputs with any
  leading axes: one convolution of all of them, N x H x W x G."""
  if "w_input" not in params:
    raise ValueError(
      "This ConvLSTM layer was created without input weights (it is fed "
      "nothing); call it without inputs."
    )
  bias = params["bias"]
  z = conv(x_NxHxWxC, params["w_input"], out_dtype=bias.dtype)
  return z + per_gate(bias, z.ndim)


def _transposed(w_kxkxFxG: Array) -> Callable[[Array], Array]:
  """dz -> the gradient of conv(h, w) with respect to h: dz convolved with
  w flipped in space, its channels swapped, and SAME's padding mirrored.
  The flipped copy is made once, outside the loop."""
  w_kxkxGxF = jnp.flip(w_kxkxFxG, (0, 1)).swapaxes(2, 3)
  padding = tuple((hi, lo) for lo, hi in same_padding(w_kxkxFxG.shape[:2]))
  return lambda dz: conv(dz, w_kxkxGxF, padding=padding)


def _weight_gradient(hs_TxBxHxWxF, dzs_TxBxHxWxG, w_kxkxFxG) -> Array:
  """The gradient of w in conv(h, w) summed over all steps and sequences,
  as one convolution: of h (padded as the forward pass pads it) with dz as
  the kernel, the T*B sequences as the contracted axis, h's features as the
  batch, and a k x k result. Operands in w's dtype, sums in float32 (or
  wider), like the forward convolutions."""
  hs, dzs = (
    a.reshape(-1, *a.shape[-3:]).astype(w_kxkxFxG.dtype)
    for a in (hs_TxBxHxWxF, dzs_TxBxHxWxG)
  )
  # h: (T*B) x H x W x F read as features x space x batch; dz: (T*B) x
  # H x W x G read as in x space x out; out: k x k x F x G.
  layout = ("CHWN", "IHWO", "HWNC")
  padding = same_padding(w_kxkxFxG.shape[:2])
  return jax.lax.conv_general_dilated(
    hs,
    dzs,
    (1, 1),
    padding,
    dimension_numbers=layout,
    preferred_element_type=sum_dtype(w_kxkxFxG),
  )


# The ConvLSTM's products, for `recurrence.run_stack` and `scan_layer`.
CONV = Product(
  project=project_inputs,
  recurrent=conv,
  transposed=_transposed,
  weight_gradient=_weight_gradient,
)


# ----------------------------------------------------------------------------
# Initialisation.


def _fan_in_uniform(key, shape, dtype=jnp.float32):
  """torch.nn.Conv2d's default: U(+-1/sqrt(fan in)), fan in = k * k * C."""
  bound = 1.0 / np.sqrt(np.prod(shape[:-1]))
  return jax.random.uniform(key, shape, dtype, -bound, bound)


def conv_initializers(initializer: str, features: int):
  """(input, recurrent, peephole, bias) initialisers of one scheme, for
  convolution kernels: `cell.weight_initializers` but for "flax", whose
  ConvLSTMCell has nn.Conv's LeCun-normal recurrent kernel (over k * k * F
  inputs), and "torch", torch.nn.Conv2d's U(+-1/sqrt(k * k * C)) for the
  kernels (torch.nn.LSTM's U(+-1/sqrt(F)) for the rest)."""
  w_in, w_rec, w_peep, b = weight_initializers(initializer, features)
  if initializer == "flax":
    w_rec = nn.initializers.lecun_normal()
  elif initializer == "torch":
    w_in = w_rec = _fan_in_uniform
  return w_in, w_rec, w_peep, b


def init_conv_layer(
  key: Array,
  input_channels: int | None,
  features: int,
  kernel_size: Sequence[int] = (5, 5),
  *,
  grid: Sequence[int] | None = None,
  peepholes: bool = False,
  initializer: str = "flax",
  forget_bias: float = 0.0,
  dtype: Any = jnp.float32,
) -> LayerParams:
  """Parameters of one layer (`cell.init_layer` with kernels);
  `input_channels=None` makes a layer fed nothing. Peepholes have the
  state's shape, so they need the `grid` (H, W)."""
  if peepholes and grid is None:
    raise ValueError("ConvLSTM peepholes need the grid (H, W) of the state.")
  return init_layer(
    key,
    input_channels,
    features,
    peepholes=peepholes,
    initializer=initializer,
    forget_bias=forget_bias,
    dtype=dtype,
    kernel_size=tuple(kernel_size),
    grid=tuple(grid or ()),
    initializers=conv_initializers,
  )


# ----------------------------------------------------------------------------
# One step, and stacks.


def conv_step(
  params: LayerParams, carry: Carry, x_BxHxWxC: Array | None, **cell_kwargs
) -> Carry:
  """One step from raw inputs (for loops that feed back their own outputs);
  None for a layer fed nothing. `cell_kwargs`: gate_fn, activation_fn."""
  c_BxHxWxF, h_BxHxWxF = carry
  if x_BxHxWxC is None:
    z = per_gate(params["bias"], h_BxHxWxF.ndim)
  else:
    z = project_inputs(params, x_BxHxWxC)
  z = z + conv(h_BxHxWxF, params["w_recurrent"])
  peephole = params.get("w_peephole")
  return pointwise(z, c_BxHxWxF, peephole, **cell_kwargs)


# `recurrence.run_stack` with convolutions: inputs B x T x H x W x C, states
# and outputs B x (T x) H x W x F; a stack fed nothing takes `batch_size`
# as (B, H, W) when it has no initial carries.
run_conv_stack = functools.partial(run_stack, product=CONV)

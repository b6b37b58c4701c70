"""The paper's LSTM as a Flax Linen module, and conversions.

The maths lives in plain functions over explicit parameters: the cell in
`cell.py`, the time loop in `recurrence.py`. `LSTM` is a thin wrapper that
holds one parameter dict per layer (`layer_k/{w_input, w_recurrent, bias,
w_peephole}`, which are checkpoint keys), checks its inputs, and runs
`run_stack`.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lstm_unsup.lstm.cell import (
  Array,
  Carry,
  LayerParams,
  activation,
  init_layer,
  weight_initializers,
)
from lstm_unsup.lstm.recurrence import (
  DENSE,
  Product,
  lengths_to_mask,
  run_stack,
)

# ----------------------------------------------------------------------------
# Flax Linen wrapper.

MATMUL_WEIGHTS = ("w_input", "w_recurrent")


def cast_matmul_weights(layer: LayerParams, dtype: Any) -> LayerParams:
  """The layer with its matmul weights (not bias nor peepholes) cast to
  `dtype`, which sets the matmuls' input dtype; None leaves it unchanged."""
  if dtype is None:
    return layer
  return {
    name: a.astype(dtype) if name in MATMUL_WEIGHTS else a
    for name, a in layer.items()
  }


def _parameter_names(fed_inputs: bool, peepholes: bool) -> tuple[str, ...]:
  """The names in one layer's parameter dict."""
  names = ("w_recurrent", "bias")
  if fed_inputs:
    names = ("w_input", *names)
  return (*names, "w_peephole") if peepholes else names


class _LayerParams(nn.Module):
  """Holds one layer's parameters under readable names."""

  init_fn: Callable[[Array], LayerParams]  # key -> the whole dict
  names: tuple[str, ...]

  @nn.compact
  def __call__(self) -> LayerParams:
    # Create the whole dict with one key, then register each array, so the
    # parameter paths read layer_k/w_input, layer_k/w_recurrent, ...
    def make(name):
      return self.param(name, lambda key: self.init_fn(key)[name])

    return {name: make(name) for name in self.names}


class LSTM(nn.Module):
  """A stack of `num_layers` LSTM layers of `features` units.

  Call with `x_BxTxD` (or None, with `num_steps`, for a stack fed nothing) and
  optionally `initial_carries` (one (c, h) per layer), `seq_lengths` (B ints)
  or `mask` (B x T bools). Returns `(outputs_BxTxH, final_carries)`, where
  final_carries holds each layer's (c, h) at its sequence's own last step.

  Mixed precision: `dtype=jnp.bfloat16` runs the matmuls on bfloat16 copies
  of `w_input` and `w_recurrent` (and of the operands multiplied with them)
  with float32 accumulation. The parameters and their gradients stay in
  `param_dtype`, the state (c, h) and the outputs in float32 (or wider).
  `dtype=None` (the default) computes in the parameters' dtype.

  Initialisation (`initializer`, see `cell.weight_initializers`): the
  default, "flax", is that of `flax.linen.LSTMCell`: LeCun-normal input
  weights (variance 1 / input features), an orthogonal H x H recurrent
  matrix per gate, zero biases (and zero peepholes). It keeps activations
  and gradients near unit scale through a stack, as a reusable module
  should. "authors" is the paper's U(+-0.01) weights (U(+-0.1)
  peepholes): at that scale a two-layer stack's outputs start near 1e-5,
  so use it only to reproduce the paper, as the paper's configs do
  (`config.model.initializer`); "torch" is `torch.nn.LSTM`'s
  U(+-1/sqrt(H)) for every parameter.
  """

  features: int
  num_layers: int = 1
  peepholes: bool = False
  initializer: str = "flax"  # one of INITIALIZERS; see above
  forget_bias: float = 0.0
  gate_fn: str = "sigmoid"
  activation_fn: str = "tanh"
  unroll: int = 1
  custom_grad: bool = True  # our backward pass; False: JAX's autodiff
  param_dtype: Any = jnp.float32
  dtype: Any = None  # dtype of the matmuls; None: the parameters' dtype
  # How the layers multiply by their weights (a ConvLSTM convolves).
  _product: ClassVar[Product] = DENSE

  def _check_config(self):
    if self.features < 1 or self.num_layers < 1:
      raise ValueError(
        f"{type(self).__name__} needs features >= 1 and num_layers >= 1; got "
        f"features={self.features}, num_layers={self.num_layers}."
      )
    activation(self.gate_fn), activation(self.activation_fn)
    weight_initializers(self.initializer, self.features)

  def _layer_kwargs(self, input_size) -> tuple[int | None, dict[str, Any]]:
    """Layer 0's input features, and `init_layer`'s further arguments."""
    return input_size, {}

  def layer_params(self, input_size: int | None) -> list[LayerParams]:
    input_size, kwargs = self._layer_kwargs(input_size)
    layers = []
    for k in range(self.num_layers):
      size = input_size if k == 0 else self.features
      init_fn = functools.partial(
        init_layer,
        input_size=size,
        features=self.features,
        peepholes=self.peepholes,
        initializer=self.initializer,
        forget_bias=self.forget_bias,
        dtype=self.param_dtype,
        **kwargs,
      )
      names = _parameter_names(size is not None, self.peepholes)
      layers.append(_LayerParams(init_fn, names, name=f"layer_{k}")())
    return layers

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
    # Cast after creation: the parameters stay in param_dtype, and autodiff
    # casts their gradients back to it.
    layers = [
      cast_matmul_weights(layer, self.dtype)
      for layer in self.layer_params(input_size)
    ]
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
      product=self._product,
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
    kind = type(self).__name__
    if input_size is not None and have is None:
      raise ValueError(
        f"This {kind} was initialised without inputs (fed nothing); it "
        "cannot be applied to inputs."
      )
    # Input features are the weights' next-to-last axis (D x 4H, or a
    # ConvLSTM's k x k x C x 4F).
    if input_size is not None and have.shape[-2] != input_size:
      raise ValueError(
        f"{kind} inputs have {input_size} features but the parameters "
        f"(layer_0/w_input) expect {have.shape[-2]}."
      )

  def _state_shape(self, B: int, x, initial_carries) -> tuple[int, ...]:
    """The shape of each layer's c and h."""
    del x, initial_carries  # a ConvLSTM's grid comes from them
    return (B, self.features)

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
      want = self._state_shape(B, x, initial_carries)
      for k, carry in enumerate(initial_carries):
        shapes = [tuple(a.shape) for a in carry]
        if len(carry) != 2 or any(s != want for s in shapes):
          raise ValueError(
            f"initial_carries[{k}] must be (c, h), each of shape "
            f"{want}; got shapes {shapes}."
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
    # Read the values before jnp.asarray, which traces them inside jit.
    bounds = _concrete_bounds(seq_lengths)
    seq_lengths = jnp.asarray(seq_lengths)
    if seq_lengths.shape != (B,) or not jnp.issubdtype(
      seq_lengths.dtype, jnp.integer
    ):
      raise ValueError(
        f"seq_lengths must be {B} integers (one per sequence); got shape "
        f"{tuple(seq_lengths.shape)} of dtype {seq_lengths.dtype}."
      )
    if bounds is not None and (bounds[0] < 0 or bounds[1] > T):
      raise ValueError(
        f"seq_lengths must lie in [0, {T}] (the number of time steps); "
        f"got values from {bounds[0]} to {bounds[1]}."
      )
    return lengths_to_mask(seq_lengths, T)


def _concrete_bounds(seq_lengths: Array) -> tuple[int, int] | None:
  """(min, max) of the lengths, or None when their values are not known:
  traced under jit, vmap, grad or scan, where only shape and dtype are.
  Asking numpy for the values catches every kind of tracer, without relying
  on `jax.core.Tracer`, which JAX treats as internal."""
  try:
    values = np.asarray(seq_lengths)
  except (
    jax.errors.TracerArrayConversionError,
    jax.errors.ConcretizationTypeError,
  ):
    return None
  if values.size == 0 or not np.issubdtype(values.dtype, np.number):
    return None  # the dtype check reports non-numbers
  return int(values.min()), int(values.max())


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

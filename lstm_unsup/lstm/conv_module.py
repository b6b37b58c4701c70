"""The convolutional LSTM as a Flax Linen module, and conversions.

The maths lives in `conv.py` (the products, initialisation, one step) and
`recurrence.py` (the time loop and its backward pass). `ConvLSTM` is `LSTM`
with convolutions: the same calling convention, checks, masking, stacks and
initial carries, and one parameter dict per layer under the same paths
(`layer_k/{w_input, w_recurrent, bias, w_peephole}`, checkpoint keys). In
tensor names H x W is the grid, C the input channels, F the features.
"""

from collections.abc import Sequence
from typing import Any, ClassVar

import jax.numpy as jnp

from lstm_unsup.lstm.cell import LayerParams
from lstm_unsup.lstm.conv import CONV, conv_initializers
from lstm_unsup.lstm.module import LSTM
from lstm_unsup.lstm.recurrence import Product

# What `ConvLSTM.layer_params` takes (an LSTM's input size): the input
# channels (None: fed nothing) and the grid (H, W).
Inputs = tuple[int | None, tuple[int, int]]


class ConvLSTM(LSTM):
  """A stack of `num_layers` ConvLSTM layers of `features` channels each.

  Call with `x_BxTxHxWxC` (or None, with `num_steps` and `initial_carries`,
  for a stack fed nothing) and optionally `initial_carries` (one (c, h) per
  layer, each B x H x W x F), `seq_lengths` (B ints) or `mask` (B x T
  bools). Returns `(outputs_BxTxHxWxF, final_carries)`, final_carries
  holding each layer's (c, h) at its sequence's own last step.

  Give the fields by name: `ConvLSTM(features=64, kernel_size=(5, 5),
  num_layers=2, peepholes=True)`. Both convolutions of a layer have
  `kernel_size`, stride 1 and SAME padding; peepholes (Shi et al.'s
  W_ci, W_cf, W_co) have the state's shape H x W x F, so the parameters fit
  one grid size. `initializer` is a scheme of `conv.conv_initializers`;
  the default, "flax", is `flax.linen.ConvLSTMCell`'s (whose forget gate
  also adds 1 to its bias: `forget_bias=1.0` does that). `dtype` and
  `param_dtype` act as in `LSTM`.
  """

  kernel_size: tuple[int, int] = (5, 5)
  _product: ClassVar[Product] = CONV

  def _check_config(self):
    if len(self.kernel_size) != 2 or min(self.kernel_size) < 1:
      raise ValueError(
        f"ConvLSTM needs a kernel_size of two positive ints (height, width); "
        f"got {self.kernel_size}."
      )
    super()._check_config()

  def _layer_kwargs(self, inputs: Inputs) -> tuple[int | None, dict]:
    channels, grid = inputs
    kwargs = dict(
      kernel_size=tuple(self.kernel_size),
      grid=tuple(grid),
      initializers=conv_initializers,
    )
    return channels, kwargs

  # -- input checks, for grids.

  def _check_inputs(self, x, num_steps, initial_carries) -> Inputs:
    if x is None:
      super()._check_inputs(x, num_steps, initial_carries)
      return None, tuple(initial_carries[0][0].shape[1:3])
    if x.ndim != 5:
      raise ValueError(
        f"ConvLSTM inputs must have shape [batch, time, height, width, "
        f"channels] (x_BxTxHxWxC); got an array of rank {x.ndim} with shape "
        f"{tuple(x.shape)}."
      )
    if x.shape[1] < 1:
      raise ValueError(f"ConvLSTM inputs have no time steps: {x.shape}.")
    return x.shape[-1], tuple(x.shape[2:4])

  def _check_params(self, inputs: Inputs):
    channels, grid = inputs
    super()._check_params(channels)
    if self.is_initializing() or not self.has_variable("params", "layer_0"):
      return
    peephole = self.variables["params"]["layer_0"].get("w_peephole")
    if peephole is not None and tuple(peephole.shape[1:3]) != grid:
      raise ValueError(
        f"ConvLSTM inputs have a {grid} grid but the peepholes "
        f"(layer_0/w_peephole) were made for {tuple(peephole.shape[1:3])}."
      )

  def _state_shape(self, B, x, initial_carries) -> tuple[int, ...]:
    grid = x.shape[2:4] if x is not None else initial_carries[0][0].shape[1:3]
    return (B, *grid, self.features)


# ----------------------------------------------------------------------------
# Interoperability.


def params_from_flax(flax_params: Sequence[Any]) -> dict[str, LayerParams]:
  """Converts `flax.linen.ConvLSTMCell` parameters into ours.

  Flax's cell has two convolutions with a bias each, `ih` (input) and `hh`
  (hidden), their 4F outputs in gate order i, g, f, o, and adds 1 to the
  forget gate's pre-activation. Ours: gate order i, f, g, o and one bias,
  the sum of Flax's two plus that 1 on the forget gate.

  Args:
    flax_params: one entry per layer, bottom first: the cell's parameter dict
      (keys ih, hh), or the parameters of an `nn.RNN` around it (a dict with
      a single "cell" entry).

  Returns:
    Parameters for `ConvLSTM(num_layers=len(flax_params), kernel_size=...)`.
  """
  ours = {}
  for k, layer in enumerate(flax_params):
    if "cell" in layer:
      layer = layer["cell"]
    if {"ih", "hh"} - set(layer):
      raise ValueError(
        f"Layer {k} is not a ConvLSTMCell parameter dict: it has "
        f"{sorted(layer)}, not ih and hh."
      )

    def ifgo(a):  # Flax's i, g, f, o blocks of the last axis, as i, f, g, o
      i, g, f, o = jnp.split(a, 4, axis=-1)
      return jnp.concatenate([i, f, g, o], axis=-1)

    ih, hh = layer["ih"], layer["hh"]
    F = hh["kernel"].shape[-1] // 4
    bias = sum(ifgo(p["bias"]) for p in (ih, hh) if "bias" in p)
    bias = jnp.zeros(4 * F, hh["kernel"].dtype) + bias
    ours[f"layer_{k}"] = {
      "w_input": ifgo(ih["kernel"]),
      "w_recurrent": ifgo(hh["kernel"]),
      "bias": bias.at[F : 2 * F].add(1.0),
    }
  return ours

"""The paper's LSTM: plain functions over explicit parameters, and a module.

  cell.py         one step of the cell, parameter initialisation
  recurrence.py   the time loop over one layer and stacks, its backward pass
  module.py       `LSTM`, the Flax Linen module, and `params_from_flax`
  conv.py         the convolutional LSTM (Shi et al. 2015): its products,
                  initialisation and one step, on recurrence.py's loop
  conv_module.py  `ConvLSTM`, its module, and `conv_params_from_flax`

`from lstm_unsup.lstm import LSTM` (or `ConvLSTM`) is the usual entry point;
the plain functions are re-exported here too.
"""

from lstm_unsup.lstm.cell import (
  ACTIVATIONS,
  INITIALIZERS,
  Array,
  Carry,
  LayerParams,
  activation,
  cell,
  gate_values,
  init_layer,
  matmul,
  pointwise,
  project_inputs,
  step,
  weight_initializers,
)
from lstm_unsup.lstm.conv import (
  CONV,
  conv_initializers,
  conv_step,
  init_conv_layer,
  run_conv_stack,
)
from lstm_unsup.lstm.conv_module import ConvLSTM
from lstm_unsup.lstm.conv_module import (
  params_from_flax as conv_params_from_flax,
)
from lstm_unsup.lstm.module import (
  LSTM,
  MATMUL_WEIGHTS,
  cast_matmul_weights,
  params_from_flax,
)
from lstm_unsup.lstm.recurrence import (
  DENSE,
  Product,
  lengths_to_mask,
  run_stack,
  scan_layer,
  zero_carry,
)

__all__ = [
  "ACTIVATIONS",
  "CONV",
  "DENSE",
  "INITIALIZERS",
  "LSTM",
  "MATMUL_WEIGHTS",
  "Array",
  "Carry",
  "ConvLSTM",
  "LayerParams",
  "Product",
  "activation",
  "cast_matmul_weights",
  "cell",
  "conv_initializers",
  "conv_params_from_flax",
  "conv_step",
  "gate_values",
  "init_conv_layer",
  "init_layer",
  "lengths_to_mask",
  "matmul",
  "params_from_flax",
  "pointwise",
  "project_inputs",
  "run_conv_stack",
  "run_stack",
  "scan_layer",
  "step",
  "weight_initializers",
  "zero_carry",
]

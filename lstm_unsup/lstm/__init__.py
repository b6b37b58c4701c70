"""The paper's LSTM: plain functions over explicit parameters, and a module.

  cell.py        one step of the cell, parameter initialisation
  recurrence.py  the time loop over one layer and stacks, its backward pass
  module.py      `LSTM`, the Flax Linen module, and `params_from_flax`

`from lstm_unsup.lstm import LSTM` is the usual entry point; the plain
functions are re-exported here too.
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
from lstm_unsup.lstm.module import (
  LSTM,
  MATMUL_WEIGHTS,
  cast_matmul_weights,
  params_from_flax,
)
from lstm_unsup.lstm.recurrence import (
  lengths_to_mask,
  run_stack,
  scan_layer,
  zero_carry,
)

__all__ = [
  "ACTIVATIONS",
  "INITIALIZERS",
  "LSTM",
  "MATMUL_WEIGHTS",
  "Array",
  "Carry",
  "LayerParams",
  "activation",
  "cast_matmul_weights",
  "cell",
  "gate_values",
  "init_layer",
  "lengths_to_mask",
  "matmul",
  "params_from_flax",
  "pointwise",
  "project_inputs",
  "run_stack",
  "scan_layer",
  "step",
  "weight_initializers",
  "zero_carry",
]

"""Composite model with a conditional future predictor. Table 2 row
"Composite Model with Conditional Future Predictor" (paper: 341.2).

  python -m lstm_unsup.main \
      --config=lstm_unsup/configs/composite_conditional.py:cpu \
      --workdir=runs/composite_conditional_cpu
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "composite"
  config.model.conditional_future = True
  return config

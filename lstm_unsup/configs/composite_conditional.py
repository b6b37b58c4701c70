"""Composite model with a conditional future predictor. Table 2 row
"Composite Model with Conditional Future Predictor" (paper: 341.2 nats/frame
at 2 x 2048 units).

  python -m lstm_unsup.main \
      --config=lstm_unsup/configs/composite_conditional.py:cpu \
      --workdir=runs/composite_conditional_cpu

Measured on 2 CPU cores as the Table 2 cell (2 x 512 units, batch 16, 4,000
steps; `python -m experiments.table2 --scale=cpu --columns=mnist
--rows=composite_conditional,composite_conditional_generated`): trained on
true frames, 32.3 minutes per seed and 668.6 ± 13.0 nats/frame run free
(328.1 fed true frames); trained on its own predictions, 48.6 minutes and
460.2 ± 4.6. Recipe then: Adam 1e-3 at a constant rate; `:cpu` now
warms up and decays (docs/time_to_quality.md).
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "composite"
  default.set_conditional(config)
  return config

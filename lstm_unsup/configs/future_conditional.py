"""Conditional future predictor: fed the previous frame. Table 2 row
"Conditional Future Predictor" (paper: 343.5 nats/frame at 2 x 2048 units).

  python -m lstm_unsup.main \
      --config=lstm_unsup/configs/future_conditional.py:cpu \
      --workdir=runs/future_conditional_cpu

Measured on 2 CPU cores as the Table 2 cell (2 x 512 units, batch 16, 4,000
steps; `python -m experiments.table2 --scale=cpu --columns=mnist
--rows=future_conditional,future_conditional_generated`): trained on true
frames, 32.6 minutes per seed and 658.8 ± 5.6 nats/frame run free (327.2
fed true frames); trained on its own predictions
(`--config.model.conditioning_in_training=generated`), 42.3 minutes and
465.3 ± 0.0. Why: docs/replication.md. Recipe then: Adam 1e-3 at a
constant rate; `:cpu` now warms up and decays (docs/time_to_quality.md).
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "future"
  default.set_conditional(config)
  return config

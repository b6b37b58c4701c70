"""Conditional future predictor. Table 2 row "Conditional Future Predictor"
(paper: 343.5 nats/frame).

  python -m lstm_unsup.main \
      --config=lstm_unsup/configs/future_conditional.py:cpu \
      --workdir=runs/future_conditional_cpu
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "future"
  config.model.conditional_future = True
  return config

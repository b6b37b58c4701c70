"""Future predictor (Fig. 3), unconditioned. Table 2 row "Future Predictor"
(paper: 350.2 nats/frame).

  python -m lstm_unsup.main --config=lstm_unsup/configs/future.py:cpu \
      --workdir=runs/future_cpu
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "future"
  return config

"""Composite model (Fig. 4): one encoder, a reconstruction and a future
decoder, both unconditioned. Table 2 row "Composite Model" (paper: 344.9
nats/frame of future cross entropy, 2 x 2048 units).

  python -m lstm_unsup.main --config=lstm_unsup/configs/composite.py:cpu \
      --workdir=runs/composite_cpu
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "composite"
  return config

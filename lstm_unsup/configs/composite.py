"""Composite model (Fig. 4): one encoder, a reconstruction and a future
decoder, both unconditioned. Table 2 row "Composite Model" (paper: 344.9
nats/frame of future cross entropy at 2 x 2048 units).

  python -m lstm_unsup.main --config=lstm_unsup/configs/composite.py:cpu \
      --workdir=runs/composite_cpu

Measured on 2 CPU cores (AMD EPYC): `:cpu` (1 x 1024 units, batch 16, 8,000
steps) took 47.6 minutes with evaluations and reached a test future cross
entropy of 430.7 nats/frame (reconstruction 317.3; SSE 108.5 per frame,
SSIM 0.650). As the Table 2 cell (2 x 512 units, 4,000 steps): 24.7 minutes
per seed, 451.7 ± 2.3. `:quick` takes seconds.
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "composite"
  return config

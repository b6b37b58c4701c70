"""Composite model (Fig. 4): one encoder, a reconstruction and a future
decoder, both unconditioned. Table 2 row "Composite Model" (paper: 344.9
nats/frame of future cross entropy at 2 x 2048 units).

  python -m lstm_unsup.main --config=lstm_unsup/configs/composite.py:cpu \
      --workdir=runs/composite_cpu

Measured on 2 CPU cores (AMD EPYC): `:cpu` (2 x 512 units, batch 16, 25,000
steps of Adam 1e-3 after a 200-step warm-up, then a cosine to zero) trained
for 52.4 minutes (54.9 with evaluations) and reached a test future cross
entropy of 384.4 nats/frame (reconstruction 300.8; SSE 97.1 per frame, SSIM
0.714), run as `python -m experiments.time_to_quality --minutes=60
--recipes=cpu --test=cpu` (the same steps; docs/time_to_quality.md). As the
Table 2 cell (2 x 512 units, 4,000 steps, Adam 1e-3 at a constant rate, the
recipe before): 24.7 minutes per seed, 451.7 ± 2.3. `:quick` takes seconds.
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "composite"
  return config

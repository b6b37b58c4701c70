"""Future predictor (Fig. 3), unconditioned. Table 2 row "Future Predictor"
(paper: 350.2 nats/frame at 2 x 2048 units).

  python -m lstm_unsup.main --config=lstm_unsup/configs/future.py:cpu \
      --workdir=runs/future_cpu

Measured on 2 CPU cores (AMD EPYC) as the Table 2 cell (2 x 512 units,
batch 16, 4,000 steps; `python -m experiments.table2 --scale=cpu
--columns=mnist --rows=future`): 17.0 minutes per seed, test future cross
entropy 459.0 ± 1.0 nats/frame over seeds 0 and 1 (recipe then: Adam 1e-3
at a constant rate). Not run alone at `:cpu` scale (2 x 512 units, 25,000
steps under a warm-up and a cosine: docs/time_to_quality.md).
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "future"
  return config

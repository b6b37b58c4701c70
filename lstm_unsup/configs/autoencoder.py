"""LSTM autoencoder (Fig. 2), unconditioned: reconstructs the input in
reverse order. A context row of Table 2 and the row "Autoencoder" of Table 3.

  python -m lstm_unsup.main --config=lstm_unsup/configs/autoencoder.py:cpu \
      --workdir=runs/autoencoder_cpu

Measured on 2 CPU cores (AMD EPYC), as the Table 2 context cell (2 x 512
units, batch 16, 4,000 steps; `python -m experiments.table2 --scale=cpu
--columns=mnist --seeds=0 --rows=autoencoder`): 11.2 minutes, test
reconstruction cross entropy 338.0 nats/frame (recipe then: Adam 1e-3 at a
constant rate). The paper gives no
reconstruction number. Table 3 (1 x 256 units): docs/replication.md.
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "autoencoder"
  return config

"""Conditional LSTM autoencoder: the reconstruction decoder is fed the
previous frame. Table 3 row "Conditional Autoencoder".

  python -m lstm_unsup.main \
      --config=lstm_unsup/configs/autoencoder_conditional.py:cpu \
      --workdir=runs/autoencoder_conditional_cpu

Measured on 2 CPU cores as Table 3's pretraining (1 x 256 units, 3,000
steps; `python -m experiments.table3 --scale=cpu`): its encoder seeds a
classifier that reaches 64.9 ± 2.5% with 100 labelled videos per class,
against 56.7 ± 1.9% from random weights (paper, UCF-101: 74.8 against 74.5);
9.8 minutes for the row. Not run alone at `:cpu` scale. Recipe
then: Adam 1e-3 at a constant rate (docs/time_to_quality.md).
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "autoencoder"
  config.model.conditional_reconstruct = True
  return config

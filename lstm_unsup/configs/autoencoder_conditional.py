"""Conditional LSTM autoencoder. Table 3 row "Conditional Autoencoder".

  python -m lstm_unsup.main \
      --config=lstm_unsup/configs/autoencoder_conditional.py:cpu \
      --workdir=runs/autoencoder_conditional_cpu
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "autoencoder"
  config.model.conditional_reconstruct = True
  return config

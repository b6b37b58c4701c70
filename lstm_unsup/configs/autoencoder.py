"""LSTM autoencoder (Fig. 2), unconditioned: reconstructs the input in
reverse order. Table 3 row "Autoencoder".

  python -m lstm_unsup.main --config=lstm_unsup/configs/autoencoder.py:cpu \
      --workdir=runs/autoencoder_cpu
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  config.model.decoders = "autoencoder"
  return config

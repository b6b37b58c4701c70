"""`SequenceAutoencoder`: the paper's models for anyone's sequences.

  autoencoder.py  the scikit-learn-like estimator; save and load
  network.py      its Flax network, masked loss and training loop
  data.py         checks, scaling and padding of variable-length sequences

`lstm_unsup.SequenceAutoencoder` is the same class.
"""

from lstm_unsup.sequence.autoencoder import SequenceAutoencoder

__all__ = ["SequenceAutoencoder"]

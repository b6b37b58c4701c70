"""`SequenceAutoencoder`: the paper's models for anyone's sequences.

  autoencoder.py  the scikit-learn-like estimator; save and load
  network.py      its Flax network, masked loss and inference
  fitting.py      training: the plateau schedule, stopping, progress
  saving.py       save and load, checksummed
  data.py         checks, scaling, frames and padding of sequences

`lstm_unsup.SequenceAutoencoder` is the same class.
"""

from lstm_unsup.sequence.autoencoder import SequenceAutoencoder

__all__ = ["SequenceAutoencoder"]

"""lstm_unsup: unsupervised learning of video representations with LSTMs.

A JAX/Flax replication of N. Srivastava, E. Mansimov and R. Salakhutdinov,
"Unsupervised Learning of Video Representations using LSTMs", ICML 2015
(arXiv:1502.04681).

The paper's pipeline is at the top level (models, losses, input_pipeline,
train, main, evaluation, eval, features, figures, checkpoint, ...; configs/
and data/); its parts are subpackages:

  lstm/        the LSTM: cell, time loop with its backward pass, Flax module;
               and the convolutional LSTM (Shi et al. 2015) on the same loop
  optim/       the authors' momentum update and a clipped Adam (with kernel)
  classifier/  the supervised classifier seeded from an encoder, its training
  sequence/    SequenceAutoencoder, the models for anyone's sequences

Notation used in tensor names throughout the package (`frames_BxTxD`):

  B  batch size                 T  input (encoder) time steps
  K  decoded time steps         D  features per frame (4096 for 64x64)
  H  hidden units per layer     G  gate pre-activations, 4 * H
  C  classes                    L  stacked LSTM layers

ConvLSTM tensors (lstm/conv.py, grids.py) are grids: in x_BxTxHxWxC and
h_BxHxWxF, H x W is the grid, C its input channels, F the features per
layer (G = 4 * F) and P = p * p * channels the values of one patch.
"""

import logging

__version__ = "0.1.0"


class _NoMissingLibtpuNotice(logging.Filter):
  """Drops jax's INFO notice that libtpu is not installed, which every
  command printed on a CPU or GPU machine; a TPU that fails to start, and
  every other notice, still shows."""

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not (
      record.levelno <= logging.INFO
      and message.startswith("Unable to initialize backend 'tpu'")
      and "libtpu.so: cannot open shared object file" in message
    )


logging.getLogger("jax._src.xla_bridge").addFilter(_NoMissingLibtpuNotice())


def encode(run, frames_BxTxHxW, **kwargs):
  """Encoder features of videos; see `lstm_unsup.features.encode`."""
  from lstm_unsup import features  # noqa: PLC0415  (keeps import light)

  return features.encode(run, frames_BxTxHxW, **kwargs)


def __getattr__(name):
  # lstm_unsup.SequenceAutoencoder, imported on first use (a light import).
  if name == "SequenceAutoencoder":
    from lstm_unsup.sequence import SequenceAutoencoder  # noqa: PLC0415

    return SequenceAutoencoder
  raise AttributeError(f"module 'lstm_unsup' has no attribute {name!r}")

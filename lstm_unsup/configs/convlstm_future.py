"""ConvLSTM future predictor, beyond the paper: the future predictor (Fig.
3, unconditioned) with X. Shi et al.'s convolutional LSTM (NIPS 2015,
arXiv:1506.04214), the encoder-forecaster they compared with this paper's
FC-LSTM. Frames as grids of 4x4 patches; scales as in
`convlstm_composite.py`.

  python -m lstm_unsup.main \
      --config=lstm_unsup/configs/convlstm_future.py:cpu \
      --workdir=runs/convlstm_future_cpu

Measured on 2 CPU cores: `:quick` took 21.2 s per run, start to end (on
cores shared with other jobs). At `:cpu` size, a 5-minute budget (`python
-m experiments.convlstm --scale=cpu --workdir=runs/convlstm
--train_seconds=300`, docs/convlstm.md;
recipe then: Adam 1e-3 at a constant rate, now after a 200-step
warm-up) reached 462 steps (about 1.5
steps/s) and 558.8 nats of future cross entropy per frame, against 471.9
for the FC-LSTM future predictor (2 x 512 units) in the same 5 minutes;
the full `:cpu` run (2,000 steps, about 22 minutes at that rate) and
`:paper` are not yet measured. Shi et al. report about 3,671 nats summed
over 10 predicted frames (367.1 per frame) for their best ConvLSTM
(`:paper` here is near it), against 4,832 (483.2 per frame) for this
paper's FC-LSTM-2048-2048, on their own Moving MNIST.
"""

from lstm_unsup.configs import convlstm_composite


def get_config(scale: str = "cpu"):
  return convlstm_composite.get_config(scale, decoders="future")

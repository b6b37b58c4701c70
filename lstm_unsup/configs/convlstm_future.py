"""ConvLSTM future predictor, beyond the paper: the future predictor (Fig.
3, unconditioned) with X. Shi et al.'s convolutional LSTM (NIPS 2015,
arXiv:1506.04214), the encoder-forecaster they compared with this paper's
FC-LSTM. Frames as grids of 4x4 patches; scales as in
`convlstm_composite.py`.

  python -m lstm_unsup.main \
      --config=lstm_unsup/configs/convlstm_future.py:cpu \
      --workdir=runs/convlstm_future_cpu

Measured on 2 CPU cores shared with other jobs (load average 6.5): the
command above with `:quick` took 21.2 s per run, start to end. `:cpu` and
`:paper`: not yet measured. Shi et al. report about 3,671 nats of test
cross entropy summed over 10 predicted frames (367.1 per frame) for their
best ConvLSTM (`:paper` here is near it), against 4,832 (483.2 per frame)
for this paper's FC-LSTM-2048-2048, on their own Moving MNIST; the paper's
Table 2 gives 350.2 nats per frame for its future predictor on its data.
`python -m experiments.convlstm` compares both cells on the same data.
"""

from lstm_unsup.configs import convlstm_composite


def get_config(scale: str = "cpu"):
  return convlstm_composite.get_config(scale, decoders="future")

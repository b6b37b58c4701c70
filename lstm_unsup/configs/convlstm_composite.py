"""ConvLSTM composite model, beyond the paper: the composite model (Fig. 4;
one encoder, a reconstruction and a future decoder, both unconditioned)
with X. Shi et al.'s convolutional LSTM (NIPS 2015, arXiv:1506.04214) in
place of the paper's FC-LSTM. Frames enter as grids of 4x4 patches (64x64
-> 16x16x16, as Shi et al.), every stack convolves, and a 1x1 readout of the
top layer gives grids back as frames.

  python -m lstm_unsup.main \
      --config=lstm_unsup/configs/convlstm_composite.py:cpu \
      --workdir=runs/convlstm_composite_cpu

Scales: `quick` 1 x 8 channels, 3x3 kernels, on 32x32 frames; `cpu` 1 x 32
channels, 5x5, batch 16, 64x64, 2,000 steps (about half an hour at the 1.1
steps/s the composite ran at in the comparison below); `paper` 3 x 64
channels, 5x5 kernels with peepholes, batch 16: as near Shi et al.'s best
Moving MNIST model ("ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64", as we read
their Table 1: 128, 64 and 64 channels) as one width per layer allows;
they trained with RMSProp, we with Adam, and their readout reads all
layers' states, ours the top's.

Measured on 2 CPU cores: `:quick` took 25.8 s per run, start to end (on
cores shared with other jobs). At `:cpu` size, a 5-minute budget (`python
-m experiments.convlstm --scale=cpu --workdir=runs/convlstm
--train_seconds=300`, docs/convlstm.md;
recipe then: Adam 1e-3 at a constant rate, now after a 200-step
warm-up) reached 318 steps and 570.0 nats
of future cross entropy per frame, against 474.7 for the FC-LSTM composite
(2 x 512 units) in the same 5 minutes; its reconstructions were already
the sharper. The full `:cpu` run (2,000 steps) and `:paper` are not yet
measured. Shi et al. report a test cross entropy of about 3,671 nats
summed over 10 predicted frames (367.1 per frame) for that model, against
4,832 (483.2 per frame) for this paper's FC-LSTM-2048-2048, on Moving
MNIST they generated themselves (the paper's own Table 2 gives 344.9 nats
per frame for its composite model on its data).
"""

from typing import Any

from lstm_unsup.configs import default


def convlstm_fields(scale: str) -> dict[str, Any]:
  """The fields of config.model that put the ConvLSTM in place of the
  FC-LSTM at `scale`."""
  fields = dict(
    cell="conv",
    patch_size=4,
    conv_kernel=5,
    initializer="flax",  # flax.linen.ConvLSTMCell's, with its forget bias
    forget_bias=1.0,
    readout_bias=-3.0,  # a logit: pixels start mostly off
    peepholes=scale == "paper",
  )
  fields.update(
    {
      "quick": dict(hidden=8, num_layers=1, conv_kernel=3),
      "cpu": dict(hidden=32, num_layers=1),
      "paper": dict(hidden=64, num_layers=3),
    }[default.check_scale(scale)]
  )
  return fields


def get_config(scale: str = "cpu", decoders: str = "composite"):
  config = default.get_config(scale)
  config.model.decoders = decoders
  config.model.update(convlstm_fields(config.scale))
  if config.scale == "cpu":
    # About 1.1 steps/s on 2 cores (python -m experiments.convlstm).
    config.train.num_steps = 2_000
    config.train.eval_every_steps = config.train.checkpoint_every_steps = 1_000
  elif config.scale == "paper":
    config.train.batch_size = 16  # Shi et al.'s
  return config

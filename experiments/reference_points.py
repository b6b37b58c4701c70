"""Cross entropies of trivial predictors of the future frames, for context.

  python -m experiments.reference_points \
      --config=lstm_unsup/configs/composite.py:cpu

On the config's fixed test set, binary frames (Moving MNIST), in nats per
frame: the floor (the entropy of the grey-level targets, which no model can
beat), the per-position prior (each pixel predicted by its mean over 2,000
training sequences) and the constant mean (every pixel predicted by the
overall mean). Real-valued frames (image patches), in the squared loss per
frame that training reports (0.5 * sum of squares): the per-position prior
and the last input frame repeated for every future frame.

  python -m experiments.reference_points \
      --config=lstm_unsup/configs/patches.py:cpu
"""

import numpy as np
from ml_collections import config_flags

from lstm_unsup import cli, input_pipeline, losses

_CONFIG = config_flags.DEFINE_config_file("config", None, "A config file.")


def reference_points(config, num_train: int = 2_000) -> dict[str, float]:
  T = config.data.num_input_frames
  test = input_pipeline.model_frames(  # as the model reads them
    config, np.asarray(input_pipeline.eval_sequences(config, "test"))
  )
  inputs_test = test[:, :T].reshape(len(test), T, -1)
  future_test = test[:, T:].reshape(len(test), test.shape[1] - T, -1)
  source = input_pipeline.load_train_source(config)
  batches = -(-num_train // config.train.batch_size)
  # Training batches far beyond any run's steps: never seen in training.
  future_train = np.concatenate(
    [
      input_pipeline.train_batch(config, source, 10**7 + i)[1]
      for i in range(batches)
    ]
  )
  if config.model.output == "real":
    return real_reference_points(inputs_test, future_test, future_train)
  mean = np.clip(future_train.mean(), 1e-6, 1 - 1e-6)
  constant = (
    -(future_test * np.log(mean) + (1 - future_test) * np.log(1 - mean))
    .sum(-1)
    .mean()
  )
  return {
    "floor_target_entropy": losses.target_entropy(future_test),
    "per_position_prior": losses.per_position_prior_ce(
      future_train, future_test
    ),
    "constant_mean": float(constant),
  }


def real_reference_points(inputs_NxTxD, future_NxKxD, future_train_MxKxD):
  """Squared loss per frame (0.5 * sum over pixels) of trivial predictors of
  real-valued future frames."""

  def loss(prediction):
    return float(0.5 * np.square(prediction - future_NxKxD).sum(-1).mean())

  return {
    "per_position_prior": loss(future_train_MxKxD.mean(0, keepdims=True)),
    "last_input_frame": loss(inputs_NxTxD[:, -1:]),
  }


def main(argv):
  del argv
  config = _CONFIG.value
  unit = losses.UNITS[config.model.output]
  for name, value in reference_points(config).items():
    print(f"{name:22s} {value:8.1f} {unit}")


if __name__ == "__main__":
  cli.run_main(main)

"""Cross entropies of trivial predictors of the future frames, for context.

  python -m experiments.reference_points \
      --config=lstm_unsup/configs/composite.py:cpu

On the config's fixed test set: the floor (the entropy of the grey-level
targets, which no model can beat), the per-position prior (each pixel
predicted by its mean over 2,000 training sequences) and the constant mean
(every pixel predicted by the overall mean). All in nats per frame.
"""

import numpy as np
from absl import app
from ml_collections import config_flags

from lstm_unsup import input_pipeline, losses

_CONFIG = config_flags.DEFINE_config_file("config", None, "A config file.")


def reference_points(config, num_train: int = 2_000) -> dict[str, float]:
  T = config.data.num_input_frames
  test = input_pipeline.to_unit(
    np.asarray(input_pipeline.eval_sequences(config, "test"))
  )
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


def main(argv):
  del argv
  for name, value in reference_points(_CONFIG.value).items():
    print(f"{name:22s} {value:8.1f} nats/frame")


if __name__ == "__main__":
  app.run(main)

"""The paper's LSTM classifier (section 4), seeded from a trained encoder.

  model.py  the classifier, its per-step loss and averaged predictions,
            seeding from an encoder
  train.py  training and evaluation: `python -m lstm_unsup.classifier.train`

The model API is re-exported here.
"""

from lstm_unsup.classifier.model import (
  ARCHITECTURE_FIELDS,
  KINDS,
  ClassifierConfig,
  DropoutLSTM,
  LSTMClassifier,
  architecture_of,
  average_per_video,
  block_layout,
  per_step_loss,
  seed_from_encoder,
  step_average,
)

__all__ = [
  "ARCHITECTURE_FIELDS",
  "KINDS",
  "ClassifierConfig",
  "DropoutLSTM",
  "LSTMClassifier",
  "architecture_of",
  "average_per_video",
  "block_layout",
  "per_step_loss",
  "seed_from_encoder",
  "step_average",
]

"""Optimisers: the authors' clipped momentum update and a clipped Adam.

  optimizers.py  `adam`, `paper_momentum`, `build_optimizer` by name
  fused_adam.py  the clipped Adam's one-pass CPU kernel (fused_adam.cc),
                 compiled on first use; XLA runs the same maths without it

What callers need is re-exported here.
"""

from lstm_unsup.optim.optimizers import (
  NAMES,
  ClippedAdamState,
  FusedGradientTransformation,
  PaperMomentumState,
  adam,
  apply_gradients,
  build_optimizer,
  clipped_adam,
  default_decay_mask,
  make_schedule,
  paper_momentum,
)

__all__ = [
  "NAMES",
  "ClippedAdamState",
  "FusedGradientTransformation",
  "PaperMomentumState",
  "adam",
  "apply_gradients",
  "build_optimizer",
  "clipped_adam",
  "default_decay_mask",
  "make_schedule",
  "paper_momentum",
]

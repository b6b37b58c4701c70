"""The trained encoder as a standalone feature extractor.

`encode` turns videos into fixed-length vectors: the encoder's final state,
the representation the paper's decoders and classifiers start from.

  python -m lstm_unsup.features --workdir=runs/composite_cpu \
      --split=test --output=runs/composite_cpu/features_test.npy

or, from Python, `lstm_unsup.encode(workdir, frames_BxTxHxW)`.
"""

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from lstm_unsup import checkpoint, errors, input_pipeline
from lstm_unsup.data.digits import DataError

WHICH = ("h", "c", "state")


def encode(
  run, frames_BxTxHxW: np.ndarray, *, which: str = "h", batch_size: int = 256
) -> np.ndarray:
  """Features of each video: every layer's final h ("h"), c ("c") or both
  ("state"), concatenated bottom layer first.

  Args:
    run: a workdir, or a (config, model, params) tuple.
    frames_BxTxHxW: videos in [0, 1] (or uint8); the encoder reads the first
      `config.data.num_input_frames` frames.
  """
  config, model, params = (
    checkpoint.load_run(run) if isinstance(run, str) else run
  )
  if which not in WHICH:
    raise ValueError(f"which={which!r} is not one of {WHICH}.")
  frames = np.asarray(frames_BxTxHxW)
  T = config.data.num_input_frames
  size = config.data.image_size
  if (
    frames.ndim != 4 or frames.shape[2:] != (size, size) or frames.shape[1] < T
  ):
    raise DataError(
      f"Expected videos of shape (B, >= {T}, {size}, {size}); got "
      f"{frames.shape}."
    )
  input_pipeline.check_values(
    frames, "The videos", config.model.output == "binary"
  )

  @jax.jit
  def features(params, inputs_BxTxD):
    carries = model.apply({"params": params}, inputs_BxTxD, method=model.encode)
    parts = [(c, h) for c, h in carries]
    pick = {
      "h": lambda c, h: [h],
      "c": lambda c, h: [c],
      "state": lambda c, h: [c, h],
    }[which]
    return jnp.concatenate([a for c, h in parts for a in pick(c, h)], -1)

  out = []
  for start in range(0, len(frames), batch_size):
    chunk = input_pipeline.to_unit(frames[start : start + batch_size, :T])
    out.append(np.asarray(features(params, chunk.reshape(len(chunk), T, -1))))
  return np.concatenate(out)


FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "A training run's workdir.")
  flags.DEFINE_enum(
    "split",
    "test",
    ["valid", "test", "file"],
    "Which fixed set to encode, or a .npy file.",
  )
  flags.DEFINE_string("input", "", "With --split=file: a (B,T,H,W) .npy.")
  flags.DEFINE_string("output", None, "Where to write the features (.npy).")
  flags.DEFINE_enum("which", "h", list(WHICH), "Which state to export.")
  flags.mark_flags_as_required(["workdir", "output"])


def export(workdir: str, split: str, input_path: str, output: str, which: str):
  """Encodes a fixed set (or a .npy file) and saves the features."""
  run = checkpoint.load_run(workdir)
  if split == "file":
    try:
      frames = np.load(input_path, mmap_mode="r")
    except ValueError as e:  # not an .npy file, or a truncated one
      raise DataError(f"{input_path} is not a readable .npy file: {e}") from e
  else:
    frames = input_pipeline.eval_sequences(run[0], split)
  feats = encode(run, frames, which=which)
  np.save(output, feats)
  return feats


def main(argv):
  del argv
  feats = errors.run_reporting_errors(
    export, FLAGS.workdir, FLAGS.split, FLAGS.input, FLAGS.output, FLAGS.which
  )
  print(f"Wrote features of shape {feats.shape} to {FLAGS.output}")


if __name__ == "__main__":
  define_flags()
  app.run(main)

"""The trained encoder as a standalone feature extractor, for every run.

`encode` turns videos into fixed-length vectors: the encoder's final state,
the representation the paper's decoders and classifiers start from. Any
run works: Moving MNIST or patches, any frame size, grey or colour. Videos
are pixels (uint8, or float in [0, 1]); a patch run normalises them with
the statistics of its training windows (its `data_split.json`).

  python -m lstm_unsup.features --workdir=runs/composite_cpu \
      --split=test --output=runs/composite_cpu/features_test.npy
  python -m lstm_unsup.features --workdir=RUN --input=FILE_OR_FOLDER \
      [--layout=TN] --output=features.npy

`--input` takes anything `lstm_unsup.data.videos` reads (.npy/.npz in
either layout, video files, folders of videos or frames, tfds:NAME) and
encodes each video's first frames. From Python:
`lstm_unsup.encode(workdir, videos_BxTxHxWxC)`.
"""

import contextlib
import io
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from lstm_unsup import cli, files, input_pipeline
from lstm_unsup.data import videos as videos_lib
from lstm_unsup.data.errors import DataError
from lstm_unsup.run import folder, opening

WHICH = ("h", "c", "state")


def frame_shape(config, params) -> tuple[int, int, int]:
  """(H, W, C) of the frames a run reads; C from its encoder's weights."""
  size = config.data.image_size
  w_input = params["encoder"]["layer_0"]["w_input"]
  if w_input.ndim == 4:  # a ConvLSTM's k x k x (p * p * C) x 4F kernel
    return size, size, w_input.shape[2] // config.model.patch_size**2
  return size, size, w_input.shape[0] // (size * size)


def _fits(config, params) -> str:
  H, W, C = frame_shape(config, params)
  T = config.data.num_input_frames
  grey = f"(B, >= {T}, {H}, {W}) or " if C == 1 else ""
  return (
    f"this run reads {T} or more frames of {H}x{W} pixels with {C} "
    f"channel(s): videos of shape {grey}(B, >= {T}, {H}, {W}, {C})"
  )


def encode(
  run,
  videos_BxTxHxWxC: np.ndarray,
  *,
  which: str = "h",
  batch_size: int = 256,
  stats=None,
) -> np.ndarray:
  """Features of each video: every layer's final h ("h"), c ("c") or both
  ("state"), concatenated bottom layer first.

  Args:
    run: a workdir, or a (config, model, params) tuple.
    videos_BxTxHxWxC: pixels, uint8 or float in [0, 1] ((B, T, H, W) for
      grey); the encoder reads the first `config.data.num_input_frames`.
    stats: a patch run's PatchStats; default: the run's recorded ones.
  """
  config, model, params = opening.load_run(run) if isinstance(run, str) else run
  if which not in WHICH:
    raise ValueError(f"which={which!r} is not one of {WHICH}.")
  frames = given = np.asarray(videos_BxTxHxWxC)
  shape, T = frame_shape(config, params), config.data.num_input_frames
  if frames.ndim == 4 and shape[-1] == 1:
    frames = frames[..., None]
  if frames.ndim != 5 or frames.shape[2:] != shape or frames.shape[1] < T:
    raise DataError(
      f"Got videos of shape {given.shape}; {_fits(config, params)}."
    )
  videos_lib.check_pixels(frames, "The videos")
  if config.data.dataset == "patches" and stats is None:
    # The run's recorded statistics; a run from before the record, its
    # source's.
    saved = isinstance(run, str) and opening.patch_stats(run, config)
    stats = saved or input_pipeline.patch_source(config).stats

  @jax.jit
  def features(params, inputs_BxTxD):
    carries = model.apply({"params": params}, inputs_BxTxD, method=model.encode)
    parts = [(c, h) for c, h in carries]
    pick = {
      "h": lambda c, h: [h],
      "c": lambda c, h: [c],
      "state": lambda c, h: [c, h],
    }[which]
    # A ConvLSTM's states are grids (B x H x W x F): flattened.
    picked = [a.reshape(len(a), -1) for c, h in parts for a in pick(c, h)]
    return jnp.concatenate(picked, -1)

  out = []
  for start in range(0, len(frames), batch_size):
    chunk = frames[start : start + batch_size, :T]
    chunk = input_pipeline.model_frames(config, chunk, stats)
    out.append(np.asarray(features(params, chunk.reshape(len(chunk), T, -1))))
  return np.concatenate(out)


def first_frames(run, videos: videos_lib.Videos) -> np.ndarray:
  """The first T frames of each video, stacked; a DataError names the first
  video that does not fit the run."""
  config, _, params = run
  shape, T = frame_shape(config, params), config.data.num_input_frames
  for name, video in zip(videos.names, videos.frames):
    if tuple(video.shape[1:]) != shape or len(video) < T:
      raise DataError(
        f"{name} has shape {tuple(video.shape)}; {_fits(config, params)}."
      )
  return np.stack([np.asarray(v[:T]) for v in videos.frames])


FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "A training run's workdir.")
  flags.DEFINE_enum(
    "split",
    None,
    ["valid", "test", "file"],
    "The run's own fixed set to encode (default: test), or file (--input).",
  )
  flags.DEFINE_string(
    "input", "", "Videos to encode: a file, a folder, clips or tfds:NAME."
  )
  flags.DEFINE_enum(
    "layout", "auto", list(videos_lib.LAYOUTS), "Axis order of an array."
  )
  flags.DEFINE_string("output", None, "Where to write the features (.npy).")
  flags.DEFINE_enum("which", "h", list(WHICH), "Which state to export.")
  flags.mark_flags_as_required(["workdir", "output"])


def export(
  workdir: str,
  split: str | None,
  input_path: str,
  output: str,
  which: str,
  layout: str = "auto",
):
  """Encodes a fixed set or any videos, saves the features at
  `output_path(output)`; returns them and a description of what was
  encoded. A folder for the output that does not exist is refused before
  any work. Writing into the run's workdir, it holds it (run/folder.py), as
  training and `eval` do."""
  output = output_path(output)
  where = os.path.dirname(os.path.abspath(output))
  if not os.path.isdir(where):
    raise FileNotFoundError(
      f"The folder of --output={output} does not exist: make {where} first."
    )
  run_folder = folder.RunDir(workdir)
  held = (
    run_folder.locked()
    if run_folder.contains(output)
    else contextlib.nullcontext()
  )
  with held:
    run = opening.load_run(workdir)
    config = run[0]
    if input_path and split not in (None, "file"):
      raise DataError(f"Give --input or --split={split}, not both.")
    if split == "file" and not input_path:
      raise DataError("--split=file needs --input=FILE_OR_FOLDER.")
    if input_path:
      found = videos_lib.load(
        input_path, layout=layout, data_dir=config.data.data_dir
      )
      frames, what = first_frames(run, found), found.description
    else:
      frames = input_pipeline.eval_sequences(config, split or "test")
      what = f"the run's {split or 'test'} set"
    stats = opening.patch_stats(workdir, config)  # as recorded, if any
    feats = encode(run, frames, which=which, stats=stats)
    buffer = io.BytesIO()
    np.save(buffer, feats)
    files.write_atomically(output, buffer.getvalue())
  return feats, what


def output_path(output: str) -> str:
  """Where the features go: `output`, with .npy added as numpy adds it."""
  return output if output.endswith(".npy") else output + ".npy"


def main(argv):
  del argv
  feats, what = export(
    FLAGS.workdir,
    FLAGS.split,
    FLAGS.input,
    FLAGS.output,
    FLAGS.which,
    FLAGS.layout,
  )
  print(f"Encoded {what}.")
  print(f"Wrote features of shape {feats.shape} to {output_path(FLAGS.output)}")


if __name__ == "__main__":
  define_flags()
  cli.run_main(main)

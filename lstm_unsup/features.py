"""The trained encoder as a standalone feature extractor, for every run.

`encode` turns videos into fixed-length vectors: the encoder's final state,
the representation the paper's decoders and classifiers start from. Any
run works: Moving MNIST or patches, trained on frames of any size, grey
or colour. Videos are pixels (uint8, or float in [0, 1]) in frames of the
run's size, or larger ones to cut crops from (below); a patch run
normalises them with the statistics of its training windows (its
`data_split.json`).

  python -m lstm_unsup.features --workdir=runs/composite_cpu \
      --split=test --output=runs/composite_cpu/features_test.npy
  python -m lstm_unsup.features --workdir=RUN --input=FILE_OR_FOLDER \
      [--layout=TN] [--crops=grid] --output=features.npy

`--input` takes anything `lstm_unsup.data.videos` reads (.npy/.npz in
either layout, video files, folders of videos or frames, tfds:NAME) and
encodes each video's first frames. From Python:
`lstm_unsup.encode(workdir, videos_BxTxHxWxC)`. Frames larger than the
run's (a patch run trained on 8x8 crops, given 64x64 videos) are refused
unless `--crops` (`crops=` in Python) says which crops of the run's frame
size S x S to encode; the features are then (B, N, E), features[b, n]
those of video b's crop n:

  --crops=grid    the floor(H / S) x floor(W / S) tiles from the top-left
                  corner, row-major: N = their number; the last H mod S
                  rows and W mod S columns of each frame are not encoded;
  --crops=centre  the one centre crop (the top and left get the smaller
                  half of odd room): N = 1;
  --crops=random  --num_crops=N crops at positions drawn uniformly, as
                  training draws them, from --seed; each crop keeps its
                  position through time.
"""

import contextlib
import io
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from lstm_unsup import cli, distributed, files, input_pipeline
from lstm_unsup.crops import (  # noqa: F401  (features.crop_corners, ...)
  CROPS,
  check_crops,
  crop_corners,
  cut_crops,
  describe_crops,
)
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


def _misfit(config, params, shape, crops, ask: str) -> str | None:
  """None when videos of `shape` ((T, H, W, C) per video) fit the run:
  its frames, or with `crops`, frames at least that large. Else what the
  run reads, and what to do; `ask` says how to ask for crops."""
  (S, _, C), T = frame_shape(config, params), config.data.num_input_frames
  t, h, w, c = shape if len(shape) == 4 else (0, 0, 0, 0)
  same = t >= T and c == C
  if same and ((h, w) == (S, S) if crops is None else min(h, w) >= S):
    return None
  grey = f"(B, >= {T}, {S}, {S}) or " if C == 1 else ""
  fits = (
    f"this run reads {T} or more frames of {S}x{S} pixels with {C} "
    f"channel(s): videos of shape {grey}(B, >= {T}, {S}, {S}, {C})"
  )
  if crops is not None:
    return f"{fits}, or larger frames to cut {S}x{S} crops from"
  if same and min(h, w) >= S:
    return (
      f"{fits}. To encode {S}x{S} crops of larger frames, {ask} "
      "(features of shape (videos, crops, E))"
    )
  return fits


def encode(
  run,
  videos_BxTxHxWxC: np.ndarray,
  *,
  which: str = "h",
  batch_size: int = 256,
  stats=None,
  crops: str | None = None,
  num_crops: int = 1,
  seed: int = 0,
) -> np.ndarray:
  """Features of each video: every layer's final h ("h"), c ("c") or both
  ("state"), concatenated bottom layer first: (B, E).

  Args:
    run: a workdir, or a (config, model, params) tuple.
    videos_BxTxHxWxC: pixels, uint8 or float in [0, 1] ((B, T, H, W) for
      grey); the encoder reads the first `config.data.num_input_frames`.
      Frames are the run's size S x S, or with `crops` at least that.
    stats: a patch run's PatchStats; default: the run's recorded ones.
    crops: "grid", "centre" or "random" (`num_crops` of them, drawn from
      `seed`): encodes the S x S crops of each video that `crop_corners`
      places (the module docstring says where); the features are then
      (B, N, E), features[b, n] those of video b's crop n.
  """
  config, model, params = opening.load_run(run) if isinstance(run, str) else run
  if which not in WHICH:
    raise ValueError(f"which={which!r} is not one of {WHICH}.")
  if crops is not None:
    check_crops(crops, num_crops)
  frames = given = np.asarray(videos_BxTxHxWxC)
  shape, T = frame_shape(config, params), config.data.num_input_frames
  if frames.ndim == 4 and shape[-1] == 1:
    frames = frames[..., None]
  ask = 'pass crops="grid", "centre" or "random"'
  misfit = _misfit(config, params, frames.shape[1:], crops, ask)
  if misfit:
    raise DataError(f"Got videos of shape {given.shape}; {misfit}.")
  videos_lib.check_pixels(frames, "The videos")
  if config.data.dataset == "patches" and stats is None:
    # The run's recorded statistics; a run from before the record, its
    # source's.
    saved = isinstance(run, str) and opening.patch_stats(run, config)
    stats = saved or input_pipeline.patch_source(config).stats
  if crops is not None:
    names = [f"video {b}" for b in range(len(frames))]
    crops_BxNxTxSxSxC = cut_crops(
      frames[:, :T], names, shape[0], crops, num_crops, seed=seed
    )
    run = config, model, params
    return _encode_each(
      run, crops_BxNxTxSxSxC, which=which, batch_size=batch_size, stats=stats
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
    # A ConvLSTM's states are grids (B x H x W x F): flattened.
    picked = [a.reshape(len(a), -1) for c, h in parts for a in pick(c, h)]
    return jnp.concatenate(picked, -1)

  params = jax.device_get(params)  # computed by this process alone
  out = []
  for start in range(0, len(frames), batch_size):
    chunk = frames[start : start + batch_size, :T]
    chunk = input_pipeline.model_frames(config, chunk, stats)
    out.append(np.asarray(features(params, chunk.reshape(len(chunk), T, -1))))
  return np.concatenate(out)


def _encode_each(run, crops_BxNxTxSxSxC: np.ndarray, **kwargs) -> np.ndarray:
  """Features (B, N, E) of each video's N crops, encoded as videos."""
  B, N = crops_BxNxTxSxSxC.shape[:2]
  flat = crops_BxNxTxSxSxC.reshape(B * N, *crops_BxNxTxSxSxC.shape[2:])
  return encode(run, flat, **kwargs).reshape(B, N, -1)


def first_frames(
  run, videos: videos_lib.Videos, crops=None, num_crops=1, seed=0
) -> np.ndarray:
  """The first T frames of each video, stacked (B, T, H, W, C); with
  `crops`, their crops (B, N, T, S, S, C) (`cut_crops`). A DataError names
  the first video that does not fit the run."""
  config, _, params = run
  T = config.data.num_input_frames
  ask = "give --crops=grid|centre|random"
  for name, video in zip(videos.names, videos.frames):
    misfit = _misfit(config, params, video.shape, crops, ask)
    if misfit:
      raise DataError(f"{name} has shape {tuple(video.shape)}; {misfit}.")
  frames = [np.asarray(v[:T]) for v in videos.frames]
  if crops is None:
    return np.stack(frames)
  size = frame_shape(config, params)[0]
  return cut_crops(frames, videos.names, size, crops, num_crops, seed=seed)


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
  flags.DEFINE_enum(
    "crops",
    None,
    list(CROPS),
    "Encode crops of the run's frame size cut from larger frames: grid "
    "(every tile), centre or random; features (videos, crops, E).",
  )
  flags.DEFINE_integer(
    "num_crops", 1, "How many random crops of each video.", lower_bound=1
  )
  flags.DEFINE_integer("seed", 0, "The seed of the random crops.")
  flags.register_multi_flags_validator(
    ["crops", "num_crops"],
    lambda f: f["num_crops"] == 1 or f["crops"] == "random",
    "--num_crops applies to --crops=random only; grid and centre choose "
    "their crops.",
  )
  flags.mark_flags_as_required(["workdir", "output"])


def export(
  workdir: str,
  split: str | None,
  input_path: str,
  output: str,
  which: str,
  layout: str = "auto",
  *,
  crops: str | None = None,
  num_crops: int = 1,
  seed: int = 0,
):
  """Encodes a fixed set or any videos (with `crops`, their crops, as
  `encode`), saves the features at `output_path(output)`; returns them and
  a description of what was encoded. A folder for the output that does
  not exist is refused before any work. Writing into the run's workdir, it
  holds it (run/folder.py), as training and `eval` do."""
  output = output_path(output)
  where = os.path.dirname(os.path.abspath(output))
  if not os.path.isdir(where):
    raise FileNotFoundError(
      f"The folder of --output={output} does not exist: make {where} first."
    )
  run_folder = folder.RunDir(workdir)
  writes = distributed.is_writer()  # process 0 of several writes
  held = (
    run_folder.locked()
    if run_folder.contains(output)
    else contextlib.nullcontext()
  )
  with held:
    run = opening.load_run(workdir)
    config, size = run[0], frame_shape(run[0], run[2])[0]  # S x S frames
    if input_path and split not in (None, "file"):
      raise DataError(f"Give --input or --split={split}, not both.")
    if split == "file" and not input_path:
      raise DataError("--split=file needs --input=FILE_OR_FOLDER.")
    if input_path:
      found = videos_lib.load(
        input_path, layout=layout, data_dir=config.data.data_dir
      )
      frames = first_frames(run, found, crops, num_crops, seed)
      what, sizes = found.description, [v.shape[1:3] for v in found.frames]
    else:
      frames = input_pipeline.eval_sequences(config, split or "test")
      what, sizes = f"the run's {split or 'test'} set", [frames.shape[2:4]]
      if crops is not None:
        names = [f"sequence {b}" for b in range(len(frames))]
        frames = cut_crops(frames, names, size, crops, num_crops, seed=seed)
    stats = opening.patch_stats(workdir, config)  # as recorded, if any
    if crops is None:
      feats = encode(run, frames, which=which, stats=stats)
    else:
      feats = _encode_each(run, frames, which=which, stats=stats)
      what += f": {describe_crops(sizes, size, crops, num_crops, seed)}"
    if writes:
      buffer = io.BytesIO()
      np.save(buffer, feats)
      files.write_atomically(output, buffer.getvalue())
  return feats, what


def output_path(output: str) -> str:
  """Where the features go: `output`, with .npy added as numpy adds it."""
  return output if output.endswith(".npy") else output + ".npy"


def main(argv):
  del argv
  distributed.initialize_from_flags()  # each process encodes all; 0 writes
  feats, what = export(
    FLAGS.workdir,
    FLAGS.split,
    FLAGS.input,
    FLAGS.output,
    FLAGS.which,
    FLAGS.layout,
    crops=FLAGS.crops,
    num_crops=FLAGS.num_crops,
    seed=FLAGS.seed,
  )
  if not distributed.is_writer():
    return
  print(f"Encoded {what}.")
  axes = ": (videos, crops, features)" if FLAGS.crops else ""
  path = output_path(FLAGS.output)
  print(f"Wrote features of shape {feats.shape} to {path}{axes}")


if __name__ == "__main__":
  define_flags()
  distributed.define_flags()
  cli.run_main(main)

"""Training and evaluation of the classifiers: `train_and_evaluate(config,
workdir)`.

  python -m lstm_unsup.classifier.train \
      --config=lstm_unsup/configs/classifier.py:cpu --workdir=runs/cls \
      [--config.pretrained.workdir=runs/composite_cpu] \
      [--config.model.kind=single_frame]

Each step trains on a batch of blocks drawn uniformly from all blocks of
the labelled training videos, a pure function of (seed, step), with the
per-step loss (`classifier.per_step_loss`). At the end every block of every
test video is classified and averaged per video: `accuracy` is per video
(the paper's number), `block_accuracy` per block. The run writes
`config.json` and `metrics.jsonl`; a run whose test record exists is read
back instead of retrained.
"""

import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import flags, logging
from ml_collections import config_flags

from lstm_unsup import classifier, cli, config_lib, distributed, lstm
from lstm_unsup.classifier.model import open_pretrained
from lstm_unsup.data import digits as digits_lib
from lstm_unsup.data import labelled
from lstm_unsup.optim import optimizers
from lstm_unsup.run import folder, metrics_io

PyTree = Any
TASKS = ("moving_mnist", "percepts")  # config.data.task: see load_videos
FINETUNE = ("all", "readout")  # config.pretrained.finetune: split_trainable


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError (a ValueError) naming the first bad field."""
  config_lib.check_is_config(config)
  choices = {
    "data.task": TASKS,
    "model.kind": classifier.KINDS,
    "model.initializer": lstm.INITIALIZERS,
    "pretrained.finetune": FINETUNE,
    "optim.name": optimizers.NAMES,
  }
  for field, allowed in choices.items():
    group, name = field.split(".")
    if config[group][name] not in allowed:
      raise config_lib.ConfigError(
        f"config.{field}={config[group][name]!r} is not one of {allowed}."
      )
  for field in (
    "data.num_frames",
    "data.num_train_per_class",
    "data.num_test_per_class",
    "model.block_length",
    "model.block_stride",
    "train.batch_size",
    "train.num_steps",
    "train.eval_batch_size",
  ):
    group, name = field.split(".")
    if config[group][name] < 1:
      raise config_lib.ConfigError(
        f"config.{field} must be >= 1; got {config[group][name]}."
      )
  if config.data.task == "percepts" and not config.data.percepts:
    raise config_lib.ConfigError(
      "config.data.task='percepts' needs config.data.percepts."
    )
  room = config_lib.DIGIT_SIZE + 1  # a digit must have room to move
  if config.data.task == "moving_mnist" and config.data.image_size < room:
    raise config_lib.ConfigError(
      f"config.data.image_size={config.data.image_size} leaves the "
      f"{config_lib.DIGIT_SIZE}-pixel digits no room to move; give at least "
      f"{room}."
    )
  if config.pretrained.workdir and config.model.kind != "lstm":
    raise config_lib.ConfigError(
      "config.pretrained.workdir seeds an LSTM; config.model.kind is "
      f"{config.model.kind!r}."
    )


# ----------------------------------------------------------------------------
# Data.


def load_videos(config) -> tuple[labelled.VideoSet, labelled.VideoSet]:
  """(labelled training videos, test videos) of the configured task."""
  d = config.data
  if d.task == "percepts":
    sets = labelled.load_percepts(d.percepts)
  else:
    kwargs = dict(
      num_frames=d.num_frames,
      image_size=d.image_size,
      step_length=d.step_length,
      margin_degrees=d.margin_degrees,
      digit_classes=tuple(d.digit_classes),
    )
    pools = {
      split: digits_lib.load_digits(d.source, split, d.data_dir)
      for split in ("train", "test")
    }
    sets = {
      "train": labelled.moving_digit_videos(
        pools["train"], d.num_train_per_class, d.task_seed, **kwargs
      ),
      "test": labelled.moving_digit_videos(
        pools["test"], d.num_test_per_class, d.task_seed, **kwargs
      ),
    }
  train = sets["train"]
  if d.labels_per_class:
    train = labelled.take_per_class(train, d.labels_per_class, d.resample)
  return train, sets["test"]


def gather_blocks(videos, video_M, start_M, length_M, block_length):
  """(frames_MxLxD, mask_MxL) of the given blocks."""
  frames_MxTxD = videos.features(video_M)
  T = frames_MxTxD.shape[1]
  steps_MxL = start_M[:, None] + np.arange(block_length)[None]
  mask_MxL = np.arange(block_length)[None] < length_M[:, None]
  steps_MxL = np.minimum(steps_MxL, T - 1)
  frames = np.take_along_axis(frames_MxTxD, steps_MxL[..., None], axis=1)
  return frames * mask_MxL[..., None], mask_MxL


# ----------------------------------------------------------------------------
# Model, optimiser and steps.


def model_config(
  config, num_classes: int, run_config=None
) -> classifier.ClassifierConfig:
  """The classifier of `config`, with the LSTM of `run_config`'s encoder."""
  fields = {
    field.name: config.model[field.name]
    for field in dataclasses.fields(classifier.ClassifierConfig)
    if field.name != "num_classes"
  }
  if run_config is not None:
    fields.update(classifier.architecture_of(run_config))
  return classifier.ClassifierConfig(num_classes=num_classes, **fields)


def init_params(config, mcfg, feature_dim: int, encoder=None) -> PyTree:
  """Fresh parameters; the LSTM copied from `encoder` when given."""
  model = classifier.LSTMClassifier(mcfg)
  example = jnp.zeros((1, config.model.block_length, feature_dim))
  params = model.init(jax.random.key(config.seed), example)["params"]
  if encoder is not None:
    params = classifier.seed_from_encoder(params, encoder)
  return params


def build_optimizer(optim) -> optax.GradientTransformation:
  """The optimiser of `config.optim` (a ConfigDict or a dict)."""
  return optimizers.from_config(optim)


def split_trainable(params: PyTree, finetune: str) -> tuple[PyTree, PyTree]:
  """(trained, frozen) parameters: everything, or the readout alone."""
  if finetune == "readout":
    frozen = {k: v for k, v in params.items() if k != "readout"}
    return {"readout": params["readout"]}, frozen
  return params, {}


@functools.lru_cache(maxsize=32)
def step_functions(mcfg: classifier.ClassifierConfig, optim_items: tuple):
  """(optimiser, jitted train_step, jitted predict); cached, so runs of the
  same model and optimiser (a table's rows, Fig. 12's resamples) compile
  once."""
  model = classifier.LSTMClassifier(mcfg)
  optim = dict(optim_items)
  tx = build_optimizer(optim)
  # The authors' updates were tuned for gradients summed over the batch.
  summed = optimizers.LOSS_REDUCTIONS[optim["name"]] != "mean"

  def loss_fn(trained, frozen, frames, mask, labels, key):
    logits = model.apply(
      {"params": {**frozen, **trained}},
      frames,
      mask,
      train=True,
      rngs={"dropout": key},
    )
    loss_B = classifier.per_step_loss(logits, labels, mask)
    correct = jnp.argmax(classifier.step_average(logits, mask), -1) == labels
    loss = jnp.sum(loss_B) if summed else jnp.mean(loss_B)
    return loss, {"loss": jnp.mean(loss_B), "accuracy": jnp.mean(correct)}

  @jax.jit
  def train_step(trained, frozen, opt_state, frames, mask, labels, key):
    grads, metrics = jax.grad(loss_fn, has_aux=True)(
      trained, frozen, frames, mask, labels, key
    )
    updates, opt_state = tx.update(grads, opt_state, trained)
    return optax.apply_updates(trained, updates), opt_state, metrics

  @jax.jit
  def predict(params, frames, mask):
    logits = model.apply({"params": params}, frames, mask, train=False)
    return classifier.step_average(logits, mask)

  return tx, train_step, predict


def evaluate(predict, params, videos, config) -> dict[str, float]:
  """Per-video and per-block accuracy over every block of `videos`."""
  m = config.model
  video_M, start_M, length_M = classifier.block_layout(
    videos.lengths_N, m.block_length, m.block_stride
  )
  B = config.train.eval_batch_size
  probs = []
  for i in range(0, len(video_M), B):
    rows = slice(i, i + B)
    frames, mask = gather_blocks(
      videos, video_M[rows], start_M[rows], length_M[rows], m.block_length
    )
    n = len(frames)
    if n < B:  # pad to one shape: one compilation
      pad = np.zeros((B - n,) + frames.shape[1:], frames.dtype)
      frames = np.concatenate([frames, pad])
      mask = np.concatenate([mask, np.zeros((B - n, mask.shape[1]), bool)])
    probs.append(np.asarray(predict(params, frames, mask))[:n])
  probs_MxC = np.concatenate(probs)
  per_video = classifier.average_per_video(probs_MxC, video_M, len(videos))
  return {
    "accuracy": float(np.mean(per_video.argmax(-1) == videos.labels_N)),
    "block_accuracy": float(
      np.mean(probs_MxC.argmax(-1) == videos.labels_N[video_M])
    ),
    "num_videos": len(videos),
    "num_blocks": len(video_M),
  }


# ----------------------------------------------------------------------------
# The loop.


def fit(
  config,
  train: labelled.VideoSet,
  num_classes: int,
  writer=None,
  pretrained=None,
) -> tuple[classifier.ClassifierConfig, PyTree]:
  """Trains a classifier on `train`; returns its config and parameters.
  `pretrained`: what `open_pretrained` returned (opened here if not
  given)."""
  run_config, encoder = pretrained or open_pretrained(config, train)
  mcfg = model_config(config, num_classes, run_config)
  params = init_params(config, mcfg, train.feature_dim, encoder)
  trained, frozen = split_trainable(params, config.pretrained.finetune)
  tx, train_step, _ = step_functions(mcfg, _items(config.optim))
  opt_state = tx.init(trained)
  m = config.model
  layout = classifier.block_layout(
    train.lengths_N, m.block_length, m.block_stride
  )
  logging.info(
    "Training a %s classifier (%s init) on %d videos (%d blocks), %s",
    mcfg.kind,
    config.pretrained.workdir or "random",
    len(train),
    len(layout[0]),
    train.description,
  )
  key = jax.random.key(config.seed)
  last = config.train.num_steps
  for step in range(1, last + 1):
    rng = np.random.default_rng((config.seed, step))
    pick = rng.integers(0, len(layout[0]), config.train.batch_size)
    video_B, start_B, length_B = (a[pick] for a in layout)
    frames, mask = gather_blocks(
      train, video_B, start_B, length_B, m.block_length
    )
    trained, opt_state, metrics = train_step(
      trained,
      frozen,
      opt_state,
      frames,
      mask,
      train.labels_N[video_B],
      jax.random.fold_in(key, step),
    )
    if step == last or step % config.train.log_every_steps == 0:
      record = {k: float(v) for k, v in metrics.items()}
      if not np.isfinite(record["loss"]):
        raise FloatingPointError(
          f"The classifier's loss is not finite at "
          f"step {step}: {record['loss']}."
        )
      if writer is not None:
        writer.write(step, "train", record)
      logging.info(
        "step %d/%d  loss %.3f  accuracy %.3f",
        step,
        last,
        record["loss"],
        record["accuracy"],
      )
  return mcfg, {**frozen, **trained}


def _items(optim) -> tuple:
  return tuple(sorted(optim.to_dict().items()))


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str
) -> dict[str, Any]:
  """Trains the classifier; returns its test metrics (read back if done)."""
  validate(config)
  # One training at a time; of several processes (each trains the whole
  # classifier, the same way), process 0 holds the folder and writes.
  with folder.RunDir(workdir).locked() as run:
    return _train_and_evaluate(config, run, distributed.is_writer())


def _train_and_evaluate(config, run: folder.RunDir, writes=True) -> dict:
  last = config.train.num_steps
  done = metrics_io.last_record(run.path, "test", step=last)
  if done is not None:
    logging.info("%s is done; reading its results.", run.path)
    return done
  if writes:
    run.check(config, resume=False)  # an unfinished run starts over
  start_time = time.perf_counter()
  train, test = load_videos(config)  # checked before anything is written
  pretrained = open_pretrained(config, train)
  if writes:
    run.write_config(config.to_dict())
  writer = run.writer() if writes else metrics_io.NoWriter()
  writer.truncate_after(-1)
  mcfg, params = fit(config, train, test.num_classes, writer, pretrained)
  predict = step_functions(mcfg, _items(config.optim))[2]
  result = evaluate(predict, params, test, config)
  result.update(
    num_train_videos=len(train),
    init=config.pretrained.workdir or "random",
    wall_seconds=time.perf_counter() - start_time,
  )
  writer.write(last, "test", result)
  writer.close()
  logging.info(
    "Test: accuracy %.4f per video, %.4f per block (%d videos)",
    result["accuracy"],
    result["block_accuracy"],
    result["num_videos"],
  )
  return result


FLAGS = flags.FLAGS


def main(argv):
  del argv
  distributed.initialize_from_flags()
  result = train_and_evaluate(FLAGS.config, FLAGS.workdir)
  if not distributed.is_writer():
    return
  print(
    f"Test accuracy {result['accuracy']:.4f} per video, "
    f"{result['block_accuracy']:.4f} per block ({result['num_videos']} "
    f"videos); results in {metrics_io.path(FLAGS.workdir)}"
  )


if __name__ == "__main__":
  config_flags.DEFINE_config_file(
    "config", "lstm_unsup/configs/classifier.py", lock_config=True
  )
  flags.DEFINE_string("workdir", None, "Where the run writes its results.")
  flags.mark_flags_as_required(["workdir"])
  distributed.define_flags()
  cli.run_main(main)

"""Evaluation on a fixed set of sequences, in the paper's and today's units.

For each decoder: the cross entropy (binary data) or squared loss (real
data) in the paper's unit, per frame summed over pixels and averaged over
frames and sequences; and today's Moving MNIST units (per-frame SSE and MAE
summed over pixels, SSIM, PSNR), each also per lead time. Conditional
decoders run free (fed their own previous output) unless the config asks
for the authors' teacher-forced reconstruction; every result records which
mode each decoder ran in.
"""

import functools
import os

import jax
import numpy as np

from lstm_unsup import figures, input_pipeline, losses, metrics, models

Array = jax.Array


class Evaluator:
  """Evaluates parameters on one fixed set, batch by batch."""

  def __init__(
    self, config, model, split: str = "valid", sequences=None, stats=None
  ):
    """`stats`: a patch run's recorded statistics (default: its source's)."""
    self.config = config
    self.model = model
    self.split = split
    self.sequences = (
      input_pipeline.eval_sequences(config, split)
      if sequences is None
      else sequences
    )
    self.frame_shape = tuple(self.sequences.shape[2:])
    # What the set is, in words, for every result (named once, not at each
    # evaluation: for patches it reads the source's description).
    self.name = input_pipeline.eval_set_name(config, split, len(self.sequences))
    self.model_config = models.model_config(config.model)
    self._step = _compiled_eval_step(
      model, self.model_config, config.model.output, self.frame_shape
    )
    self._display = lambda frames: frames  # to [0, 1] for pictures
    self._stats = None  # patches: the training windows' statistics
    if config.data.dataset == "patches":
      self._stats = stats or input_pipeline.patch_source(config).stats
      self._display = self._stats.denormalise

  def _batches(self):
    B = self.config.eval.batch_size
    N = len(self.sequences)
    for start in range(0, N, B):
      chunk = self.sequences[start : start + B]
      n = len(chunk)
      if n < B:  # pad the last batch to keep one compiled shape
        pad = np.zeros((B - n, *chunk.shape[1:]), chunk.dtype)
        chunk = np.concatenate([chunk, pad])
      frames = input_pipeline.model_frames(self.config, chunk, self._stats)
      yield input_pipeline.split_frames(self.config, frames), np.arange(B) < n

  def evaluate(self, params) -> dict:
    """Metrics averaged over the whole set; `*_per_frame` per lead time."""
    acc = metrics.MetricAccumulator()
    for (inputs, future), mask_B in self._batches():
      acc.add(self._step(params, inputs, future), mask_B)
    unit = losses.METRIC_KEYS[self.config.model.output]
    result = {"num_sequences": len(self.sequences)}
    for name, curve in acc.means().items():
      name = name.replace("_loss", f"_{unit}")
      result[name] = float(np.mean(curve))
      result[f"{name}_per_frame"] = [float(v) for v in curve]
    result["conditioning"] = models.conditioning(self.model_config, False)
    result["sequences"] = self.name
    return result

  def predict(self, params, count: int, sequences=None):
    """(inputs, reconstruction in time order, future, prediction) frames of
    the first `count` sequences of the set (or of `sequences`), in [0, 1]
    for display."""
    if sequences is None:
      (inputs, future), _ = next(self._batches())
    else:
      frames = np.asarray(sequences[:count])
      frames = input_pipeline.model_frames(self.config, frames, self._stats)
      inputs, future = input_pipeline.split_frames(self.config, frames)
    outputs = _compiled_apply(self.model)(params, inputs, future)
    shape = (-1, *self.frame_shape)
    binary = self.config.model.output == "binary"
    view = functools.partial(_view, shape=shape, count=count, binary=binary)
    recon = outputs.get("reconstruct")
    if recon is not None:
      recon = models.in_time_order(self.model_config, recon)
    frames = (
      _view(inputs, shape, count, False),
      None if recon is None else view(recon),
      _view(future, shape, count, False) if future.shape[1] else None,
      view(outputs["future"]) if "future" in outputs else None,
    )
    return tuple(None if f is None else self._display(f) for f in frames)

  def save_figure(self, params, path: str, title: str = "") -> None:
    count = self.config.eval.num_figure_sequences
    if count < 1:
      return
    image = figures.composite_figure(*self.predict(params, count), title=title)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path)


@functools.lru_cache(maxsize=64)
def _compiled_eval_step(model, model_config, kind, frame_shape):
  """The jitted per-frame metrics of one batch (shared by every Evaluator of
  the same model, so validation and test compile once)."""

  def eval_step(params, inputs_BxTxD, future_BxKxD):
    outputs, _ = model.apply(
      {"params": params}, inputs_BxTxD, future_BxKxD, train=False
    )
    targets = models.make_targets(model_config, inputs_BxTxD, future_BxKxD)
    per_frame = {}
    for name, out in outputs.items():
      per_frame[f"{name}_loss"] = losses.frame_loss(out, targets[name], kind)
      if kind == "binary":  # frames in [0, 1]: today's four units
        frame_values = metrics.per_frame_metrics(
          jax.nn.sigmoid(out), targets[name], frame_shape
        )
      else:  # normalised values: SSIM and PSNR do not apply
        frame_values = {
          "sse": metrics.sse_per_frame(out, targets[name]),
          "mae": metrics.mae_per_frame(out, targets[name]),
        }
      per_frame.update({f"{name}_{k}": v for k, v in frame_values.items()})
    return per_frame

  return jax.jit(eval_step)


@functools.lru_cache(maxsize=64)
def _compiled_apply(model):
  """The jitted evaluation-mode forward pass (outputs only)."""
  return jax.jit(
    lambda params, x, f: model.apply({"params": params}, x, f, train=False)[0]
  )


def _view(x, shape, count, binary):
  x = jax.nn.sigmoid(x) if binary else x
  x = np.asarray(x[:count])
  return x.reshape(x.shape[0], x.shape[1], *shape[1:])


def summary_line(result: dict) -> str:
  """A short human-readable line of the main numbers."""
  keys = [
    k
    for k in (
      "reconstruct_ce",
      "future_ce",
      "reconstruct_se",
      "future_se",
      "future_sse",
      "future_ssim",
      "future_psnr",
    )
    if k in result
  ]
  return "  ".join(f"{k} {result[k]:.4g}" for k in keys)

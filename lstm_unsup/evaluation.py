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
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from lstm_unsup import (
  config_lib,
  distributed,
  figures,
  input_pipeline,
  losses,
  metrics,
  models,
  training_step,
)

Array = jax.Array


class Evaluator:
  """Evaluates parameters on one fixed set, batch by batch."""

  def __init__(
    self,
    config,
    model,
    split: str = "valid",
    sequences=None,
    stats=None,
    mesh=None,
  ):
    """`stats`: a patch run's recorded statistics (default: its source's);
    `mesh`: devices to split each batch over, every process's on several
    (default: this process's first device)."""
    self.config = config
    self.mesh = mesh or Mesh(np.asarray(jax.devices()[:1]), ("data",))
    if config.eval.batch_size % self.mesh.size:
      raise config_lib.ConfigError(
        f"config.eval.batch_size={config.eval.batch_size} does not split "
        f"evenly over {self.mesh.size} devices."
      )
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
    self._step = _compiled_eval_sums(
      model, self.model_config, config.model.output, self.frame_shape, self.mesh
    )
    self._display = lambda frames: frames  # to [0, 1] for pictures
    self._stats = None  # patches: the training windows' statistics
    self._baseline = None  # decoder key -> the mean prediction's score
    if config.data.dataset == "patches":
      self._stats = stats or input_pipeline.patch_source(config).stats
      self._display = self._stats.denormalise

  def _batches(self, rows: slice = slice(None)):
    """((inputs, future), mask_B) of each batch, padded to the batch size
    (one compiled shape); only `rows` of each (a process's part)."""
    B = self.config.eval.batch_size
    N = len(self.sequences)
    for start in range(0, N, B):
      chunk = self.sequences[start : start + B]
      n = len(chunk)
      if n < B:
        pad = np.zeros((B - n, *chunk.shape[1:]), chunk.dtype)
        chunk = np.concatenate([chunk, pad])
      chunk = chunk[rows]
      frames = input_pipeline.model_frames(self.config, chunk, self._stats)
      mask_B = (np.arange(B) < n)[rows]
      yield input_pipeline.split_frames(self.config, frames), mask_B

  def evaluate(self, params) -> dict:
    """Metrics averaged over the whole set; `*_per_frame` per lead time;
    `mean_baseline`, what predicting every value the set's mean scores.
    Each process evaluates its rows of each batch; the sums are reduced
    over all, so every process returns the same numbers."""
    acc = metrics.MetricAccumulator()
    moments = self._baseline is None and _Moments()
    B = self.config.eval.batch_size
    rows = training_step.batch_rows(self.mesh, B)
    for (inputs, future), mask_B in self._batches(rows):
      batch = training_step.shard_batch(
        self.mesh, inputs, future, mask_B, batch_size=B
      )
      acc.add_sums(*self._step(params, *batch))
      if moments:
        moments.add(inputs[mask_B], future[mask_B])
    if moments:
      moments.reduce()
    unit = losses.METRIC_KEYS[self.config.model.output]
    if moments:  # the set is fixed: once
      self._baseline = moments.baselines(self.config.model.output, unit)
    result = {"num_sequences": len(self.sequences)}
    for name, curve in acc.means().items():
      name = name.replace("_loss", f"_{unit}")
      result[name] = float(np.mean(curve))
      result[f"{name}_per_frame"] = [float(v) for v in curve]
    result["mean_baseline"] = {
      k: v for k, v in self._baseline.items() if k in result
    }
    result["conditioning"] = models.conditioning(self.model_config, False)
    result["sequences"] = self.name
    return result

  def predict(self, params, count: int, sequences=None):
    """(inputs, reconstruction in time order, future, prediction) frames of
    the first `count` sequences of the set (or of `sequences`), in [0, 1]
    for display."""
    params = jax.device_get(params)  # on this process alone
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
def _compiled_eval_sums(model, model_config, kind, frame_shape, mesh):
  """The jitted sums over a batch's real sequences of each per-frame metric
  (K,), and their count, with the batch split over `mesh` and the sums on
  every device (shared by every Evaluator of the same model and mesh, so
  validation and test compile once)."""
  per_frame_fn = _eval_step(model, model_config, kind, frame_shape)

  def sums(params, inputs_BxTxD, future_BxKxD, mask_B):
    per_frame = per_frame_fn(params, inputs_BxTxD, future_BxKxD)
    real_Bx1 = mask_B[:, None]
    totals = {
      # `where` keeps non-finite values of padded rows out of the sums.
      k: jnp.sum(jnp.where(real_Bx1, v.astype(jnp.float32), 0.0), axis=0)
      for k, v in per_frame.items()
    }
    return totals, jnp.sum(mask_B)

  replicated = NamedSharding(mesh, P())
  batch = NamedSharding(mesh, P("data"))
  return jax.jit(
    sums,
    in_shardings=(replicated, batch, batch, batch),
    out_shardings=replicated,
  )


def _eval_step(model, model_config, kind, frame_shape):
  """The per-frame metrics (B, K) of one batch."""

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

  return eval_step


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


class _Moments:
  """Running sums of the targets of each decoder, for `mean_baseline`."""

  def __init__(self):
    self.sums = {"reconstruct": np.zeros(3), "future": np.zeros(3)}
    self.frame_size = 0

  def add(self, inputs_BxTxD: np.ndarray, future_BxKxD: np.ndarray) -> None:
    self.frame_size = inputs_BxTxD.shape[-1]
    for name, x in (("reconstruct", inputs_BxTxD), ("future", future_BxKxD)):
      x = np.asarray(x, np.float64)
      self.sums[name] += (x.size, x.sum(), np.square(x).sum())

  def reduce(self) -> None:
    """Sums over every process (each added its own rows)."""
    if distributed.is_multiprocess():
      from jax.experimental import multihost_utils  # noqa: PLC0415

      names = sorted(self.sums)
      local = np.stack([self.sums[n] for n in names])
      every = np.asarray(multihost_utils.process_allgather(local))
      self.sums = dict(zip(names, every.reshape(-1, *local.shape).sum(0)))

  def baselines(self, output: str, unit: str) -> dict[str, float]:
    """Per decoder, the loss per frame of predicting every value the mean
    of its targets: D * H(mean) nats for binary frames (the best constant
    prediction), 0.5 * D * variance for real ones."""
    out = {}
    for name, (n, total, squares) in self.sums.items():
      if not n:
        continue
      mean, D = total / n, self.frame_size
      if output == "binary":
        p = min(max(mean, 1e-12), 1 - 1e-12)
        value = -D * (mean * np.log(p) + (1 - mean) * np.log(1 - p))
      else:
        value = 0.5 * D * max(squares / n - mean**2, 0.0)
      out[f"{name}_{unit}"] = float(value)
    return out


def worse_than_baseline(result: dict) -> str:
  """A warning naming each loss no lower than predicting every value the
  set's mean (what an untrained model does at best), or ""."""
  worse = [
    f"{key} {result[key]:.4g} >= {base:.4g}"
    for key, base in result.get("mean_baseline", {}).items()
    if key in result and not result[key] < base
  ]
  if not worse:
    return ""
  return (
    "WARNING: no better than predicting every value the set's mean ("
    + ", ".join(worse)
    + "): the model has not learnt from its input (too few steps, or a"
    " diverged run)."
  )


def summary_line(result: dict) -> str:
  """A short human-readable line of the main numbers (and a warning if a
  loss is no better than the mean prediction's)."""
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
  line = "  ".join(f"{k} {result[k]:.4g}" for k in keys)
  warning = worse_than_baseline(result)
  return f"{line}  {warning}" if warning else line

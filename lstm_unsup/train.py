"""Training: `train_and_evaluate(config, workdir)`.

The loop generates each batch as a pure function of (seed, step), takes a
jitted train step sharded over the devices, logs a progress line, appends
metrics to `metrics.jsonl`, evaluates on the fixed validation set with a
Figure-5-style picture, and checkpoints with orbax. A run resumes from its
workdir's latest good checkpoint; the data stream depends only on the
step, so a resumed run continues bit for bit (docs/reliability.md). The
config, the model's memory, the workdir (one process at a time: a second
is refused) and the first batch are checked before anything is written.
SIGINT or SIGTERM saves a checkpoint of the current step and stops; a
non-finite loss or gradient stops the run (or skips that update, with
config.train.skip_nonfinite).
"""

import contextlib
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax.training import train_state
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from lstm_unsup import (
  config_lib,
  evaluation,
  guards,
  input_pipeline,
  losses,
  models,
  sizing,
)
from lstm_unsup.configs import default
from lstm_unsup.guards import Interrupted, NonFiniteError  # noqa: F401 (API)
from lstm_unsup.optim import optimizers
from lstm_unsup.run import checkpoints, folder, metrics_io, record

Array = jax.Array


class TrainState(train_state.TrainState):
  def apply_gradients(self, *, grads, **kwargs):
    """Flax's, through `optimizers.apply_gradients`: an optimiser that can
    update the parameters in place (clipped Adam on the CPU) does so."""
    params, opt_state = optimizers.apply_gradients(
      self.tx, grads, self.opt_state, self.params
    )
    return self.replace(
      step=self.step + 1, params=params, opt_state=opt_state, **kwargs
    )


# ----------------------------------------------------------------------------
# Model, loss and the train step.


def per_frame_losses(config, outputs, targets) -> dict[str, Array]:
  """(B, K) loss of each decoder in the paper's unit."""
  kind = config.model.output
  return {
    name: losses.frame_loss(outputs[name], targets[name], kind)
    for name in outputs
  }


def make_loss_fn(config, model):
  # Adam's mean, or the batch sum the authors' updates were tuned for.
  reduce = losses.REDUCTIONS[optimizers.LOSS_REDUCTIONS[config.optim.name]]
  mcfg = models.model_config(config.model)

  def loss_fn(params, inputs_BxTxD, future_BxKxD):
    outputs, _ = model.apply(
      {"params": params}, inputs_BxTxD, future_BxKxD, train=True
    )
    targets = models.make_targets(mcfg, inputs_BxTxD, future_BxKxD)
    per_frame = per_frame_losses(config, outputs, targets)
    loss = sum(reduce(v) for v in per_frame.values())
    # Always report the paper's unit per frame, whatever is optimised.
    return loss, {k: losses.mean_per_frame(v) for k, v in per_frame.items()}

  return loss_fn


def build_optimizer(config) -> optax.GradientTransformation:
  return optimizers.from_config(config.optim)


def create_train_state(config, model, example_BxTxD, example_BxKxD, mesh):
  """Fresh parameters and optimiser state, replicated over the mesh."""
  tx = build_optimizer(config)
  replicated = NamedSharding(mesh, P())
  # Two calls, so the random-number temporaries are gone before the moments
  # exist (the peak stays below a step's); every returned leaf has its own
  # buffer, as the train step donates them all.
  params = jax.jit(
    lambda key: model.init(key, example_BxTxD, example_BxKxD)["params"],
    out_shardings=replicated,
  )(jax.random.key(config.seed))
  state = jax.jit(
    lambda params: TrainState.create(
      apply_fn=model.apply, params=params, tx=tx
    ),
    out_shardings=replicated,
    donate_argnums=0,
  )(params)
  return state


def make_mesh(num_devices: int = 0, batch_size: int = 0) -> Mesh:
  """A 1-D mesh named "data" over the first `num_devices` devices (0: all),
  checked to split `batch_size` evenly."""
  devices = jax.devices()
  if num_devices > len(devices):
    raise config_lib.ConfigError(
      f"config.train.num_devices={num_devices} but only {len(devices)} "
      f"devices are visible."
    )
  devices = devices[:num_devices] if num_devices else devices
  if batch_size % len(devices):
    raise config_lib.ConfigError(
      f"config.train.batch_size={batch_size} does not split evenly over "
      f"{len(devices)} devices; set config.train.num_devices."
    )
  return Mesh(np.asarray(devices), ("data",))


def make_train_step(config, model, mesh: Mesh) -> "TrainStep":
  """The jitted step: batch sharded over "data", state replicated."""
  loss_fn = make_loss_fn(config, model)

  def train_step(state, grads_buffer, inputs_BxTxD, future_BxKxD):
    del grads_buffer  # donated: the new gradients are written over it
    (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params, inputs_BxTxD, future_BxKxD
    )
    grad_norm = optax.tree.norm(grads)
    new = state.apply_gradients(grads=grads)
    if config.train.skip_nonfinite:  # keep the state of a non-finite step
      ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
      keep = functools.partial(jax.tree.map, lambda a, b: jnp.where(ok, a, b))
      new = new.replace(
        params=keep(new.params, state.params),
        opt_state=keep(new.opt_state, state.opt_state),
      )
    return new, {"loss": loss, **parts, "grad_norm": grad_norm}, grads

  replicated = NamedSharding(mesh, P())
  batch = NamedSharding(mesh, P("data"))
  jitted = jax.jit(
    train_step,
    in_shardings=(replicated, replicated, batch, batch),
    out_shardings=(replicated, replicated, replicated),
    donate_argnums=(0, 1),
    keep_unused=True,  # an unused argument is otherwise dropped, not reused
  )
  return TrainStep(jitted, replicated)


class TrainStep:
  """`state, metrics = step(state, inputs_BxTxD, future_BxKxD)`.

  The gradients are written over a buffer that every call donates back to
  the next: after the first step they land in memory the process already
  holds. As fresh temporaries they were a new mapping every step on the CPU
  (one page fault per 4 KiB, about 150 MB a step at H=1024), and XLA's
  temporaries shrink by as much as the buffer holds, so the peak stays the
  same. The buffer is not part of the train state or of checkpoints.
  """

  def __init__(self, jitted, sharding):
    self._step = jitted
    self._zeros = jax.jit(
      lambda params: jax.tree.map(jnp.zeros_like, params),
      out_shardings=sharding,
    )
    self._grads = None

  def _take_buffer(self, params):
    grads, self._grads = self._grads, None  # gone if the call is cut short
    return self._zeros(params) if grads is None else grads

  def __call__(self, state, inputs_BxTxD, future_BxKxD):
    grads = self._take_buffer(state.params)
    state, metrics, self._grads = self._step(
      state, grads, inputs_BxTxD, future_BxKxD
    )
    return state, metrics

  def compile(self, state, inputs_BxTxD, future_BxKxD):
    """Compiles ahead of time for these shapes; later calls run the
    compiled step, whose `memory_analysis()` is XLA's account of it."""
    grads = self._take_buffer(state.params)
    compiled = self._step.lower(
      state, grads, inputs_BxTxD, future_BxKxD
    ).compile()
    self._grads, self._step = grads, compiled
    return compiled


def shard_batch(mesh: Mesh, *arrays: np.ndarray):
  """Places a host batch on the mesh, split along the batch axis."""
  sharding = NamedSharding(mesh, P("data"))
  return tuple(
    jax.make_array_from_callback(
      a.shape, sharding, functools.partial(lambda a, idx: a[idx], a)
    )
    for a in arrays
  )


# ----------------------------------------------------------------------------
# The loop.


def _itstime(step: int, every: int, last: int) -> bool:
  return step == last or (every > 0 and step % every == 0)


def _format_eta(seconds: float) -> str:
  minutes, s = divmod(int(seconds), 60)
  h, m = divmod(minutes, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str
) -> dict[str, Any]:
  """Trains (resuming if possible); returns the last validation metrics and
  the final test metrics. What a user hands us is checked before anything
  is written; the workdir is held (run_dir) until the run ends."""
  config_lib.validate(config)
  mesh = make_mesh(config.train.num_devices, config.train.batch_size)
  model = models.build_model(config.model)
  sizing.check_fits(config, model, build_optimizer(config), mesh.local_devices)
  with folder.RunDir(workdir).locked() as run:
    return _train_and_evaluate(config, run, mesh, model)


def _train_and_evaluate(config, run, mesh, model) -> dict[str, Any]:
  workdir = run.path
  run.check(config)
  source = input_pipeline.load_train_source(config)
  inputs, future = input_pipeline.train_batch(config, source, 0)
  what = f"A training batch of {input_pipeline.describe(source)}"
  input_pipeline.check_batch(config, inputs, future, what)
  evaluator = evaluation.Evaluator(config, model, split="valid")
  state = create_train_state(config, model, inputs, future, mesh)

  run.write_config(config.to_dict())
  record.keep_data_record(workdir, source)  # patches: the split, once
  writer = run.writer()
  mngr = run.checkpoint_manager(config.train.keep_checkpoints)
  restored = checkpoints.restore_latest(mngr, state)
  if restored is not None:
    state = restored[1]
    logging.info("Resumed from the checkpoint of step %d.", restored[0])
  start = int(state.step)
  # Records a killed run wrote after its last checkpoint are redone now.
  writer.truncate_after(start)
  last = config.train.num_steps
  budget = config.train.train_seconds
  trained = trained_seconds(metrics_io.read_metrics(workdir), start)
  step_fn = make_train_step(config, model, mesh)
  if start >= last or (budget and trained >= budget):
    # Done already (a run trained past a smaller num_steps, or out of time):
    # nothing to train, and its results keep the step they belong to.
    last = start
    logging.info(
      "The run is done: trained to step %d (%.0f s); its test results follow.",
      start,
      trained,
    )
  else:
    logging.info(
      "Training %s (%d x %d units, batch %d) with the %s recipe "
      "(optimiser %s, %s initialisation; docs/recipe.md) for steps %d..%d%s "
      "on %d device(s), data: %s",
      config.model.decoders,
      config.model.num_layers,
      config.model.hidden,
      config.train.batch_size,
      default.recipe(config),
      config.optim.name,
      config.model.initializer,
      start + 1,
      last,
      f" or {budget - trained:.0f} s" if budget else "",
      mesh.size,
      input_pipeline.describe(source),
    )
  eval_metrics = metrics_io.last_record(workdir, "valid") or {}
  guard = guards.FiniteGuard(config.train.skip_nonfinite, mngr)
  pending = None  # the previous step's metrics, fetched one step late
  unit = losses.UNITS[config.model.output]
  timer_step, timer = start, time.perf_counter()
  try:
    with guards.stop_signals() as stop:
      for step in range(start + 1, last + 1):
        began = time.perf_counter()
        batch = input_pipeline.train_batch(config, source, step)
        state, step_metrics = step_fn(state, *shard_batch(mesh, *batch))
        if pending is not None:
          guard.check(pending, step - 1)
        pending = step_metrics
        if step > start + 1:  # the first step compiles: not training time
          trained += time.perf_counter() - began
        if budget and trained >= budget:
          last = step  # out of time: this step is the last
        stopping = bool(stop)  # a signal arrived: save this step and stop
        log = _itstime(step, config.train.log_every_steps, last)
        evaluate = _itstime(step, config.train.eval_every_steps, last)
        save = _itstime(step, config.train.checkpoint_every_steps, last)
        if log or evaluate or save or stopping:  # nothing non-finite is kept
          guard.check(pending, step)
        if log:
          now = time.perf_counter()
          rate = (step - timer_step) / (now - timer)
          timer_step, timer = step, now
          left = (last - step) / max(rate, 1e-9)
          if budget:
            left = min(left, budget - trained)
          entry = dict(pending, train_seconds=trained) if budget else pending
          _log_train(writer, step, last, entry, rate, guard, unit, left)
        if evaluate:
          eval_metrics = evaluator.evaluate(state.params)
          writer.write(step, "valid", eval_metrics)
          evaluator.save_figure(
            state.params,
            run.figure(step),
            title=f"{config.model.decoders}, step {step}",
          )
          logging.info(
            "step %d validation: %s",
            step,
            evaluation.summary_line(eval_metrics),
          )
          timer = time.perf_counter()  # evaluation is not training time
        if save or stopping:
          checkpoints.save(mngr, step, state)
        if stopping:
          checkpoints.finish(mngr)
          raise Interrupted(stop[0], step)
        if step == last:
          break
    checkpoints.finish(mngr)
  finally:
    with contextlib.suppress(Exception):
      mngr.close()
  test_metrics = _final_test(config, model, state.params, workdir, writer, last)
  writer.close()
  return {
    "valid": eval_metrics,
    "test": test_metrics,
    "data": input_pipeline.describe(source),
    "steps": last,
    "train_seconds": trained,
  }


def trained_seconds(records: list[dict[str, Any]], step: int) -> float:
  """Training time (the time budget's clock) up to `step`, from a run's
  metrics records; 0 for a new run or one without a time budget."""
  seconds = 0.0
  for entry in records:
    if entry["split"] == "train" and entry["step"] <= step:
      seconds = entry.get("train_seconds", seconds)
  return seconds


def _log_train(writer, step, last, step_metrics, rate, guard, unit, left):
  entry = {k: float(v) for k, v in step_metrics.items()}
  entry["steps_per_sec"] = rate
  if guard.skip:
    entry["skipped_steps"] = guard.skipped
  writer.write(step, "train", entry)
  parts = " ".join(
    f"{k} {entry[k]:.1f}" for k in ("reconstruct", "future") if k in entry
  )
  logging.info(
    "step %d/%d  loss %.4g (%s %s)  %.2f steps/s  ETA %s",
    step,
    last,
    entry["loss"],
    parts,
    unit,
    rate,
    _format_eta(left),
  )


def _final_test(config, model, params, workdir, writer, last: int):
  """Test-set metrics of the parameters of the last step (computed once per
  run)."""
  done = metrics_io.last_record(workdir, "test", step=last)
  if done is not None:
    return done
  result = evaluation.Evaluator(config, model, split="test").evaluate(params)
  writer.write(last, "test", result)
  logging.info(
    "Test set (%d sequences): %s",
    result["num_sequences"],
    evaluation.summary_line(result),
  )
  return result

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
import dataclasses
import time
from typing import Any

import jax
import ml_collections
from absl import logging

from lstm_unsup import (
  config_lib,
  distributed,
  evaluation,
  guards,
  input_pipeline,
  losses,
  models,
  sizing,
  training_step,
)
from lstm_unsup.configs import default
from lstm_unsup.guards import Interrupted, NonFiniteError  # noqa: F401 (API)
from lstm_unsup.run import checkpoints, folder, metrics_io, record

Array = jax.Array


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
  is written; the workdir is held (run/folder.py) until the run ends."""
  config_lib.validate(config)
  mesh = training_step.make_mesh(
    config.train.num_devices, config.train.batch_size
  )
  model = models.build_model(config.model)
  sizing.check_fits(
    config, model, training_step.build_optimizer(config), mesh.local_devices
  )
  # On several processes, process 0 holds the workdir and writes its files.
  with folder.RunDir(workdir).locked() as run:
    return _train_and_evaluate(config, run, mesh, model)


def _train_and_evaluate(config, run, mesh, model) -> dict[str, Any]:
  begun = _restore_or_initialise(config, run, mesh, model)
  last, budget = config.train.num_steps, config.train.train_seconds
  if begun.step >= last or (budget and begun.trained >= budget):
    # Done already (a run trained past a smaller num_steps, or out of time):
    # nothing to train, and its results keep the step they belong to.
    last = begun.step
    logging.info(
      "The run is done: trained to step %d (%.0f s); its test results follow.",
      begun.step,
      begun.trained,
    )
  else:
    _announce(config, begun, last, mesh)
  try:
    state, eval_metrics, last, trained = _loop(
      config, run, mesh, model, begun, last
    )
    checkpoints.finish(begun.mngr)
  finally:
    with contextlib.suppress(Exception):
      begun.mngr.close()
  test_metrics = _final_test(
    config, model, state.params, run.path, begun.writer, last, mesh
  )
  begun.writer.close()
  return {
    "valid": eval_metrics,
    "test": test_metrics,
    "data": input_pipeline.describe(begun.source),
    "steps": last,
    "train_seconds": trained,
  }


@dataclasses.dataclass
class _Begun:
  """Where a run starts: its data and validation set, state (fresh or
  restored) and step, the checkpoint manager and metrics writer, and the
  training seconds so far."""

  source: Any
  evaluator: evaluation.Evaluator  # of the validation set
  state: training_step.TrainState
  step: int
  mngr: Any
  writer: metrics_io.MetricWriter
  trained: float


def _restore_or_initialise(config, run, mesh, model) -> _Begun:
  """Checks the folder and the first batch, writes the config and the data
  record, and restores the latest good checkpoint over fresh parameters."""
  writes = distributed.is_writer()
  if writes:
    run.check(config)
  source = input_pipeline.load_train_source(config)
  inputs, future = input_pipeline.train_batch(config, source, 0)
  what = f"A training batch of {input_pipeline.describe(source)}"
  input_pipeline.check_batch(config, inputs, future, what)
  evaluator = evaluation.Evaluator(config, model, split="valid", mesh=mesh)
  state = training_step.create_train_state(config, model, inputs, future, mesh)
  if writes:
    run.write_config(config.to_dict())
    record.keep_data_record(run.path, source)  # patches: the split, once
  writer = run.writer() if writes else metrics_io.NoWriter()
  distributed.barrier("the run folder is checked and written")
  mngr = run.checkpoint_manager(config.train.keep_checkpoints)
  restored = checkpoints.restore_latest(mngr, state)
  if restored is not None:
    state = restored[1]
    logging.info("Resumed from the checkpoint of step %d.", restored[0])
  start = int(state.step)
  # Records a killed run wrote after its last checkpoint are redone now.
  writer.truncate_after(start)
  trained = trained_seconds(metrics_io.read_metrics(run.path), start)
  distributed.barrier("the records are truncated")
  return _Begun(source, evaluator, state, start, mngr, writer, trained)


def _announce(config, begun: _Begun, last: int, mesh) -> None:
  budget = config.train.train_seconds
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
    begun.step + 1,
    last,
    f" or {budget - begun.trained:.0f} s" if budget else "",
    mesh.size,
    input_pipeline.describe(begun.source),
  )


def _loop(config, run, mesh, model, begun: _Begun, last: int):
  """Steps `begun.step + 1 .. last` (fewer when the time budget ends them):
  logs, evaluates and checkpoints as configured; returns the state, the
  last validation metrics, the last step and the training seconds."""
  t = config.train
  state, start, trained = begun.state, begun.step, begun.trained
  mngr, writer, source = begun.mngr, begun.writer, begun.source
  budget = t.train_seconds
  evaluator = begun.evaluator
  step_fn = training_step.make_train_step(config, model, mesh)
  eval_metrics = metrics_io.last_record(run.path, "valid") or {}
  guard = guards.FiniteGuard(t.skip_nonfinite, mngr)
  pending = None  # the previous step's metrics, fetched one step late
  unit = losses.UNITS[config.model.output]
  timer_step, timer = start, time.perf_counter()
  rows = training_step.batch_rows(mesh, t.batch_size)
  mine = rows if distributed.is_multiprocess() else None
  with guards.stop_signals() as stop:
    for step in range(start + 1, last + 1):
      began = time.perf_counter()
      batch = input_pipeline.train_batch(config, source, step, mine)
      state, step_metrics = step_fn(
        state, *training_step.shard_batch(mesh, *batch, batch_size=t.batch_size)
      )
      if pending is not None:
        guard.check(pending, step - 1)
      pending = step_metrics
      if step > start + 1:  # the first step compiles: not training time
        trained += time.perf_counter() - began
      # Out of time, or a signal arrived (on any process: all stop at the
      # same step): this step is the last, saved.
      out_of_time, signum = distributed.agree(
        int(bool(budget and trained >= budget)), stop[0] if stop else 0
      )
      if out_of_time:
        last = step
      stopping = bool(signum)
      log = _itstime(step, t.log_every_steps, last)
      evaluate = _itstime(step, t.eval_every_steps, last)
      save = _itstime(step, t.checkpoint_every_steps, last)
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
        if distributed.is_writer():
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
        raise Interrupted(signum, step)
      if step == last:
        break
  return state, eval_metrics, last, trained


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


def _final_test(config, model, params, workdir, writer, last: int, mesh):
  """Test-set metrics of the parameters of the last step (computed once per
  run); none when the config leaves the test set unread."""
  if not config.eval.final_test:
    logging.info("The test set is left unread (eval.final_test is False).")
    return {}
  done = metrics_io.last_record(workdir, "test", step=last)
  distributed.barrier("the test record is read")  # before process 0 writes
  if done is not None:
    return done
  evaluator = evaluation.Evaluator(config, model, split="test", mesh=mesh)
  result = evaluator.evaluate(params)
  writer.write(last, "test", result)
  logging.info(
    "Test set (%d sequences): %s",
    result["num_sequences"],
    evaluation.summary_line(result),
  )
  return result

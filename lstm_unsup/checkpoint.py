"""Thin wrappers around orbax: save, restore the latest, restore parameters.

A checkpoint holds the whole training state (step, parameters, optimiser
state) under `workdir/checkpoints/<step>`. Orbax writes each one to a
temporary folder and renames it when complete, so a killed run never leaves
a half-written checkpoint behind as the latest.
"""

import os
from typing import Any

import orbax.checkpoint as ocp

from lstm_unsup import config_lib, metrics_io, models

PyTree = Any


def manager(workdir: str, keep: int = 3) -> ocp.CheckpointManager:
  """The checkpoint manager of a work directory."""
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
  path = os.path.abspath(os.path.join(workdir, "checkpoints"))
  return ocp.CheckpointManager(path, options=options)


def save(mngr: ocp.CheckpointManager, step: int, state: PyTree) -> None:
  """Saves `state` as checkpoint `step` (in the background)."""
  mngr.save(step, args=ocp.args.StandardSave(state))


def restore_latest(
  mngr: ocp.CheckpointManager, target: PyTree
) -> tuple[int, PyTree] | None:
  """(step, state) of the latest checkpoint, shaped like `target`; or None."""
  step = mngr.latest_step()
  if step is None:
    return None
  return step, mngr.restore(step, args=ocp.args.StandardRestore(target))


def restore_params(workdir: str, step: int | None = None) -> PyTree:
  """The model parameters of a run's latest (or given) checkpoint."""
  mngr = manager(workdir)
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"No checkpoint under {workdir}/checkpoints.")
  restored = mngr.restore(step, args=ocp.args.StandardRestore())
  mngr.close()
  return restored["params"]


def load_run(workdir: str):
  """(config, model, params) of a run's latest checkpoint."""
  values = metrics_io.read_config(workdir)
  if values is None:
    raise FileNotFoundError(f"{workdir}/config.json not found: not a run.")
  config = config_lib.from_dict(values)
  return config, models.build_model(config.model), restore_params(workdir)

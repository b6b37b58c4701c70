"""Orbax checkpoints that survive kills, full disks and damaged files.

A checkpoint holds the whole training state (step, parameters, optimiser
state) under `workdir/checkpoints/<step>` (whose manager
`folder.RunDir.checkpoint_manager` opens). Orbax writes each one to a
temporary folder and renames it when complete, so a kill never leaves a
half-written checkpoint as the latest (leftover temporary folders are
deleted when the next run opens the folder). On top of orbax:

  * each checkpoint records a CRC-32 of every array in its step metadata,
    checked on restore: orbax reads flipped bits back without complaint;
  * `restore_latest` skips a damaged latest checkpoint, says why, moves it
    to `workdir/corrupt_checkpoints/` and resumes from the previous one;
  * restoring into a model of another shape names the parameter that
    differs, before any data is read;
  * a state with a NaN or an infinity is never saved;
  * a failed save (a full disk, say) raises CheckpointError saying which
    checkpoint is still intact, and naming the file that could not grow;
    that one line is the only report of a file-system failure: orbax's
    threads would log it three times with its traceback, and tensorstore
    a traceback for each write still in flight (`_quiet_save_failures`).
    Any other error in orbax's threads (a bug) keeps its traceback.
"""

import errno
import logging as py_logging
import os
import re
import shutil
import sys
import time
import traceback
import weakref
import zlib
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from lstm_unsup import distributed, files
from lstm_unsup.run import folder

PyTree = Any
TMP_MARK = ".orbax-checkpoint-tmp"
CORRUPT = "corrupt_checkpoints"  # where damaged checkpoints are moved
_saving = weakref.WeakKeyDictionary()  # manager -> step of its last save


class CheckpointError(RuntimeError):
  """A checkpoint cannot be saved or restored; the message says why."""


class MismatchError(CheckpointError):
  """A checkpoint does not fit the model it is restored into."""


def _path(keys) -> str:
  """A pytree key path as a string: params/encoder/layer_0/bias."""
  names = (
    getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))) for k in keys
  )
  return "/".join(str(n) for n in names)


def checksums(tree: PyTree) -> dict[str, int]:
  """CRC-32 of each array's bytes, by path."""
  return {
    _path(keys): zlib.crc32(np.ascontiguousarray(leaf).view(np.uint8))
    for keys, leaf in jax.tree_util.tree_leaves_with_path(jax.device_get(tree))
  }


def _nonfinite_leaf(tree: PyTree) -> str | None:
  for keys, leaf in jax.tree_util.tree_leaves_with_path(tree):
    leaf = np.asarray(leaf)
    if leaf.dtype.kind == "f" and not np.isfinite(leaf).all():
      return _path(keys)
  return None


# ----------------------------------------------------------------------------
# Saving.


def save(mngr: ocp.CheckpointManager, step: int, state: PyTree) -> None:
  """Saves `state` as checkpoint `step` (written in the background).

  Raises FloatingPointError, saving nothing, if any array holds a NaN or an
  infinity, and CheckpointError if an earlier background save failed.
  """
  host = jax.device_get(state)
  bad = _nonfinite_leaf(host)
  if bad is not None:
    finish(mngr)
    raise FloatingPointError(
      f"{bad} is not finite after step {step}; not saving it. The last good "
      f"checkpoint is step {mngr.latest_step()}."
    )
  sums = {"crc32": checksums(host)}
  _quiet_save_failures()
  finish(mngr)  # the previous save's failure, if any, is reported as its own
  _saving[mngr] = step
  args = ocp.args.StandardSave(state)
  _guard(mngr, step, lambda: mngr.save(step, args=args, custom_metadata=sums))


def finish(mngr: ocp.CheckpointManager) -> None:
  """Waits for the background save; CheckpointError if it failed."""
  _guard(mngr, _saving.get(mngr), mngr.wait_until_finished)


def _guard(mngr, step: int | None, action) -> None:
  """Runs `action`; a failure of the save of `step` (a background one
  surfaces at the next call) becomes a CheckpointError that says which
  checkpoint is intact."""
  try:
    action()
  except Exception as e:  # orbax and tensorstore raise bare ValueErrors
    _remove_partial(mngr)
    done = _finished_steps(mngr)
    kept = f"step {max(done)}" if done else "none"
    raise CheckpointError(
      f"Saving checkpoint {step} under {mngr.directory} failed: "
      f"{_what_failed(e)}. The last complete checkpoint ({kept}) is intact. "
      "Free space or fix the cause, then rerun the same command to resume "
      "from it."
    ) from e


def _what_failed(error: Exception) -> str:
  if _disk_full(error):
    return "the disk is full"
  failure = _os_failure(error)
  if failure is None:
    return f"{type(error).__name__}: {error}"
  code, path = failure
  where = f": '{path}'" if path else ""
  return f"{os.strerror(code)}{where}{files.advice(code)}"


def _disk_full(error: BaseException | None) -> bool:
  while error is not None:
    if getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
      return True
    if "No space left" in str(error) or "os_error_code='28'" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


def _os_failure(error: BaseException | None) -> tuple[int, str | None] | None:
  """(error number, file) of the file-system failure behind `error`: an
  OSError, or tensorstore's report of one (`Failed writing: "PATH": ...
  [os_error_code='27']`); None if there is none."""
  while error is not None:
    if isinstance(error, OSError) and error.errno is not None:
      return error.errno, error.filename
    code = re.search(r"os_error_code='(\d+)'", str(error))
    if code:
      path = re.search(r'Failed writing: "([^"]+)"', str(error))
      return int(code[1]), path[1] if path else None
    error = error.__cause__ or error.__context__
  return None


def _finished_steps(mngr) -> list[int]:
  """Steps whose folders were completed (renamed from their temporary)."""
  names = os.listdir(mngr.directory) if os.path.isdir(mngr.directory) else []
  return sorted(int(n) for n in names if n.isdigit())


def _remove_partial(mngr) -> None:
  """Deletes temporary folders of failed saves (they only take space)."""
  for name in os.listdir(mngr.directory):
    if TMP_MARK in name:
      shutil.rmtree(os.path.join(mngr.directory, name), ignore_errors=True)


# ----------------------------------------------------------------------------
# A failed save in one line.


class _FileSystemFailures(py_logging.Filter):
  """Drops orbax's log records of a file-system failure (with tracebacks),
  and asyncio's "... exception was never retrieved" of orbax's writes that
  failed so: the CheckpointError of the save says it in one line."""

  def filter(self, record: py_logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    # asyncio names the coroutine's file ("Task exception ...") or not
    # ("Future exception ..."): then the failed write's path says it.
    from_orbax = "/orbax/" in record.pathname or (
      record.name == "asyncio"
      and ("/orbax/" in record.getMessage() or TMP_MARK in str(error))
    )
    return not (from_orbax and _os_failure(error) is not None)


_FILTER = _FileSystemFailures()


def _quiet_save_failures() -> None:
  """Keeps a failed save to one line (see the module's docstring): filters
  absl's logger, through which orbax logs, and hides the "Event loop is
  closed" of each tensorstore write that ends after orbax closed the loop
  of a failed save. Idempotent."""
  for logger in (logging.get_absl_logger(), py_logging.getLogger("asyncio")):
    if _FILTER not in logger.filters:
      logger.addFilter(_FILTER)
  if not getattr(sys.unraisablehook, "hides_closed_loops", False):
    sys.unraisablehook = _hiding_closed_loops(sys.unraisablehook)


def _hiding_closed_loops(previous):
  def hook(unraisable):
    if not _closed_loop(unraisable.exc_value, unraisable.exc_traceback):
      previous(unraisable)

  hook.hides_closed_loops = True
  return hook


def _closed_loop(error, tb) -> bool:
  """asyncio's "Event loop is closed" from call_soon_threadsafe."""
  if not isinstance(error, RuntimeError) or str(error) != (
    "Event loop is closed"
  ):
    return False
  return any(f.name == "call_soon_threadsafe" for f in traceback.extract_tb(tb))


# ----------------------------------------------------------------------------
# Restoring.


def restore_latest(
  mngr: ocp.CheckpointManager, target: PyTree
) -> tuple[int, PyTree] | None:
  """(step, state) of the latest good checkpoint, shaped like `target`.

  None if there is no checkpoint. A damaged checkpoint is reported and
  moved aside once an older good one is found; if none is good, raises
  CheckpointError and moves nothing. A checkpoint of another model raises
  MismatchError.
  """
  failures = []
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      state = _restore_checked(mngr, step, target)
    except MismatchError:
      raise
    except Exception as e:  # a damaged file surfaces as many error types
      logging.warning(
        "Checkpoint %d under %s is damaged (%s); trying the one before.",
        step,
        mngr.directory,
        _first_line(e),
      )
      failures.append((step, e))
      continue
    for bad, _ in failures:
      _move_aside(mngr, bad)
    return step, state
  if failures:
    lines = "; ".join(f"step {s}: {_first_line(e)}" for s, e in failures)
    raise CheckpointError(
      f"Every checkpoint under {mngr.directory} is damaged ({lines}). Move "
      "that folder away to start this run over."
    )
  return None


def _restore_checked(mngr, step: int, target: PyTree | None) -> PyTree:
  """Restores `step`, checking shapes first and checksums after."""
  if target is not None:
    check_fits(mngr.item_metadata(step), target, f"Checkpoint {step}")
  args = ocp.args.StandardRestore(target)
  state = mngr.restore(step, args=args)
  custom = mngr.metadata(step).custom_metadata or {}
  expected = custom.get("crc32")
  if expected is None:  # written before checksums were recorded
    return state
  for path, crc in checksums(state).items():
    if path in expected and expected[path] != crc:
      raise CheckpointError(f"{path} does not match its recorded checksum")
  return state


def check_fits(found: PyTree, expected: PyTree, what: str) -> None:
  """Raises MismatchError naming the first array whose shape differs."""
  have = {
    _path(k): tuple(v.shape)
    for k, v in jax.tree_util.tree_leaves_with_path(found)
  }
  want = {
    _path(k): tuple(np.shape(v))
    for k, v in jax.tree_util.tree_leaves_with_path(expected)
  }
  params_first = lambda p: (not p.startswith("params"), p)  # noqa: E731
  for path in sorted(set(have) | set(want), key=params_first):
    if have.get(path) != want.get(path):
      in_ckpt = have.get(path, "missing")
      in_model = want.get(path, "missing")
      raise MismatchError(
        f"{what} does not fit the model: {path} is {in_ckpt} in the "
        f"checkpoint but {in_model} in the model. It was written with "
        "another config.model or config.data.image_size; restore it with "
        "its own config, or use a new --workdir."
      )


def _first_line(error: Exception) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0][:300] if text else ''}"


def _move_aside(mngr, step: int) -> None:
  """Moves a damaged checkpoint to workdir/corrupt_checkpoints/ (process 0
  of several does, the others wait for it)."""
  if distributed.is_writer():
    source = os.path.join(mngr.directory, str(step))
    parent = os.path.dirname(str(mngr.directory))
    target = os.path.join(parent, CORRUPT, f"{step}-{time.time():.0f}")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.move(source, target)
    logging.warning("Moved damaged checkpoint %d to %s.", step, target)
  distributed.barrier(f"checkpoint {step} is moved aside")
  mngr.reload()


def _on_every_device(mngr, step: int) -> PyTree:
  """The saved arrays' shapes, replicated on every device that this reader
  sees: a checkpoint of a run on other devices (two processes, eight GPUs)
  restores here too, which orbax refuses without a target."""
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))
  everywhere = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  return jax.tree.map(
    lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=everywhere),
    mngr.item_metadata(step),
  )


def restore_params(workdir: str, step: int | None = None) -> PyTree:
  """The model parameters of a run's latest good (or given) checkpoint."""
  return restore_state(workdir, step)["params"]


def restore_state(workdir: str, step: int | None = None) -> dict[str, Any]:
  """The whole saved state (step, params, opt_state) as nested dicts."""
  run = folder.RunDir(workdir)
  run.check_layout()
  if not os.path.isdir(run.checkpoints):
    raise FileNotFoundError(f"No checkpoint under {workdir}/checkpoints.")
  mngr = run.checkpoint_manager(read_only=True)
  steps = [step] if step is not None else sorted(mngr.all_steps(), reverse=True)
  if not steps:
    raise FileNotFoundError(f"No checkpoint under {workdir}/checkpoints.")
  errors = []
  for s in steps:
    try:
      restored = _restore_checked(mngr, s, _on_every_device(mngr, s))
    except Exception as e:
      logging.warning("Checkpoint %d of %s is damaged: %s", s, workdir, e)
      errors.append(f"step {s}: {_first_line(e)}")
      continue
    mngr.close()
    return restored
  mngr.close()
  raise CheckpointError(f"No readable checkpoint under {workdir}: {errors}.")

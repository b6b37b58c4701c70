"""Tests for checkpoints that survive damage, full disks and other models
(lstm_unsup/checkpoints.py)."""

import errno
import gc
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from etils import epath

from lstm_unsup import input_pipeline, models, train, training_step
from lstm_unsup.run import checkpoints, folder, metrics_io
from tests.cli_test import QUICK, ROOT, file_size_limited
from tests.train_test import _quick

# Orbax leaves the reads of a damaged checkpoint's other arrays pending;
# Python reports them when they are collected.
pytestmark = pytest.mark.filterwarnings(
  "ignore::pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture(autouse=True)
def _collect_pending_reads():
  """Collects them before each test ends, where the filter above holds,
  instead of during whichever test runs next on this worker."""
  yield
  gc.collect()


def _copy(quick_run, tmp_path) -> str:
  """A private copy of the session's finished quick run (checkpoints 4, 8)."""
  workdir = str(tmp_path / "run")
  shutil.copytree(quick_run[1], workdir)
  return workdir


def _manager(workdir: str, keep: int = 3):
  return folder.RunDir(workdir).checkpoint_manager(keep)


def _largest_file(folder: Path) -> Path:
  files = [p for p in folder.rglob("*") if p.is_file()]
  return max(files, key=lambda p: p.stat().st_size)


def _flip_one_bit(step_dir: Path) -> None:
  """Orbax reads this back without complaint: only the checksum sees it."""
  path = _largest_file(step_dir)
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0x01
  path.write_bytes(bytes(data))


def _truncate(step_dir: Path) -> None:
  path = _largest_file(step_dir)
  with open(path, "r+b") as f:
    f.truncate(path.stat().st_size // 2)


def _garbage_metadata(step_dir: Path) -> None:
  (step_dir / "default" / "_METADATA").write_text("{not json")


@pytest.fixture(scope="module")
def quick_state(quick_run):
  """A training state shaped like the quick run's (a restore target)."""
  return _state(quick_run[0])


def _state(config):
  mesh = training_step.make_mesh()
  model = models.build_model(config.model)
  digits = input_pipeline.load_train_digits(config)
  batch = input_pipeline.train_batch(config, digits, 0)
  return training_step.create_train_state(config, model, *batch, mesh)


def _steps(workdir: str) -> list[str]:
  return sorted(os.listdir(os.path.join(workdir, "checkpoints")), key=int)


def test_damaged_latest_checkpoint_is_reported_and_training_resumes_from_the_one_before(  # noqa: E501
  quick_run, tmp_path, caplog
):
  config, straight = quick_run
  workdir = _copy(quick_run, tmp_path)
  _flip_one_bit(Path(workdir, "checkpoints", "8"))
  with caplog.at_level(logging.WARNING):
    train.train_and_evaluate(config, workdir)
  assert "Checkpoint 8" in caplog.text and "checksum" in caplog.text
  assert os.listdir(os.path.join(workdir, "corrupt_checkpoints"))[0][:2] == "8-"
  # Steps 5..8 were trained again from checkpoint 4, to the same bits.
  assert _steps(workdir) == ["4", "8"]
  jax.tree.map(
    np.testing.assert_array_equal,
    checkpoints.restore_state(straight),
    checkpoints.restore_state(workdir),
  )
  timeless = lambda w: [  # noqa: E731
    {k: v for k, v in r.items() if k != "steps_per_sec"}
    for r in metrics_io.read_metrics(w)
  ]
  assert timeless(workdir) == timeless(straight)


@pytest.mark.parametrize(
  "damage, symptom",
  [
    (_flip_one_bit, "checksum"),
    (_truncate, "Exception"),
    (_garbage_metadata, "JSONDecodeError"),
  ],
)
def test_each_kind_of_damage_is_detected(
  quick_run, quick_state, tmp_path, damage, symptom
):
  workdir = _copy(quick_run, tmp_path)
  damage(Path(workdir, "checkpoints", "8"))
  mngr = _manager(workdir)
  step, state = checkpoints.restore_latest(mngr, quick_state)
  assert step == 4 and int(state.step) == 4
  assert _steps(workdir) == ["4"]  # 8 was moved aside
  with pytest.raises(checkpoints.CheckpointError, match=symptom):
    damage(Path(workdir, "checkpoints", "4"))
    checkpoints.restore_latest(_manager(workdir), state)
  assert _steps(workdir) == ["4"]  # nothing good left: nothing is moved


@pytest.mark.parametrize(
  "field, value, message",
  [
    (
      "hidden",
      16,
      r"params/decoder_future/lstm/layer_0/bias is \(128,\) in "
      r"the checkpoint but \(64,\) in the model",
    ),
    (
      "num_layers",
      2,
      "params/decoder_future/lstm/layer_1/bias is missing in the checkpoint",
    ),
  ],
)
def test_restoring_into_another_shape_names_the_parameter(
  quick_run, tmp_path, field, value, message
):
  workdir = _copy(quick_run, tmp_path)
  config = _quick(tmp_path)
  config.model[field] = value
  with pytest.raises(checkpoints.MismatchError, match=message):
    checkpoints.restore_latest(_manager(workdir), _state(config))
  assert _steps(workdir) == ["4", "8"]  # a mismatch is not damage


def _fill_disk_at(step: int, monkeypatch) -> None:
  """Makes orbax's metadata write of checkpoint `step` fail as on a full
  disk, after its arrays were written into the temporary folder."""
  real = epath.Path.write_text

  def write_text(self, *args, **kwargs):
    if (
      f"{step}{checkpoints.TMP_MARK}" in str(self) and self.name == "_METADATA"
    ):
      raise OSError(errno.ENOSPC, "No space left on device", str(self))
    return real(self, *args, **kwargs)

  monkeypatch.setattr(epath.Path, "write_text", write_text)


def test_full_disk_during_a_save_fails_clearly_and_keeps_the_previous(
  tmp_path, monkeypatch
):
  config = _quick(tmp_path)  # checkpoints at steps 4 and 8
  workdir = str(tmp_path / "run")
  _fill_disk_at(8, monkeypatch)
  with pytest.raises(
    checkpoints.CheckpointError,
    match=r"checkpoint 8 .* the disk is full\. The last complete checkpoint "
    r"\(step 4\) is intact",
  ):
    train.train_and_evaluate(config, workdir)
  assert _steps(workdir) == ["4"]  # and no temporary folder is left
  assert int(checkpoints.restore_state(workdir)["step"]) == 4


@pytest.fixture
def tiny_disk(tmp_path):
  """A real 3 MB file system (tmpfs): needs root, skipped otherwise."""
  mount = tmp_path / "tiny"
  mount.mkdir()
  command = ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)]
  if (
    os.geteuid() != 0 or subprocess.run(command, capture_output=True).returncode
  ):
    pytest.skip("mounting a tmpfs needs root")
  yield mount
  subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_really_full_disk_keeps_the_previous_checkpoint(tmp_path, tiny_disk):
  config = _quick(tmp_path)  # each checkpoint takes 2 MB of the 3
  workdir = str(tiny_disk / "run")
  with pytest.raises(checkpoints.CheckpointError, match="the disk is full"):
    train.train_and_evaluate(config, workdir)
  assert _steps(workdir) == ["4"]
  assert int(checkpoints.restore_state(workdir)["step"]) == 4


def _fail_metadata_write(error: Exception, monkeypatch) -> None:
  """Makes orbax's write of a checkpoint's _METADATA raise `error` (in its
  background thread, after the arrays were written)."""
  real = epath.Path.write_text

  def write_text(self, *args, **kwargs):
    if checkpoints.TMP_MARK in str(self) and self.name == "_METADATA":
      raise error
    return real(self, *args, **kwargs)

  monkeypatch.setattr(epath.Path, "write_text", write_text)


@pytest.mark.parametrize(
  "error, shown",
  [
    (OSError(errno.ENOSPC, "No space left on device", "_METADATA"), False),
    (OSError(errno.EFBIG, "File too large", "_METADATA"), False),
    (TypeError("a bug in the state's types"), True),  # not the disk's fault
  ],
  ids=["disk_full", "file_too_large", "bug"],
)
def test_orbax_logs_a_bug_in_a_save_but_not_a_file_system_failure(
  tmp_path, monkeypatch, caplog, error, shown
):
  mngr = _manager(str(tmp_path))
  _fail_metadata_write(error, monkeypatch)
  with caplog.at_level(logging.ERROR):
    checkpoints.save(mngr, 1, {"w": np.ones(3, np.float32)})
    with pytest.raises(checkpoints.CheckpointError, match="checkpoint 1 "):
      checkpoints.finish(mngr)
  from_orbax = [r for r in caplog.records if "/orbax/" in r.pathname]
  tracebacks = [r for r in from_orbax if r.exc_info and r.exc_info[1]]
  if shown:  # a bug keeps orbax's report of it, with its traceback
    assert any("a bug in the state" in repr(r.exc_info) for r in tracebacks)
  else:  # the CheckpointError is the only report
    assert from_orbax == [], [r.getMessage()[:200] for r in from_orbax]


@pytest.mark.parametrize(
  "error, shown",
  [
    (
      ValueError("OUT_OF_RANGE: Failed writing: \"d/1\" [os_error_code='27']"),
      0,
    ),
    (TypeError("a bug in the state's types"), 1),
  ],
)
def test_asyncios_unretrieved_orbax_write_failures_are_dropped(error, shown):
  """Runs of the suite printed asyncio's "Task exception was never
  retrieved" of an orbax write (naming orbax's coroutine), and "Future
  exception was never retrieved" (naming only the failed write's path),
  each with its traceback."""
  failed = f'{error} "run/checkpoints/2{checkpoints.TMP_MARK}/d/1"'
  future_error = type(error)(failed) if shown == 0 else error
  task = (
    "Task exception was never retrieved\nfuture: <Task coro=<write() "
    "defined at /site-packages/orbax/checkpoint/serialization.py:188>>"
  )
  future = f"Future exception was never retrieved\nfuture: {future_error!r}"
  checkpoints._quiet_save_failures()
  for message, exc in [(task, error), (future, future_error)]:
    record = logging.LogRecord(
      "asyncio",
      logging.ERROR,
      "/usr/lib/python3/asyncio/base_events.py",
      1771,
      message,
      (),
      (type(exc), exc, None),
    )
    assert logging.getLogger("asyncio").filter(record) == shown, message


def _train_command(workdir, tmp_path, *overrides, max_file_bytes=None):
  args = [
    "-m",
    "lstm_unsup.main",
    QUICK,
    f"--workdir={workdir}",
    "--config.data.source=offline",
    f"--config.data.data_dir={tmp_path / 'data'}",
    *overrides,
  ]
  return subprocess.run(
    [sys.executable, *args]
    if max_file_bytes is None
    else file_size_limited(max_file_bytes, *args),
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
    env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")},
  )


def _only_the_checkpoint_line(proc) -> str:
  """The one line of a failed save, once sure that nothing else was said
  but the run's progress (absl's INFO lines) and at most one warning."""
  assert proc.returncode == 1, proc.stderr[-3000:]
  lines = proc.stderr.strip().splitlines()
  others = [ln for ln in lines[:-1] if not re.match(r"I\d{4} ", ln)]
  assert len(others) <= 1 and len(lines) < 30, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr
  assert lines[-1].startswith("Checkpoint problem: "), lines[-1]
  return lines[-1]


def test_a_save_past_the_file_size_limit_is_one_line_naming_the_file(tmp_path):
  """Each file may hold 400 kB: more than any file written before the
  checkpoint, less than one of its arrays (512 kB), so its array file fails
  with EFBIG (orbax's threads printed 335 lines of tracebacks before)."""
  workdir = tmp_path / "run"
  proc = _train_command(
    workdir,
    tmp_path,
    "--config.train.num_steps=1",
    max_file_bytes=400 * 1024,
  )
  line = _only_the_checkpoint_line(proc)
  start = (
    f"Checkpoint problem: Saving checkpoint 1 under {workdir}/checkpoints "
    f"failed: File too large: '{workdir}/checkpoints/1.orbax-checkpoint-tmp/"
  )
  assert line.startswith(start), line
  assert "The last complete checkpoint (none) is intact." in line
  assert os.listdir(workdir / "checkpoints") == []


def test_a_really_full_disk_is_one_line_on_the_command_line(
  tmp_path, tiny_disk
):
  """Checkpoint 1 fills most of the 3 MB; checkpoint 2 fails (it printed
  559 lines, orbax's and tensorstore's tracebacks, before the one line)."""
  workdir = tiny_disk / "run"
  proc = _train_command(
    workdir,
    tmp_path,
    "--config.train.num_steps=2",
    "--config.train.checkpoint_every_steps=1",
  )
  line = _only_the_checkpoint_line(proc)
  assert line == (
    f"Checkpoint problem: Saving checkpoint 2 under {workdir}/checkpoints "
    "failed: the disk is full. The last complete checkpoint (step 1) is "
    "intact. Free space or fix the cause, then rerun the same command to "
    "resume from it."
  )
  assert _steps(str(workdir)) == ["1"]


def test_a_state_with_a_nan_is_never_saved(tmp_path):
  mngr = _manager(str(tmp_path))
  good = {"params": {"w": np.ones(3, np.float32)}, "step": np.int32(1)}
  checkpoints.save(mngr, 1, good)
  bad = {"params": {"w": np.array([1, np.nan, 1], np.float32)}, "step": 2}
  with pytest.raises(
    FloatingPointError,
    match="params/w is not finite after step 2; not saving it. The last "
    "good checkpoint is step 1",
  ):
    checkpoints.save(mngr, 2, bad)
  checkpoints.finish(mngr)
  assert mngr.all_steps() == [1]


def test_the_number_of_checkpoints_kept_is_configurable(tmp_path):
  mngr = _manager(str(tmp_path), 2)
  for step in range(1, 6):
    checkpoints.save(mngr, step, {"w": np.full(2, step, np.float32)})
  checkpoints.finish(mngr)
  assert mngr.all_steps() == [4, 5]


def test_checkpoints_without_checksums_still_restore(tmp_path):
  state = {"params": {"w": np.arange(3, dtype=np.float32)}}
  mngr = _manager(str(tmp_path))
  mngr.save(5, args=ocp.args.StandardSave(state))  # as before checksums
  mngr.wait_until_finished()
  step, restored = checkpoints.restore_latest(mngr, state)
  assert step == 5
  np.testing.assert_array_equal(restored["params"]["w"], state["params"]["w"])


def test_only_the_training_run_deletes_a_save_in_progress(quick_run, tmp_path):
  workdir = _copy(quick_run, tmp_path)
  partial = Path(workdir, "checkpoints", f"12{checkpoints.TMP_MARK}")
  partial.mkdir()
  checkpoints.restore_params(workdir)  # a reader, e.g. eval beside training
  assert partial.exists()
  _manager(workdir)  # the run, restarted after a kill
  deadline = time.monotonic() + 30  # orbax deletes in the background
  while partial.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
  assert not partial.exists()

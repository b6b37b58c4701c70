"""Tests of the run folder (lstm_unsup/folder.py): one process at a time
holds it, a second one is refused before it touches anything, and a folder
that is not this run's is refused before any compute."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lstm_unsup import config_lib, eval, features, train
from lstm_unsup.configs import composite
from lstm_unsup.run import checkpoints, folder
from tests.train_test import _quick

ROOT = Path(__file__).resolve().parent.parent
HOLD = """
import sys
from lstm_unsup.run import folder
with folder.RunDir(sys.argv[1]).locked():
  print("locked", flush=True)
  sys.stdin.read()  # until the test closes it
"""


@contextlib.contextmanager
def _held(workdir):
  """Another process holding the lock of `workdir` until the block ends."""
  holder = subprocess.Popen(
    [sys.executable, "-c", HOLD, str(workdir)],
    cwd=ROOT,
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    text=True,
  )
  try:
    assert holder.stdout.readline() == "locked\n"
    yield holder
  finally:
    holder.stdin.close()
    holder.wait(timeout=60)


def _listing(folder: Path) -> dict:
  """Every path under `folder`, with the bytes of each file."""
  return {
    str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
    for p in sorted(folder.rglob("*"))
  }


def test_a_held_workdir_refuses_training_and_is_left_untouched(tmp_path):
  workdir = tmp_path / "run"
  (workdir / "checkpoints" / f"3{checkpoints.TMP_MARK}").mkdir(parents=True)
  (workdir / "metrics.jsonl").write_text(
    '{"step": 1, "split": "train", "loss": 1.0}\n'
  )
  with _held(workdir) as holder:
    before = _listing(workdir)
    start = time.monotonic()
    with pytest.raises(folder.WorkdirBusyError) as error:
      train.train_and_evaluate(_quick(tmp_path), str(workdir))
    assert time.monotonic() - start < 20
    assert _listing(workdir) == before  # the save in progress is still there
  message = str(error.value)
  assert f"{workdir} is in use by process {holder.pid} on " in message
  assert socket.gethostname() in message and " since 20" in message
  assert "python" in message and "\n" not in message


def test_eval_and_a_feature_export_into_the_run_wait_for_the_lock(
  quick_run, tmp_path
):
  workdir = str(tmp_path / "run")
  shutil.copytree(quick_run[1], workdir)
  inside = os.path.join(workdir, "features.npy")
  with _held(workdir):
    with pytest.raises(folder.WorkdirBusyError):
      eval.evaluate_run(workdir)
    with pytest.raises(folder.WorkdirBusyError):
      features.export(workdir, "test", "", inside, "h")
    # Features written elsewhere only read the run: no lock needed.
    outside = str(tmp_path / "features.npy")
    feats, _ = features.export(workdir, "test", "", outside, "h")
    assert feats.shape[0] > 0
  assert not os.path.exists(inside)
  assert eval.evaluate_run(workdir)["step"] == 8  # free again


def test_the_lock_dies_with_its_holder(tmp_path):
  workdir = tmp_path / "run"
  with _held(workdir) as holder:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    with folder.RunDir(str(workdir)).locked() as run:
      assert run.path == str(workdir)
  assert os.listdir(workdir) == []  # the lock file goes with the lock


def test_a_failed_start_leaves_no_new_workdir_and_keeps_an_old_one(tmp_path):
  new, old = tmp_path / "new", tmp_path / "old"
  old.mkdir()
  for path in (new, old):
    with pytest.raises(KeyError), folder.RunDir(str(path)).locked():
      raise KeyError("a failure during start-up")
  assert not new.exists() and old.exists() and not os.listdir(old)


@pytest.mark.parametrize("name", ["checkpoints", "figures"])
def test_a_file_where_a_folder_belongs_is_refused_before_any_compute(
  quick_run, tmp_path, name
):
  empty = tmp_path / "empty"
  empty.mkdir()
  (empty / name).write_text("")
  with pytest.raises(NotADirectoryError, match=f"{name} is a file, not a"):
    train.train_and_evaluate(_quick(tmp_path), str(empty))
  assert os.listdir(empty) == [name]  # nothing written beside it
  if name == "checkpoints":  # and a reader says so, before it evaluates
    workdir = tmp_path / "run"
    shutil.copytree(quick_run[1], workdir)
    shutil.rmtree(workdir / name)
    (workdir / name).write_text("")
    with pytest.raises(NotADirectoryError, match=f"{name} is a file, not a"):
      eval.evaluate_run(str(workdir))


# ----------------------------------------------------------------------------
# Which config made the run (moved here from config_lib).


def _workdir_with(tmp_path, files: dict) -> str:
  workdir = tmp_path / "run"
  for name, text in files.items():
    (workdir / name).parent.mkdir(parents=True, exist_ok=True)
    (workdir / name).write_text(text)
  return str(workdir)


@pytest.mark.parametrize(
  "files, message",
  [
    ({"config.json": '{"seed": 0, "mod'}, "config.json is damaged"),
    ({"config.json": "[1, 2]"}, "config.json does not hold a config"),
    ({"checkpoints/8/x": ""}, "holds checkpoints but no config.json"),
  ],
)
def test_a_workdir_that_is_not_this_runs_is_refused(tmp_path, files, message):
  workdir = _workdir_with(tmp_path, files)
  with pytest.raises(config_lib.ConfigError, match=message):
    folder.RunDir(workdir).check(composite.get_config("quick"))


def test_a_file_as_workdir_is_refused(tmp_path):
  (tmp_path / "run").write_text("")
  with pytest.raises(config_lib.ConfigError, match="is a file"):
    with folder.RunDir(str(tmp_path / "run")).locked():
      pass


def test_resumable_changes_and_new_fields_do_not_block_a_resume(tmp_path):
  config = composite.get_config("quick")
  values = config.to_dict()
  del values["train"]["skip_nonfinite"]  # a config.json from before it
  workdir = _workdir_with(tmp_path, {"config.json": json.dumps(values)})
  config.train.num_steps = 100
  config.train.skip_nonfinite = True
  folder.RunDir(workdir).check(config)
  assert os.listdir(workdir) == ["config.json"]


def test_a_patches_run_from_before_cut_aware_splits_keeps_its_split(tmp_path):
  # Its config.json lacks data.split_at_cuts: read back, it splits as it did
  # (across cuts), and resuming it under the new default is refused.
  from lstm_unsup.configs import patches

  config = patches.get_config("quick")
  values = config.to_dict()
  del values["data"]["split_at_cuts"]
  assert not config_lib.from_dict(values).data.split_at_cuts
  workdir = _workdir_with(tmp_path, {"config.json": json.dumps(values)})
  with pytest.raises(config_lib.ConfigError, match="split_at_cuts"):
    folder.RunDir(workdir).check(config)
  config.data.split_at_cuts = False
  folder.RunDir(workdir).check(config)
  # A Moving MNIST run is not touched: the field means nothing to it.
  values = composite.get_config("quick").to_dict()
  del values["data"]["split_at_cuts"]
  assert config_lib.from_dict(values).data.split_at_cuts


def test_a_failed_config_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
  run = folder.RunDir(str(tmp_path))
  run.write_config({"seed": 0})

  def fail(*args):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(os, "replace", fail)
  with pytest.raises(OSError):
    run.write_config({"seed": 1, "more": "x" * 1000})
  assert run.read_config() == {"seed": 0}  # and its checksum still matches
  # No temporary file left.
  assert sorted(os.listdir(tmp_path)) == ["config.json", "config.json.sha256"]

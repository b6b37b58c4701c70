"""Tests of the training command (lstm_unsup/main.py): bad input ends in one
line, a non-zero exit and no output; a SIGKILLed run resumes exactly."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from lstm_unsup.run import checkpoints
from tests.train_test import _timeless

ROOT = Path(__file__).resolve().parent.parent
QUICK = "--config=lstm_unsup/configs/composite.py:quick"


def _command(workdir, *overrides):
  """The training command at the quick scale."""
  return [
    sys.executable,
    "-m",
    "lstm_unsup.main",
    QUICK,
    f"--workdir={workdir}",
  ] + list(overrides)


def _train(workdir, *overrides, timeout=300):
  return subprocess.run(
    _command(workdir, *overrides),
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def _truncated_npz(folder: Path) -> Path:
  folder.mkdir()
  images = np.zeros((30, 28, 28), np.uint8)
  np.savez(folder / "mnist.npz", x_train=images, y_train=np.zeros(30))
  data = (folder / "mnist.npz").read_bytes()
  (folder / "mnist.npz").write_bytes(data[: len(data) // 2])
  return folder


@pytest.mark.parametrize(
  "overrides, message",
  [
    (["--config.train.num_steps=abc"], "Bad flag: flag --config.train.num_ste"),
    (
      ["--config.data.source=files", "--config.data.data_dir={empty}"],
      "Data unavailable: No mnist.npz and no train-images-idx3-ubyte",
    ),
    (
      ["--config.data.source=files", "--config.data.data_dir={truncated}"],
      "Bad data: {truncated}/mnist.npz is damaged",
    ),
  ],
)
def test_bad_input_ends_in_one_line_and_leaves_nothing(
  tmp_path, overrides, message
):
  (tmp_path / "empty").mkdir()
  folders = {
    "empty": tmp_path / "empty",
    "truncated": _truncated_npz(tmp_path / "truncated"),
  }
  proc = _train(tmp_path / "run", *(o.format(**folders) for o in overrides))
  assert proc.returncode == 1
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith(message.format(**folders)), last
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "run").exists()


def test_a_run_killed_at_a_random_step_resumes_to_the_same_bits(tmp_path):
  path = ROOT / "scripts" / "kill_and_compare.py"
  spec = importlib.util.spec_from_file_location("kill_and_compare", path)
  script = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(script)
  seed = int.from_bytes(os.urandom(2), "big")  # a new kill point each time
  status = script.main(
    [
      "--kills=1",
      "--num_steps=10",
      f"--seed={seed}",
      f"--workdir={tmp_path}",
      "--jax_cache",
    ]
  )
  assert status == 0, f"kill_and_compare failed with --seed={seed}"


def test_two_trainers_on_one_workdir_one_runs_and_one_is_refused(
  quick_run, tmp_path
):
  workdir = tmp_path / "run"
  data = f"--config.data.data_dir={tmp_path / 'data'}"
  cmd = _command(workdir, "--config.data.source=offline", data)
  start = time.monotonic()
  procs = [
    subprocess.Popen(
      cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for _ in range(2)
  ]
  while all(p.poll() is None for p in procs):
    time.sleep(0.05)
  refused = next(p for p in procs if p.poll() is not None)
  seconds = time.monotonic() - start
  ran = procs[1 - procs.index(refused)]
  _, ran_err = ran.communicate(timeout=300)
  _, refused_err = refused.communicate()
  assert refused.returncode == 1, refused_err[-3000:]
  assert ran.returncode == 0, ran_err[-3000:]
  assert seconds < 60 and "Traceback" not in refused_err
  last = refused_err.strip().splitlines()[-1]
  assert last.startswith(f"Workdir in use: {workdir} is in use by process "), (
    last
  )
  assert f"process {ran.pid} on " in last and "lstm_unsup.main" in last
  # The run that ran is the same, bit for bit, as one that was alone.
  assert _timeless(str(workdir)) == _timeless(quick_run[1])
  jax.tree.map(
    np.testing.assert_array_equal,
    checkpoints.restore_state(quick_run[1]),
    checkpoints.restore_state(str(workdir)),
  )


def test_an_impossible_model_is_refused_in_seconds_and_writes_nothing(
  tmp_path,
):
  start = time.monotonic()
  proc = _train(
    tmp_path / "run",
    "--config.model.hidden=10000000",
    "--config.data.source=offline",
    f"--config.data.data_dir={tmp_path / 'data'}",
    timeout=60,  # it used to hang
  )
  assert time.monotonic() - start < 30
  assert proc.returncode == 1 and "Traceback" not in proc.stderr
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("Model too large: "), last
  assert "PiB" in last and "parameters" in last and "available" in last
  assert not (tmp_path / "run").exists()

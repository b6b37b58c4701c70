"""Tests of the training command (lstm_unsup/main.py): bad input ends in one
line, a non-zero exit and no output; a SIGKILLed run resumes exactly."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _train(workdir, *overrides):
  return subprocess.run(
    [
      sys.executable,
      "-m",
      "lstm_unsup.main",
      "--config=lstm_unsup/configs/composite.py:quick",
      f"--workdir={workdir}",
      *overrides,
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
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

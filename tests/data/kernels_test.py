"""Tests of the generator's compiled kernels (lstm_unsup/data/kernels.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

ROOT = Path(__file__).resolve().parent.parent.parent
_GENERATE = """
import numpy as np
from lstm_unsup.data import moving_mnist
pool = np.random.default_rng(0).integers(0, 255, (10, 28, 28), np.uint8)
print(moving_mnist.generate(pool, 0, 4, num_frames=5, backend="numba").sum())
"""


def test_later_processes_load_the_cached_kernels_and_add_none(tmp_path):
  """Each process added a ~195 kB entry to paste_frames' cache (165 of them
  in a month), because the kernels were closures of `compiled()`."""
  env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))

  def run():
    done = subprocess.run(
      [sys.executable, "-c", _GENERATE],
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    cached = sorted(p.name for p in tmp_path.rglob("*.nbc"))
    return done.stdout, cached

  first, cached = run()
  assert cached  # it did cache
  for _ in range(2):
    assert run() == (first, cached)

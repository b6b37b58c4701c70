"""Tests of the package's import (lstm_unsup/__init__.py)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SHOW_INFO = """
import logging
logging.basicConfig(level=logging.INFO)
import lstm_unsup, jax
print(jax.devices())
logging.getLogger("jax._src.xla_bridge").info("a later notice")
"""


def test_a_cpu_run_prints_no_notice_of_a_missing_libtpu():
  """Issue 35: every command printed jax's INFO line "Unable to initialize
  backend 'tpu': ... libtpu.so: cannot open shared object file"."""
  proc = subprocess.run(
    [sys.executable, "-c", _SHOW_INFO],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=120,
    env={"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": ""},
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "a later notice" in proc.stderr  # jax's other INFO lines still show
  assert "libtpu" not in proc.stderr, proc.stderr

"""Test settings shared by every test file."""

import os
import shutil
import tempfile

# The tests' tiny models spend their time compiling, not running: skip
# XLA's expensive optimisations (about a third less time per compile).
os.environ.setdefault(
  "XLA_FLAGS",
  "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
)

# The tests compile the same small models many times, in this process and
# in the commands they start: a compilation cache shared by the run's
# workers and subprocesses (made here, in the first process, and removed
# at its end) saves about a third of the suite's time.
_MADE_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _MADE_CACHE = tempfile.mkdtemp(prefix="lstm_unsup_tests_jax_cache_")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _MADE_CACHE
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"

import jax  # noqa: E402
import pytest  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
  del session, exitstatus
  if _MADE_CACHE is not None:
    shutil.rmtree(_MADE_CACHE, ignore_errors=True)


# Implicit rank promotion hides shape bugs; make it an error in tests.
jax.config.update("jax_numpy_rank_promotion", "raise")


def train_quick(root, get_config):
  """(config, workdir): `get_config("quick")` trained under `root` on the
  offline digits."""
  from lstm_unsup import train  # noqa: PLC0415

  config = get_config("quick")
  config.data.data_dir = str(root / "data")
  config.data.source = "offline"
  workdir = str(root / "run")
  train.train_and_evaluate(config, workdir)
  return config, workdir


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
  """A composite model trained for a few steps at the quick scale."""
  from lstm_unsup.configs import composite  # noqa: PLC0415

  return train_quick(tmp_path_factory.mktemp("quick_run"), composite.get_config)

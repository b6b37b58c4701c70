"""Test settings shared by every test file."""

import os

# The tests' tiny models spend their time compiling, not running: skip
# XLA's expensive optimisations (about a third less time per compile).
os.environ.setdefault(
  "XLA_FLAGS",
  "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
)

import jax  # noqa: E402
import pytest  # noqa: E402

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

"""Opening a trained run (run/opening.py): its config, model and latest
parameters, its recorded statistics, its encoder."""

import jax
import numpy as np
import pytest

from lstm_unsup.run import checkpoints, opening


def test_a_run_opens_as_it_was_trained(quick_run):
  config, workdir = quick_run
  got, model, params = opening.load_run(workdir)
  assert got.to_dict() == config.to_dict()
  latest = checkpoints.restore_params(workdir)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(latest)):
    np.testing.assert_array_equal(a, b)
  assert opening.load_run(workdir, params=False)[2] is None
  assert opening.patch_stats(workdir, got) is None  # Moving MNIST: none
  run_config, encoder = opening.encoder_of_run(workdir)
  assert run_config.model.hidden == config.model.hidden
  assert set(encoder) == set(params["encoder"])


def test_a_folder_that_is_not_a_run_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="config.json not found"):
    opening.load_run(str(tmp_path))

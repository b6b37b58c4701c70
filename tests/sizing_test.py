"""Tests of the memory estimate made before training (lstm_unsup/sizing.py):
it is what XLA allocates, and a model that cannot fit is refused with it."""

import jax
import numpy as np
import pytest

from lstm_unsup import (
  config_lib,
  input_pipeline,
  models,
  sizing,
  training_step,
)
from lstm_unsup.configs import composite, future_conditional
from tests.train_test import _quick


def _estimate(config, num_devices=1):
  model = models.build_model(config.model)
  tx = training_step.build_optimizer(config)
  return sizing.estimate(config, model, tx, num_devices)


@pytest.mark.parametrize(
  "get_config, changes",
  [
    (composite.get_config, {"model.hidden": 48, "train.batch_size": 8}),
    (  # peepholes, a conditional decoder
      future_conditional.get_config,
      {"model.hidden": 128, "model.peepholes": True, "train.batch_size": 16},
    ),
    (  # the authors' optimiser: one moment
      composite.get_config,
      {"model.hidden": 64, "optim.name": "paper"},
    ),
  ],
)
def test_the_estimate_is_what_xla_compiles(tmp_path, get_config, changes):
  config = _quick(tmp_path, get_config)
  config.update_from_flattened_dict(changes)
  estimate = _estimate(config)
  model = models.build_model(config.model)
  digits = input_pipeline.load_train_digits(config)
  batch = input_pipeline.train_batch(config, digits, 1)
  mesh = training_step.make_mesh(1)
  state = training_step.create_train_state(config, model, *batch, mesh)
  params = sum(x.nbytes for x in jax.tree.leaves(state.params))
  assert estimate.parameters == estimate.gradients == params
  opt = sum(x.nbytes for x in jax.tree.leaves(state.opt_state))
  assert estimate.optimiser == opt  # the real init, counted exactly
  step = training_step.make_train_step(config, model, mesh)
  xla = step.compile(
    state, *training_step.shard_batch(mesh, *batch)
  ).memory_analysis()
  frames = sum(np.asarray(a).nbytes for a in batch)
  whole = sum(x.nbytes for x in jax.tree.leaves(state))  # and the step
  assert xla.argument_size_in_bytes == whole + params + frames
  # Activations: the forward's residuals and the frames, about. (XLA's
  # update of the authors' optimiser takes temporaries too, not counted.)
  needed = xla.temp_size_in_bytes + frames
  if config.optim.name == "adam":
    assert needed / 2 < estimate.activations < 3 * needed


@pytest.mark.parametrize("scale, moments", [("paper", 1), ("paper_adam", 2)])
def test_the_paper_model_is_counted_from_its_real_init(scale, moments):
  config = composite.get_config(scale)
  estimate = _estimate(config)
  # 2 x 2048 units with peepholes on 64x64 frames: about 200 million
  # parameters; the authors' update keeps one velocity, Adam two moments
  # and a count.
  assert 190e6 < estimate.parameters / 4 < 210e6
  count = 4 if moments == 2 else 0
  assert estimate.optimiser == moments * estimate.parameters + count
  assert estimate.activations < estimate.parameters


def test_a_model_that_cannot_fit_is_refused_with_its_estimate(monkeypatch):
  config = composite.get_config("quick")
  config.model.hidden, config.model.num_layers = 2000, 2
  config.train.batch_size = 16
  monkeypatch.setattr(
    sizing, "available_memory", lambda devices: (2**30, "the host (CPU)")
  )
  model = models.build_model(config.model)
  tx = training_step.build_optimizer(config)
  devices = jax.devices()[:1]
  with pytest.raises(sizing.TooLargeError) as error:
    sizing.check_fits(config, model, tx, devices)
  message = str(error.value)
  assert isinstance(error.value, config_lib.ConfigError)
  assert message.startswith("config.model.hidden=2000 (2 layers, batch 16)")
  assert "needs about " in message and " GiB per device: parameters " in message
  assert "the host (CPU) has 1.0 GiB available" in message
  assert "Lower config.model.hidden" in message
  config.model.hidden = 32  # a quick model fits in that
  sizing.check_fits(config, models.build_model(config.model), tx, devices)


def test_available_memory_is_the_hosts_on_a_cpu():
  devices = [d for d in jax.devices() if d.platform == "cpu"]
  if not devices:
    pytest.skip("no CPU device")
  available, where = sizing.available_memory(devices)
  assert 0 < available and "host" in where

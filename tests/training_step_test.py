"""One training update (training_step.py): golden values, the reused
gradient buffer, the authors' clipped update and sharding over devices."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

from lstm_unsup import (
  input_pipeline,
  models,
  training_step,
)
from lstm_unsup.configs import future_conditional
from tests.train_test import _quick


def _one_step(config, mesh):
  model = models.build_model(config.model)
  digits = input_pipeline.load_train_digits(config)
  batch = input_pipeline.train_batch(config, digits, 1)
  state = training_step.create_train_state(config, model, *batch, mesh)
  params0 = jax.tree.map(np.asarray, state.params)
  step = training_step.make_train_step(config, model, mesh)
  state, metrics = step(state, *training_step.shard_batch(mesh, *batch))
  return params0, state, metrics


def test_golden_values_after_one_step(tmp_path):
  # If this fails after an intended change to the model, data or optimiser,
  # update the numbers; otherwise something changed what a run computes.
  config = _quick(tmp_path)
  _, state, metrics = _one_step(config, training_step.make_mesh())
  np.testing.assert_allclose(float(metrics["loss"]), GOLDEN_LOSS, rtol=1e-4)
  np.testing.assert_allclose(
    float(metrics["grad_norm"]), GOLDEN_GRAD_NORM, rtol=1e-3
  )
  assert int(state.step) == 1


GOLDEN_LOSS = 1079.3793  # nats/frame, reconstruction + future


GOLDEN_GRAD_NORM = 36.2287


def test_steps_write_the_gradients_over_one_reused_buffer(tmp_path):
  config = _quick(tmp_path)
  mesh = training_step.make_mesh(1)
  model = models.build_model(config.model)
  digits = input_pipeline.load_train_digits(config)
  step = training_step.make_train_step(config, model, mesh)
  state = training_step.create_train_state(
    config, model, *input_pipeline.train_batch(config, digits, 1), mesh
  )
  loss_fn = training_step.make_loss_fn(config, model)
  addresses = []
  for k in range(1, 4):
    batch = training_step.shard_batch(
      mesh, *input_pipeline.train_batch(config, digits, k)
    )
    (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params, *batch
    )
    expected = jax.tree.map(np.asarray, grads)
    state, metrics = step(state, *batch)
    np.testing.assert_allclose(float(metrics["loss"]), float(loss), rtol=1e-6)
    # The buffer now holds this step's gradients ...
    jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
      jax.tree.map(np.asarray, step._grads),
      expected,
    )
    # ... in the same memory every step: no fresh allocation.
    addresses.append(
      [a.unsafe_buffer_pointer() for a in jax.tree.leaves(step._grads)]
    )
  assert addresses[0] == addresses[1] == addresses[2]


def test_paper_optimizer_moves_no_weight_more_than_1e4(tmp_path):
  config = _quick(tmp_path, future_conditional.get_config)
  config.optim.name = "paper"
  config.optim.learning_rate = 1.0  # huge steps, still clipped per element
  params0, state, _ = _one_step(config, training_step.make_mesh())
  # The update (the clipped velocity) is at most 1e-4 everywhere...
  velocity = max(
    np.abs(np.asarray(v)).max() for v in jax.tree.leaves(state.opt_state)
  )
  assert 0.99e-4 < velocity <= 1e-4
  # ... so no weight moves more, up to the float32 rounding of w + v.
  for a, b in zip(jax.tree.leaves(params0), jax.tree.leaves(state.params)):
    assert np.all(np.abs(np.asarray(b) - a) <= 1e-4 + 2 * np.spacing(abs(a)))


def test_sharded_step_equals_unsharded(tmp_path):
  script = textwrap.dedent(f"""
    import jax, numpy as np
    from lstm_unsup import train, training_step
    from lstm_unsup.configs import composite
    assert jax.device_count() == 4, jax.devices()
    config = composite.get_config("quick")
    config.data.data_dir = {str(tmp_path)!r}
    config.data.source = "offline"
    config.optim.name = "paper"  # linear in the gradient, unlike Adam
    from tests.training_step_test import _one_step
    _, one, m1 = _one_step(config, training_step.make_mesh(1))
    _, four, m4 = _one_step(config, training_step.make_mesh(4))
    bias = four.params["encoder"]["layer_0"]["bias"]
    assert len(bias.sharding.device_set) == 4
    np.testing.assert_allclose(m1["loss"], m4["loss"], rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(
        a, b, rtol=1e-5, atol=1e-9), one.params, four.params)
    print("SHARDED_OK")
  """)
  env = dict(
    os.environ,
    XLA_FLAGS=os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=4",
    JAX_PLATFORMS="cpu",
  )
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run(
    [sys.executable, "-c", script],
    cwd=root,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert "SHARDED_OK" in proc.stdout, proc.stderr[-3000:]


def test_a_cosine_to_the_last_step_follows_num_steps(tmp_path):
  config = _quick(tmp_path)
  config.train.num_steps, config.optim.warmup_steps = 6, 2

  def updates(decay_steps):
    config.optim.decay_steps = decay_steps
    tx = training_step.build_optimizer(config)
    params = {"w": np.ones(3, np.float32)}
    state, out = tx.init(params), []
    for _ in range(config.train.num_steps):
      step_updates, state = tx.update(
        {"w": np.ones(3, np.float32)}, state, params
      )
      out.append(float(np.asarray(step_updates["w"])[0]))
    return out

  following = updates(-1)
  np.testing.assert_array_equal(following, updates(6))
  # The last update's rate is a cosine's 3/4 of the way to zero (0.146).
  peak = max(abs(u) for u in following)
  np.testing.assert_allclose(abs(following[-1]) / peak, 0.1464, rtol=1e-3)
  # Constant after the warm-up: Adam's step is the rate for a constant
  # gradient (float32 bias corrections: a few ulps of 1).
  np.testing.assert_allclose(abs(updates(0)[-1]), 1e-3, rtol=1e-4)

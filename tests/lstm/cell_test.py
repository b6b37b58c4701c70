"""Tests of the cell's initialisers (lstm/cell.py): the module's standard
default, and the paper's U(+-0.01), which every paper config still asks for
by name."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_unsup import classifier, models
from lstm_unsup.classifier import train as train_classifier
from lstm_unsup.configs import classifier as classifier_configs
from lstm_unsup.lstm import LSTM
from lstm_unsup.sequence.network import Network

B, T, D, H = 32, 10, 16, 64


def _init(model, x, key=0):
  return model.init(jax.random.key(key), x)["params"]


def _unit_scale_statistics(initializer):
  """A two-layer stack on unit-variance inputs: (std of the outputs, rms of
  each layer's input-weight gradient, rms of the gradient reaching the
  first step's input), for a loss summed per sequence."""
  kx, kr = jax.random.split(jax.random.key(1))
  x = jax.random.normal(kx, (B, T, D))
  r = jax.random.normal(kr, (B, T, H))
  model = LSTM(features=H, num_layers=2, initializer=initializer)
  params = _init(model, x)

  def loss(params, x):
    return jnp.sum(model.apply({"params": params}, x)[0] * r) / B

  grads, grad_x = jax.grad(loss, argnums=(0, 1))(params, x)
  out = model.apply({"params": params}, x)[0]
  rms = {
    k: float(jnp.sqrt(jnp.mean(jnp.square(g["w_input"]))))
    for k, g in grads.items()
  }
  return float(out.std()), rms, float(jnp.sqrt(jnp.mean(grad_x[:, 0] ** 2)))


def test_the_default_initializer_keeps_outputs_and_gradients_alive():
  assert LSTM(features=H).initializer == "flax"
  std, rms, first_step = _unit_scale_statistics(LSTM.initializer)
  assert 0.05 < std < 1.0
  assert all(r > 5e-3 for r in rms.values()), rms
  assert first_step > 1e-3
  # The paper's U(+-0.01) starts a stack nearly silent: why it is no default.
  std, rms, first_step = _unit_scale_statistics("authors")
  assert std < 1e-3 and max(rms.values()) < 5e-3 and first_step < 1e-5


def test_flax_initializer_is_flax_lstm_cells():
  params = _init(LSTM(features=H, peepholes=True), jnp.zeros((1, 1, 4 * D)))[
    "layer_0"
  ]
  # LeCun normal: variance 1 / fan-in (a truncated normal, so a little less).
  np.testing.assert_allclose(np.std(params["w_input"]), (4 * D) ** -0.5, 0.1)
  for g in range(4):  # an orthogonal H x H recurrent matrix per gate
    w = np.asarray(params["w_recurrent"][:, g * H : (g + 1) * H])
    np.testing.assert_allclose(w.T @ w, np.eye(H), atol=1e-5)
  np.testing.assert_array_equal(params["bias"], 0.0)
  np.testing.assert_array_equal(params["w_peephole"], 0.0)


def test_authors_initialiser_ranges_and_forget_bias():
  model = LSTM(
    features=64, peepholes=True, initializer="authors", forget_bias=1.0
  )
  params = _init(model, jnp.zeros((1, 1, 32)))["layer_0"]
  assert 0.005 < np.abs(params["w_input"]).max() <= 0.01
  assert 0.05 < np.abs(params["w_peephole"]).max() <= 0.1
  bias = np.asarray(params["bias"]).reshape(4, 64)
  np.testing.assert_array_equal(bias[1], 1.0)  # forget gate
  np.testing.assert_array_equal(bias[[0, 2, 3]], 0.0)


def _assert_authors(lstm_params):
  """Every layer of an LSTM's parameters is U(+-0.01) (peepholes +-0.1)."""
  assert lstm_params, "no LSTM parameters"
  for layer in lstm_params.values():
    for name in ("w_input", "w_recurrent"):
      if name in layer:
        assert np.abs(layer[name]).max() <= 0.01, name
    if "w_peephole" in layer:
      assert np.abs(layer["w_peephole"]).max() <= 0.1


# Every config of the unsupervised models (classifier.py has its own test).
PAPER_CONFIGS = [
  "autoencoder",
  "autoencoder_conditional",
  "composite",
  "composite_conditional",
  "future",
  "future_conditional",
  "patches",
]


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_configs_build_their_lstms_with_the_authors_initializer(name):
  config_module = importlib.import_module(f"lstm_unsup.configs.{name}")
  config = config_module.get_config("paper")
  config.model.hidden = 8  # the paper's init at a size that tests afford
  model = models.build_model(config.model)
  size = config.data.image_size
  frame_dim = size * size * (3 if config.data.dataset == "patches" else 1)
  x = jnp.zeros((1, config.data.num_input_frames, frame_dim))
  f = jnp.zeros((1, config.model.num_future, frame_dim))
  params = model.init(jax.random.key(0), x, f)["params"]
  _assert_authors(params["encoder"])
  for decoder in models.DECODER_SETS[config.model.decoders]:
    _assert_authors(params[f"decoder_{decoder}"]["lstm"])
    # The readout too: w_output U(+-0.01), b_output 0 (docs/recipe.md).
    readout = params[f"decoder_{decoder}"]["readout"]
    assert 0.005 < np.abs(readout["kernel"]).max() <= 0.01
    np.testing.assert_array_equal(readout["bias"], 0.0)


def test_the_paper_classifier_and_sequence_autoencoder_keep_the_authors_init():
  config = classifier_configs.get_config("paper")
  config.model.hidden = 8
  mcfg = train_classifier.model_config(config, num_classes=4)
  params = train_classifier.init_params(config, mcfg, feature_dim=16)
  _assert_authors(params["lstm"])
  assert classifier.ClassifierConfig(num_classes=4).initializer == "authors"
  net = Network(
    units=8, num_layers=2, decoders=("reconstruct",), conditional=(False,)
  )
  x = jnp.ones((1, 5, 3))
  params = net.init(jax.random.key(0), x, jnp.ones((1, 5), bool), 1)
  _assert_authors(params["params"]["encoder"])
  _assert_authors(params["params"]["decoder_reconstruct"]["lstm"])

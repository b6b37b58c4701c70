"""The toy examples of the Keras LSTM-autoencoder tutorial, in lstm_unsup.

The tutorial (J. Brownlee, "A Gentle Introduction to LSTM Autoencoders")
trains on one sequence, 0.1, 0.2, ..., 0.9, shaped [1, 9, 1], with 100-unit
relu LSTMs and Adam on the mean squared error:

  (a) reconstruction: the decoder outputs the 9 inputs;
  (b) prediction: the decoder outputs the 8 next steps (0.2, ..., 0.9);
  (c) composite: one encoder, two decoders with their own weights;
  (d) the standalone encoder: the trained encoder's 100-d feature vector.

As in the tutorial, each decoder reads the encoder's final h at every step
(Keras' RepeatVector) and starts from a zero state; the paper's models, which
hand the encoder state over instead, are in lstm_unsup.models.

  python experiments/tutorial.py [--steps=400] [--seed=0]
"""

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import flags

from lstm_unsup import cli
from lstm_unsup.lstm import LSTM

UNITS = 100


def make_sequence() -> np.ndarray:
  """The tutorial's input: 0.1, ..., 0.9 as an array [1, 9, 1]."""
  return np.linspace(0.1, 0.9, 9, dtype=np.float32).reshape(1, 9, 1)


def _lstm(name: str) -> LSTM:
  # Keras LSTM(100, activation="relu"): glorot/orthogonal init with a unit
  # forget bias; ours is Flax's lecun/orthogonal with the same forget bias.
  return LSTM(
    features=UNITS,
    activation_fn="relu",
    initializer="flax",
    forget_bias=1.0,
    name=name,
  )


class Encoder(nn.Module):
  """Reads the sequence; its final h is the feature vector (example d)."""

  @nn.compact
  def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
    _, ((_, h_BxH),) = _lstm("lstm")(x_BxTxD)
    return h_BxH


class Decoder(nn.Module):
  """RepeatVector + LSTM + TimeDistributed(Dense(1)), as in the tutorial."""

  num_steps: int

  @nn.compact
  def __call__(self, features_BxH: jax.Array) -> jax.Array:
    B, H = features_BxH.shape
    repeated_BxKxH = jnp.broadcast_to(
      features_BxH[:, None, :], (B, self.num_steps, H)
    )
    h_BxKxH, _ = _lstm("lstm")(repeated_BxKxH)
    return nn.Dense(1, name="readout")(h_BxKxH)


class ToyAutoencoder(nn.Module):
  """An encoder and one decoder per entry of `decoder_steps`."""

  decoder_steps: tuple[int, ...]

  def setup(self):
    self.encoder = Encoder(name="encoder")
    self.decoders = [
      Decoder(num_steps=k, name=f"decoder_{i}")
      for i, k in enumerate(self.decoder_steps)
    ]

  def encode(self, x_BxTxD: jax.Array) -> jax.Array:
    return self.encoder(x_BxTxD)

  def __call__(self, x_BxTxD: jax.Array) -> tuple[jax.Array, ...]:
    features_BxH = self.encoder(x_BxTxD)
    return tuple(decoder(features_BxH) for decoder in self.decoders)


def fit(model, x, targets, *, steps: int, seed: int, learning_rate=1e-3):
  """Adam on the summed per-decoder MSE; the whole loop is one jitted scan."""
  params = model.init(jax.random.key(seed), x)["params"]
  optimizer = optax.adam(learning_rate)

  def loss_fn(params):
    outputs = model.apply({"params": params}, x)
    return sum(jnp.mean((o - t) ** 2) for o, t in zip(outputs, targets))

  def train_step(state, _):
    params, opt_state = state
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  @jax.jit
  def train(params):
    state = (params, optimizer.init(params))
    (params, _), losses = jax.lax.scan(train_step, state, length=steps)
    return params, losses

  params, losses = train(params)
  return params, np.asarray(losses)


def run_examples(steps: int = 400, seed: int = 0) -> dict[str, dict]:
  """Trains the three toy models; returns outputs, targets and losses."""
  x = make_sequence()
  inputs = x  # the tutorial reconstructs in input order, unreversed
  future = x[:, 1:]
  setups = {
    "reconstruct": ((9,), (inputs,)),
    "predict": ((8,), (future,)),
    "composite": ((9, 8), (inputs, future)),
  }
  results = {}
  for name, (decoder_steps, targets) in setups.items():
    model = ToyAutoencoder(decoder_steps=decoder_steps)
    params, losses = fit(model, x, targets, steps=steps, seed=seed)
    outputs = model.apply({"params": params}, x)
    results[name] = dict(
      outputs=[np.asarray(o)[0, :, 0] for o in outputs],
      targets=[np.asarray(t)[0, :, 0] for t in targets],
      loss=float(losses[-1]),
      model=model,
      params=params,
    )
  composite = results["composite"]
  features = composite["model"].apply(
    {"params": composite["params"]}, x, method=ToyAutoencoder.encode
  )
  results["encoder"] = dict(features=np.asarray(features))
  return results


def _print_pairs(title, output, target):
  print(f"{title}  (max |error| {np.max(np.abs(output - target)):.4f})")
  print("  target: " + " ".join(f"{v:6.3f}" for v in target))
  print("  output: " + " ".join(f"{v:6.3f}" for v in output))


def main(argv):
  del argv
  start = time.perf_counter()
  results = run_examples(steps=FLAGS.steps, seed=FLAGS.seed)
  print(f"Keras LSTM-autoencoder tutorial, {FLAGS.steps} Adam steps each")
  r = results["reconstruct"]
  _print_pairs("(a) reconstruction", r["outputs"][0], r["targets"][0])
  r = results["predict"]
  _print_pairs("(b) prediction", r["outputs"][0], r["targets"][0])
  r = results["composite"]
  _print_pairs(
    "(c) composite, reconstruction", r["outputs"][0], r["targets"][0]
  )
  _print_pairs("(c) composite, prediction", r["outputs"][1], r["targets"][1])
  features = results["encoder"]["features"]
  print(
    f"(d) encoder features: shape {features.shape}, first five "
    + " ".join(f"{v:.3f}" for v in features[0, :5])
  )
  print(f"done in {time.perf_counter() - start:.1f} s")


FLAGS = flags.FLAGS

if __name__ == "__main__":
  flags.DEFINE_integer("steps", 400, "Adam steps for each toy model.")
  flags.DEFINE_integer("seed", 0, "Seed of the initial parameters.")
  cli.run_main(main)

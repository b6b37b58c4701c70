"""Benchmark: the vectorised Moving MNIST generator against a plain loop.

  python -m benchmarks.data_generator [--repeats=21] [--skip_train_step]

At batch 16, 80 and 256 it times `moving_mnist.generate` with each paste
backend (the compiled numba kernel and the numpy fallback) and
`reference_loop.generate_loop` (the same rules and random draws, one digit
and one frame at a time), taking them in turn in the same run so all see
the same machine load, and prints median time per batch, sequences/s and
the ratio to the loop. It then times one jitted training step of the 1024-unit
composite model at batch 80 and prints generation time as a percentage of
it. Targets (issue 3): at least 5x faster than the loop at batch 80, and a
batch costs less than 5% of a training step.

This is a script, not a test: timings depend on the machine and its load.
"""

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import flags
from flax import linen as nn

from lstm_unsup import cli
from lstm_unsup.data import moving_mnist, paste, reference_loop
from lstm_unsup.data.digits import load_digits

BATCH_SIZES = (16, 80, 256)
HIDDEN, PIXELS, INPUT_FRAMES, FUTURE_FRAMES = 1024, 64 * 64, 10, 10


def time_generators(digits, batch_size: int, repeats: int) -> dict:
  """Median seconds per batch of `generate` with each available paste
  backend and of `generate_loop`, taken in turn so all see the same load."""
  backends = ["numpy"]
  if paste.backend_in_use() == "numba":
    backends.append("numba")
  reference, _ = reference_loop.generate_loop(digits, 0, batch_size)
  for backend in backends:  # check, and compile or warm up, outside timing
    frames = moving_mnist.generate(digits, 0, batch_size, backend=backend)
    if not np.array_equal(frames, reference):
      raise AssertionError(f"generate ({backend}) and the loop disagree.")
  times = {name: [] for name in [*backends, "loop"]}
  for r in range(repeats):
    for backend in backends:
      start = time.perf_counter()
      moving_mnist.generate(digits, 0, batch_size, index=r, backend=backend)
      times[backend].append(time.perf_counter() - start)
    start = time.perf_counter()
    reference_loop.generate_loop(digits, 0, batch_size, index=r)
    times["loop"].append(time.perf_counter() - start)
  return {name: statistics.median(ts) for name, ts in times.items()}


class Composite(nn.Module):
  """The paper's composite model, one layer: encoder + two unconditioned
  decoders (reconstruct the reversed input, predict the future)."""

  @nn.compact
  def __call__(self, x_BxTxD):
    try:
      from lstm_unsup.lstm import LSTM  # the project's cell
    except ImportError:  # fallback: Flax's own LSTM, fed zeros
      return self._flax(x_BxTxD)

    def stack(name):  # the paper's initialiser, as the paper's configs
      return LSTM(HIDDEN, initializer="authors", name=name)

    _, carries = stack("encoder")(x_BxTxD)
    # Unconditioned decoders are fed nothing (the project LSTM allows it).
    recon, _ = stack("decoder_reconstruct")(
      None, carries, num_steps=INPUT_FRAMES
    )
    future, _ = stack("decoder_future")(None, carries, num_steps=FUTURE_FRAMES)
    return (
      nn.Dense(PIXELS, name="readout_reconstruct")(recon),
      nn.Dense(PIXELS, name="readout_future")(future),
    )

  def _flax(self, x_BxTxD):
    def rnn(name):
      return nn.RNN(nn.OptimizedLSTMCell(HIDDEN), return_carry=True, name=name)

    carry, _ = rnn("encoder")(x_BxTxD)
    zeros = jnp.zeros_like(x_BxTxD[:, :, :1])
    _, recon = rnn("decoder_reconstruct")(zeros, initial_carry=carry)
    _, future = rnn("decoder_future")(zeros, initial_carry=carry)
    return (
      nn.Dense(PIXELS, name="readout_reconstruct")(recon),
      nn.Dense(PIXELS, name="readout_future")(future),
    )


def time_train_step(batch_BxTxD: np.ndarray, repeats: int = 3) -> float:
  """Median seconds of one jitted Adam step of the composite model."""
  model, optimizer = Composite(), optax.adam(1e-3)
  inputs = jnp.asarray(batch_BxTxD[:, :INPUT_FRAMES])
  future = jnp.asarray(batch_BxTxD[:, INPUT_FRAMES:])
  params = model.init(jax.random.PRNGKey(0), inputs)
  opt_state = optimizer.init(params)

  def loss_fn(params):
    recon_logits, future_logits = model.apply(params, inputs)
    bce = optax.sigmoid_binary_cross_entropy
    recon_loss = bce(recon_logits, inputs[:, ::-1]).sum(-1).mean()
    return recon_loss + bce(future_logits, future).sum(-1).mean()

  @jax.jit
  def step(params, opt_state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  params, opt_state, loss = step(params, opt_state)  # compile
  loss.block_until_ready()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    params, opt_state, loss = step(params, opt_state)
    loss.block_until_ready()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv) -> None:
  del argv
  args = flags.FLAGS
  digits = load_digits(args.source, "train")
  print(f"digits: {digits.source}")
  print(f"jax backend: {jax.default_backend()}, numpy {np.__version__}")
  print(f"paste backend of generate (auto): {paste.backend_in_use()}")
  generate_s = {}
  for batch_size in BATCH_SIZES:
    seconds = time_generators(digits, batch_size, args.repeats)
    loop = seconds.pop("loop")
    generate_s[batch_size] = seconds[paste.backend_in_use()]
    cells = [
      f"{name} {s * 1e3:6.2f} ms ({batch_size / s:6.0f} seq/s, "
      f"{loop / s:4.1f}x)"
      for name, s in seconds.items()
    ]
    print(
      f"batch {batch_size:4d}: generate with " + " | ".join(cells) + " | "
      f"loop {loop * 1e3:6.2f} ms ({batch_size / loop:6.0f} seq/s)"
    )
  if args.skip_train_step:
    return
  batch = moving_mnist.generate(digits, 0, 80).reshape(80, 20, PIXELS)
  step_s = time_train_step(batch)
  print(
    f"composite 1024-unit train step at batch 80: {step_s * 1e3:.0f} ms; "
    f"generating the batch: {generate_s[80] * 1e3:.2f} ms = "
    f"{100 * generate_s[80] / step_s:.2f}% of a step"
  )


if __name__ == "__main__":
  flags.DEFINE_integer("repeats", 21, "Timed batches per generator (median).")
  flags.DEFINE_string("source", "auto", "Digit source.")
  flags.DEFINE_bool("skip_train_step", False, "Do not time a training step.")
  cli.run_main(main)

"""Times our ConvLSTM training step against Flax's, and our backward pass
against JAX's autodiff.

  python -m benchmarks.convlstm_step [--features=16,32] [--batch=16] \
      [--layers=1] [--kernel=5] [--steps=10] \
      [--output=runs/bench_convlstm_step.json]

For each channel count F and batch size B, in one process and one run:

  step   the ConvLSTM composite model (64x64 Moving MNIST frames as a
         16x16 grid of 4x4 patches, 10 input, 10 reconstructed and 10
         future frames; unconditioned decoders; `--layers` layers of
         `--kernel` x `--kernel` convolutions; Adam with global-norm
         clipping; float32) trained by the jitted step that
         `python -m lstm_unsup.main` runs ("ours") and by the same model
         built from `flax.linen.RNN(ConvLSTMCell)` ("flax"), from the same
         weights and batch;
  stack  the gradient of the encoder's ConvLSTM stack alone (10 steps,
         batch B) with our backward pass ("custom": the recurrent weight
         gradient of all steps as one convolution after the reverse loop)
         and with JAX's autodiff of the loop ("autodiff").

Both pairs start from the same weights and batch, and the script checks
that they compute the same loss first. Timed steps alternate between the
two of a pair (`train_step.time_in_alternation`), and each gets the median
of `--steps` steps; it prints steps/s and the ratio of ours (custom) to the
peer (autodiff). With --output it writes the results as JSON and Markdown
(`to_markdown`).
"""

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
from absl import flags

from benchmarks import train_step
from lstm_unsup import cli, grids, lstm

PATCH = 4
GRID = (16, 16, PATCH * PATCH)  # 64x64 grey frames in 4x4 patches


def model_fields(kernel: int) -> dict:
  """The benchmarked ConvLSTM model's fields of config.model."""
  return dict(
    cell="conv",
    conv_kernel=kernel,
    patch_size=PATCH,
    initializer="flax",
    peepholes=False,  # Flax's ConvLSTMCell has none
  )


class FlaxConvComposite(nn.Module):
  """Our ConvLSTM composite model from flax.linen.RNN(ConvLSTMCell)."""

  features: int
  kernel: int
  num_layers: int

  def _cell(self, name):
    kernel = (self.kernel, self.kernel)
    return nn.ConvLSTMCell(self.features, kernel_size=kernel, name=name)

  @nn.compact
  def __call__(self, inputs_BxTxD, future_BxKxD):
    x = grids.to_grid(inputs_BxTxD, PATCH)
    carries = []
    for k in range(self.num_layers):
      rnn = nn.RNN(self._cell(f"encoder_{k}"), return_carry=True)
      carry, x = rnn(x)
      carries.append(carry)
    B, K = future_BxKxD.shape[:2]
    outputs = {}
    for name in ("reconstruct", "future"):
      h = jnp.zeros((B, K, *GRID[:2], 1))  # fed nothing: zero input weights
      for k in range(self.num_layers):
        h = nn.RNN(self._cell(f"{name}_{k}"))(h, initial_carry=carries[k])
      out = nn.Dense(GRID[-1], name=f"{name}_readout")(h)
      outputs[name] = grids.from_grid(out, PATCH)
    return outputs


def _to_flax_cell(layer):
  """One layer of ours as ConvLSTMCell parameters (inverse of
  `lstm.conv_params_from_flax`, with a zero `hh` bias)."""
  kh, kw, _, G = layer["w_recurrent"].shape
  F = G // 4

  def igfo(a):
    i, f, g, o = jnp.split(a, 4, axis=-1)
    return jnp.concatenate([i, g, f, o], axis=-1)

  w_in = layer.get("w_input", jnp.zeros((kh, kw, 1, G)))
  bias = jnp.asarray(layer["bias"]).at[F : 2 * F].add(-1.0)  # Flax adds 1
  return {
    "ih": {"kernel": igfo(w_in), "bias": igfo(bias)},
    "hh": {"kernel": igfo(layer["w_recurrent"]), "bias": jnp.zeros(G)},
  }


def to_flax(ours_params, num_layers: int) -> dict:
  """Our composite model's parameters as FlaxConvComposite's."""
  p = ours_params
  flax_params = {}
  for k in range(num_layers):
    flax_params[f"encoder_{k}"] = _to_flax_cell(p["encoder"][f"layer_{k}"])
    for name in ("reconstruct", "future"):
      decoder = p[f"decoder_{name}"]
      flax_params[f"{name}_{k}"] = _to_flax_cell(decoder["lstm"][f"layer_{k}"])
      flax_params[f"{name}_readout"] = decoder["readout"]
  return flax_params


def stack_gradient(F, B, num_layers, kernel, custom_grad, params=None):
  """A step function: value and gradient of the encoder stack's loss; and
  the parameters it starts from (`params`, or fresh ones)."""
  model = lstm.ConvLSTM(
    features=F,
    kernel_size=(kernel, kernel),
    num_layers=num_layers,
    custom_grad=custom_grad,
  )
  x = jax.random.uniform(jax.random.key(0), (B, 10, *GRID))
  weights = jax.random.normal(jax.random.key(1), (B, 10, *GRID[:2], F))
  if params is None:
    params = model.init(jax.random.key(2), x)

  def loss(params):
    out, finals = model.apply(params, x)
    return jnp.sum(out * weights) + sum(jnp.sum(c) for c, _ in finals)

  grad = jax.jit(jax.value_and_grad(loss))

  def run():
    value, grads = grad(params)
    jax.block_until_ready(grads)
    return value

  return params, run


def bench(F: int, B: int, num_layers: int, kernel: int, steps: int) -> dict:
  """Both comparisons at one size (see the module docstring)."""
  inputs, future = train_step.random_batch(B)
  params, run_ours = train_step.ours(
    F, B, inputs, future, num_layers, **model_fields(kernel)
  )
  flax_model = FlaxConvComposite(F, kernel, num_layers)
  run_flax = train_step.flax_training_run(
    flax_model, to_flax(params, num_layers), inputs, future
  )
  result = {"features": F, "batch": B, "layers": num_layers, "kernel": kernel}
  runs = {"ours": run_ours, "flax": run_flax}
  result["step"] = train_step.time_in_alternation(runs, steps)
  stack_params, custom = stack_gradient(F, B, num_layers, kernel, True)
  _, autodiff = stack_gradient(F, B, num_layers, kernel, False, stack_params)
  runs = {"custom": custom, "autodiff": autodiff}
  result["stack"] = train_step.time_in_alternation(runs, steps, rtol=1e-5)
  stack = result["stack"]
  stack["custom_speedup"] = (
    stack["custom"]["steps_per_s"] / stack["autodiff"]["steps_per_s"]
  )
  return result


def to_markdown(summary: dict) -> str:
  """The table of a summary that `main` wrote."""
  machine = summary.get("cpu") or {}
  where = machine.get("model") or "this machine"
  if machine.get("cores"):
    where += f", {machine['cores']} cores"
  lines = [
    "Training steps per second of the ConvLSTM composite model (64x64 "
    "frames as 16x16 grids of 4x4 patches, 10 + 10 + 10 frames, "
    "unconditioned decoders, Adam with global-norm clipping, float32): "
    "our step against `flax.linen.RNN(ConvLSTMCell)` building the same "
    "model; and gradients per second of the encoder's ConvLSTM stack alone "
    "with our backward pass against JAX's autodiff of the loop. Medians of "
    f"{summary.get('steps')} steps each, timed in alternation in one "
    f"process, on {where}.",
    "",
    "| F | layers | kernel | batch | ours, steps/s | Flax | ours / Flax "
    "| custom, grads/s | autodiff | custom / autodiff |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ]
  for r in summary["results"]:
    step, stack = r["step"], r["stack"]
    lines.append(
      f"| {r['features']} | {r['layers']} | {r['kernel']}x{r['kernel']} "
      f"| {r['batch']} | {step['ours']['steps_per_s']:.2f} "
      f"| {step['flax']['steps_per_s']:.2f} "
      f"| {step['flax']['ours_speedup']:.2f}x "
      f"| {stack['custom']['steps_per_s']:.2f} "
      f"| {stack['autodiff']['steps_per_s']:.2f} "
      f"| {stack['custom_speedup']:.2f}x |"
    )
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  results = []
  for F in (int(f) for f in FLAGS.features):
    for B in (int(b) for b in FLAGS.batch):
      start = time.perf_counter()
      r = bench(F, B, FLAGS.layers, FLAGS.kernel, FLAGS.steps)
      results.append(r)
      step, stack = r["step"], r["stack"]
      print(
        f"F={F:4d} B={B:3d} step: ours {step['ours']['steps_per_s']:.2f}/s, "
        f"flax {step['flax']['steps_per_s']:.2f}/s, ours is "
        f"{step['flax']['ours_speedup']:.2f}x; stack gradient: custom "
        f"{stack['custom']['steps_per_s']:.2f}/s, autodiff "
        f"{stack['autodiff']['steps_per_s']:.2f}/s, custom is "
        f"{stack['custom_speedup']:.2f}x ({time.perf_counter() - start:.0f} s)"
      )
  if FLAGS.output:
    summary = {
      "steps": FLAGS.steps,
      "cpu": train_step.cpu(),
      "versions": train_step.versions("jax", "flax"),
      "results": results,
    }
    train_step.write_results(FLAGS.output, summary, "benchmarks.convlstm_step")


if __name__ == "__main__":
  flags.DEFINE_list("features", ["16", "32"], "ConvLSTM channels F.")
  flags.DEFINE_list("batch", ["16"], "Batch sizes B.")
  flags.DEFINE_integer("layers", 1, "ConvLSTM layers per stack.")
  flags.DEFINE_integer("kernel", 5, "Kernel size k (k x k).")
  flags.DEFINE_integer("steps", 10, "Timed steps per implementation.")
  flags.DEFINE_string(
    "output", "runs/bench_convlstm_step.json", "JSON results."
  )
  cli.run_main(main)

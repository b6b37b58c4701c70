"""Times our training step against the LSTMs researchers would otherwise use.

  python -m benchmarks.train_step [--hidden=256,1024] [--batch=16,80] \
      [--layers=1,2] [--steps=10] [--impls=ours,flax,torch] \
      [--output=runs/bench_train_step.json]

(`python benchmarks/train_step.py` works too.)

For each hidden size H and batch size B, in one process and one run, the
composite model (10 input, 10 reconstructed, 10 future frames of 4,096
pixels; one layer, or --layers in every stack; unconditioned decoders;
Adam with global-norm clipping; float32) trained by:

  ours   the jitted step that `python -m lstm_unsup.main` runs (its clipped
         Adam in one pass of a compiled kernel, when it can be built: the
         script says whether; `LSTM_UNSUP_NATIVE_ADAM=0` times XLA's);
  flax   `flax.linen.RNN(OptimizedLSTMCell)` building the same model;
  torch  `torch.nn.LSTM` building the same model (when torch is installed).

All start from the same weights and batch, and the script first checks that
they compute the same loss. The timed steps alternate between the
implementations (one step of each, --steps times), so that a change in the
machine's load hits all of them alike. It prints steps/s (the median), the
ratio of ours to each peer, achieved GFLOP/s from the FLOP count below, the
fraction of a matmul peak it measures itself, compile (first-step) time, and
the page faults per step: fresh memory pages the kernel had to map and zero,
which XLA's per-step buffers cost on Linux unless glibc keeps freed memory
(docs/performance.md). With --output it writes the results as JSON and the
speed table as Markdown beside it (`to_markdown`). The implementations
share the process's allocator, so one's allocations can change another's
page faults; `--impls=flax` (say) times one of them alone.

FLOPs per step: the matmuls every implementation must run. Forward =
2B[T*D*4H + (T + 2K)*H*4H + 2K*H*D] (input projection, recurrent matmuls,
two readouts), plus 2B*2*(T + 2K)*H*4H for each layer above the first (its
input and recurrent matmuls); the backward pass is twice that (a gradient
for each operand of each matmul) less the input projection's gradient
with respect to the frames, which no one computes: step = 3 x forward -
2B*T*D*4H.
"""

import importlib.metadata
import json
import os
import resource
import subprocess
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import flags

from lstm_unsup import cli, hardware, losses, train, training_step
from lstm_unsup.configs import composite
from lstm_unsup.optim import fused_adam

T = K = 10
D = 4096


def flops_per_step(H: int, B: int, L: int = 1) -> float:
  """The matmul FLOPs of a step of the L-layer composite (a layer above the
  first reads H values where the first reads D, or nothing in a decoder)."""
  forward = (
    2
    * B
    * (
      T * D * 4 * H  # the encoder's first input projection
      + (L - 1) * (T + 2 * K) * H * 4 * H  # the upper layers' inputs
      + L * (T + 2 * K) * H * 4 * H  # every layer's recurrent matmul
      + 2 * K * H * D  # the two readouts
    )
  )
  frames_gradient = 2 * B * T * D * 4 * H  # d(loss)/d(frames): not needed
  return 3.0 * forward - frames_gradient


def random_batch(B: int):
  """The benchmarks' batch: (inputs_BxTxD, future_BxKxD), seed 0."""
  rng = np.random.default_rng(0)
  inputs = rng.random((B, T, D), np.float32)
  future = rng.random((B, K, D), np.float32)
  return inputs, future


def run_child(module: str, child: str, impl: str, env=None) -> dict:
  """Reruns `module` in a fresh process with --child=`child` and this
  process's flags (less --output); returns the JSON line it prints last,
  or {"impl", "error"} if it failed."""
  cmd = [sys.executable, "-m", module, f"--child={child}"]
  cmd += [a for a in sys.argv[1:] if not a.startswith("--output")]
  done = subprocess.run(cmd, env=env, capture_output=True, text=True)
  if done.returncode != 0:
    print(done.stderr[-3000:], file=sys.stderr)
    return {"impl": impl, "error": done.stderr.strip().splitlines()[-1:]}
  return json.loads(done.stdout.strip().splitlines()[-1])


def _median_seconds(fn, steps: int) -> float:
  """The median time of `steps` calls."""
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def matmul_peak_gflops(n: int = 2048) -> float:
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  f(a).block_until_ready()
  seconds = _median_seconds(lambda: f(a).block_until_ready(), 10)
  return 2 * n**3 / seconds / 1e9


def versions(*packages: str) -> dict:
  """The installed version of each package (None if not installed), read
  from its metadata: importing nothing, so starting no device."""
  found = {}
  for name in packages:
    try:
      found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      found[name] = None
  return found


def cpu() -> dict:
  """The CPU's model name, whether it has AVX-512, and the cores this
  process may run on (`lstm_unsup.hardware`)."""
  info = hardware.cpu()
  return {"model": info.model, "avx512": info.avx512, "cores": info.cores}


def write_results(output: str, data: dict, renderer: str) -> None:
  """Writes `data` through `experiments.results.write`: `output` (a .json
  path) and the Markdown beside it, with the renderer and command."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  if root not in sys.path:  # run as `python benchmarks/<script>.py`
    sys.path.insert(0, root)
  from experiments import results  # noqa: PLC0415

  workdir, name = os.path.split(output)
  results.write(workdir or ".", os.path.splitext(name)[0], data, renderer)
  print("Wrote", output)


def composite_config(H: int, B: int, num_layers: int = 1, **model_fields):
  """The benchmarked model: the cpu-scale composite at another size."""
  config = composite.get_config("cpu")
  config.model.hidden, config.train.batch_size = H, B
  config.model.num_layers = num_layers
  config.model.update(model_fields)
  # Adam at a constant rate, as the peers (the cpu recipe's warm-up and
  # cosine cost nothing per step but would start from a rate of zero).
  config.optim.warmup_steps = config.optim.decay_steps = 0
  return config


def ours(H: int, B: int, inputs, future, num_layers: int = 1, **model_fields):
  config = composite_config(H, B, num_layers, **model_fields)
  model = train.models.build_model(config.model)
  mesh = training_step.make_mesh(1)
  state = training_step.create_train_state(config, model, inputs, future, mesh)
  step = training_step.make_train_step(config, model, mesh)
  batch = training_step.shard_batch(mesh, inputs, future)
  holder = [state]

  def run():
    holder[0], metrics = step(holder[0], *batch)
    return metrics["loss"].block_until_ready()

  # A host copy: the step donates (and so deletes) the state's buffers.
  return jax.tree.map(np.array, state.params), run


class FlaxComposite(nn.Module):
  """The same model from flax.linen.RNN(OptimizedLSTMCell), one RNN per
  layer; each decoder layer starts from its encoder layer's carry."""

  hidden: int
  num_layers: int = 1

  @nn.compact
  def __call__(self, inputs_BxTxD, future_BxKxD):
    B = inputs_BxTxD.shape[0]
    carries, x = [], inputs_BxTxD
    for k in range(self.num_layers):
      name = "encoder" if k == 0 else f"encoder_{k}"
      rnn = nn.RNN(nn.OptimizedLSTMCell(self.hidden, name=name))
      carry, x = nn.RNN(rnn.cell, return_carry=True)(x)
      carries.append(carry)
    outputs = {}
    for name in ("reconstruct", "future"):
      h = jnp.zeros((B, future_BxKxD.shape[1], 1))  # fed nothing
      for k in range(self.num_layers):
        cell = f"{name}_cell" if k == 0 else f"{name}_cell_{k}"
        dec = nn.RNN(nn.OptimizedLSTMCell(self.hidden, name=cell))
        h = dec(h, initial_carry=carries[k])
      outputs[name] = nn.Dense(D, name=f"{name}_readout")(h)
    return outputs


def _to_flax(ours_params, H, num_layers: int = 1):
  """Our parameters as FlaxComposite's (decoder input weights are zero)."""

  def cell(layer):
    w_in = layer.get("w_input", jnp.zeros((1, 4 * H)))
    split = lambda w: jnp.split(w, 4, axis=-1)  # noqa: E731
    out = {}
    for g, wi, wh, b in zip(
      "ifgo", split(w_in), split(layer["w_recurrent"]), split(layer["bias"])
    ):
      out[f"i{g}"] = {"kernel": wi}
      out[f"h{g}"] = {"kernel": wh, "bias": b}
    return out

  p = ours_params
  out = {
    "reconstruct_readout": p["decoder_reconstruct"]["readout"],
    "future_readout": p["decoder_future"]["readout"],
  }
  for k in range(num_layers):
    suffix = f"_{k}" if k else ""
    layer = f"layer_{k}"
    out[f"encoder{suffix}"] = cell(p["encoder"][layer])
    for name in ("reconstruct", "future"):
      out[f"{name}_cell{suffix}"] = cell(p[f"decoder_{name}"]["lstm"][layer])
  return out


def flax_peer(H: int, ours_params, inputs, future, num_layers: int = 1):
  return flax_training_run(
    FlaxComposite(H, num_layers),
    _to_flax(ours_params, H, num_layers),
    inputs,
    future,
  )


def flax_training_run(model: nn.Module, params, inputs, future):
  """A step function that trains the Flax composite `model` from `params`
  with our loss and clipped Adam; each call returns the step's loss."""
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
  targets = {"reconstruct": inputs[:, ::-1], "future": future}

  def loss_fn(params):
    out = model.apply({"params": params}, inputs, future)
    return sum(
      losses.mean_per_frame(losses.bernoulli_cross_entropy(out[k], targets[k]))
      for k in out
    )

  @jax.jit
  def step(params, opt_state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  holder = [params, tx.init(params)]

  def run():
    holder[0], holder[1], loss = step(*holder)
    return loss.block_until_ready()

  return run


def torch_modules(H: int, ours_params, num_layers: int = 1, device="cpu"):
  """Our composite model's weights in `torch.nn.LSTM`s and `Linear`s."""
  import torch  # noqa: PLC0415

  def lstm(layers, input_size):
    m = torch.nn.LSTM(input_size, H, num_layers=num_layers, batch_first=True)
    for k, layer in enumerate(layers):
      size = input_size if k == 0 else H
      w_in = np.asarray(layer.get("w_input", np.zeros((size, 4 * H))))
      copies = {
        f"weight_ih_l{k}": w_in.T,
        f"weight_hh_l{k}": np.asarray(layer["w_recurrent"]).T,
        f"bias_ih_l{k}": np.asarray(layer["bias"]),
        f"bias_hh_l{k}": np.zeros(4 * H, np.float32),
      }
      with torch.no_grad():
        for name, value in copies.items():
          getattr(m, name).copy_(torch.from_numpy(value.copy()))
    return m.to(device)

  def linear(p):
    m = torch.nn.Linear(H, D)
    with torch.no_grad():
      m.weight.copy_(torch.from_numpy(np.asarray(p["kernel"]).T.copy()))
      m.bias.copy_(torch.from_numpy(np.array(p["bias"])))
    return m.to(device)

  def stack(p):
    return [p[f"layer_{k}"] for k in range(num_layers)]

  p = ours_params
  enc = lstm(stack(p["encoder"]), D)
  decs = {
    k: lstm(stack(p[f"decoder_{k}"]["lstm"]), 1)
    for k in ("reconstruct", "future")
  }
  heads = {k: linear(p[f"decoder_{k}"]["readout"]) for k in decs}
  return enc, decs, heads


def torch_loss_fn(enc, decs, heads):
  """The composite loss in nats per frame, and the future logits."""
  import torch  # noqa: PLC0415

  bce = torch.nn.BCEWithLogitsLoss(reduction="sum")

  def loss_fn(x, targets):
    B = x.shape[0]
    _, state = enc(x)
    zeros = torch.zeros(B, K, 1, device=x.device)
    loss, logits = 0.0, {}
    for k in decs:
      h, _ = decs[k](zeros, state)
      logits[k] = heads[k](h)
      loss = loss + bce(logits[k], targets[k]) / (B * K)
    return loss, logits

  return loss_fn


def torch_peer(
  H: int, ours_params, inputs, future, num_layers: int = 1, device="cpu"
):
  import torch  # noqa: PLC0415

  torch.set_num_threads(hardware.cpu().cores)  # the cores the table names
  enc, decs, heads = torch_modules(H, ours_params, num_layers, device)
  modules = torch.nn.ModuleList([enc, *decs.values(), *heads.values()])
  opt = torch.optim.Adam(modules.parameters(), lr=1e-3)
  x = torch.from_numpy(np.asarray(inputs)).to(device)
  targets = {
    "reconstruct": torch.from_numpy(np.asarray(inputs)[:, ::-1].copy()),
    "future": torch.from_numpy(np.asarray(future)),
  }
  targets = {k: v.to(device) for k, v in targets.items()}
  loss_fn = torch_loss_fn(enc, decs, heads)

  def run():
    opt.zero_grad()
    loss, _ = loss_fn(x, targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
    opt.step()
    return float(loss.detach())  # waits for the device

  return run


IMPLS = ("ours", "flax", "torch")


def bench(
  H: int,
  B: int,
  steps: int,
  peak: float,
  use_torch: bool,
  impls=IMPLS,
  num_layers: int = 1,
) -> dict:
  """Times the implementations in `impls` (PyTorch only with `use_torch`).
  Our state is built in any case: it holds the weights all start from."""
  if not impls or set(impls) - set(IMPLS):
    raise ValueError(f"impls must be some of {IMPLS}, not {impls!r}.")
  L = num_layers
  inputs, future = random_batch(B)
  params, run_ours = ours(H, B, inputs, future, L)
  runs = {"ours": run_ours} if "ours" in impls else {}
  if "flax" in impls:
    runs["flax"] = flax_peer(H, params, inputs, future, L)
  if use_torch and "torch" in impls:
    runs["torch"] = torch_peer(H, params, inputs, future, L)
  # The first step of each starts from the same weights and batch.
  result = {
    "hidden": H,
    "layers": L,
    "batch": B,
    "gflop_per_step": flops_per_step(H, B, L) / 1e9,
    **time_in_alternation(runs, steps),
  }
  for name in runs:
    gflops = flops_per_step(H, B, L) * result[name]["steps_per_s"] / 1e9
    result[name].update(gflops=gflops, fraction_of_peak=gflops / peak)
  return result


def time_in_alternation(runs: dict, steps: int, rtol: float = 1e-4) -> dict:
  """Per implementation: its first loss and first-step (compile) time, then
  the median steps/s of `steps` timed steps and the page faults per step;
  `ours_speedup` against "ours" when it is among `runs`. Checks that all
  first losses agree to `rtol`."""
  result = {}
  for name, run in runs.items():
    start = time.perf_counter()
    result[name] = {"first_loss": float(run())}  # includes compilation
    result[name]["first_step_s"] = time.perf_counter() - start
  # Timed steps alternate between the implementations, so that all of them
  # see the same machine load; each gets the median of its `steps` times.
  times = {name: [] for name in runs}
  faults = dict.fromkeys(runs, 0)  # fresh pages the kernel had to map
  for _ in range(steps):
    for name, run in runs.items():
      before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
      start = time.perf_counter()
      run()
      times[name].append(time.perf_counter() - start)
      faults[name] += (
        resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
      )
  for name in runs:
    result[name].update(
      page_faults_per_step=faults[name] / steps,
      steps_per_s=1 / float(np.median(times[name])),
    )
  ref = result[next(iter(runs))]["first_loss"]
  for name in runs:
    np.testing.assert_allclose(
      result[name]["first_loss"],
      ref,
      rtol=rtol,
      err_msg=f"{name} computes another loss",
    )
    if "ours" in runs:
      result[name]["ours_speedup"] = (
        result["ours"]["steps_per_s"] / result[name]["steps_per_s"]
      )
  return result


def _number(value, spec: str, suffix: str = "") -> str:
  return "-" if value is None else f"{value:{spec}}{suffix}"


def to_markdown(summary: dict) -> str:
  """The speed table of a summary that `main` wrote (fields it lacks, such
  as page faults or first-step times, are left out)."""
  rows = summary["results"]
  present = [n for n in IMPLS if any(n in r for r in rows)]
  names = {"ours": "ours", "flax": "Flax", "torch": "PyTorch"}
  torch_version = (summary.get("versions") or {}).get("torch")
  titles = dict(names)
  if torch_version:
    titles["torch"] += " " + torch_version.split("+")[0]
  if present:  # the first rate column names the unit
    titles[present[0]] += ", steps/s"
  machine = summary.get("cpu") or {}
  where = machine.get("model") or "this machine"
  if machine.get("avx512"):
    where += " (AVX-512)"
  if machine.get("cores"):
    where += f", {machine['cores']} cores"
  steps = summary.get("steps")
  each = f"medians of {steps} steps each" if steps else "medians"
  stack = ", ".join(
    f"{title} {v}"
    for title, key in (("JAX", "jax"), ("Flax", "flax"))
    if (v := (summary.get("versions") or {}).get(key))
  )
  described = {
    "ours": "our step",
    "flax": "`flax.linen.RNN(OptimizedLSTMCell)`",
    "torch": "`torch.nn.LSTM`",
  }
  trained_by = [described[n] for n in present]
  if len(trained_by) > 1:
    trained_by[-1] = "and " + trained_by[-1]
  depths = sorted({r.get("layers", 1) for r in rows})
  layers = "one layer" if depths == [1] else "layers as the table says"
  lines = [
    "Training steps per second of the composite model (10 + 10 + 10 frames "
    f"of 4,096 pixels, {layers}, unconditioned decoders, Adam with "
    "global-norm clipping, float32) trained by "
    + (", " if len(trained_by) > 2 else " ").join(trained_by)
    + f" from the same weights and batch; {each}, timed in alternation in "
    f"one process, on "
    f"{where}"
    + (f" ({stack})" if stack else "")
    + ". Matmul peak measured by the command: "
    f"{summary['peak_gflops']:.0f} GFLOP/s (float32); the share of peak "
    "counts only the matmuls every implementation must run."
    + (
      f" Ours ran its clipped Adam {summary['ours_adam']}."
      if "ours" in present
      else ""
    ),
    "",
  ]
  deep = depths != [1]
  header = ["H", *(["layers"] if deep else []), "batch"]
  header += [titles[n] for n in present]
  peers = [n for n in present if n != "ours"] if "ours" in present else []
  header += [f"ours / {names[n]}" for n in peers]
  header += ["ours, share of peak"] if "ours" in present else []
  lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
  for r in rows:
    cells = [str(r["hidden"])]
    cells += [str(r.get("layers", 1))] if deep else []
    cells += [str(r["batch"])]
    cells += [_number(r.get(n, {}).get("steps_per_s"), ".2f") for n in present]
    cells += [
      _number(r.get(n, {}).get("ours_speedup"), ".2f", "x") for n in peers
    ]
    if "ours" in present:
      cells.append(_number(r.get("ours", {}).get("fraction_of_peak"), ".0%"))
    lines.append("| " + " | ".join(cells) + " |")
  extra = [
    n for n in present if any("first_step_s" in r.get(n, {}) for r in rows)
  ]
  if extra:
    which = " / ".join(names[n] for n in extra)
    lines += [
      "",
      f"| H | batch | first step (compile), s: {which} | page faults per "
      f"step: {which} |",
      "|---|---|---|---|",
    ]
    for r in rows:
      first = " / ".join(
        _number(r.get(n, {}).get("first_step_s"), ".1f") for n in extra
      )
      faults = " / ".join(
        _number(r.get(n, {}).get("page_faults_per_step"), ",.0f") for n in extra
      )
      lines.append(f"| {r['hidden']} | {r['batch']} | {first} | {faults} |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  try:
    import torch  # noqa: F401, PLC0415

    use_torch = not FLAGS.no_torch
  except ImportError:
    use_torch = False
    print("torch is not installed: PyTorch is left out.")
  peak = matmul_peak_gflops()
  print(f"matmul peak measured: {peak:.0f} GFLOP/s (2048^3, float32)")
  reason = fused_adam.unavailable_reason()
  adam = (
    f"through XLA ({reason})" if reason else "in one pass (compiled kernel)"
  )
  print(f"ours: clipped Adam {adam}")
  results = []
  sizes = [(int(h), int(b)) for h in FLAGS.hidden for b in FLAGS.batch]
  for L in (int(n) for n in FLAGS.layers):
    for H, B in sizes:
      r = bench(H, B, FLAGS.steps, peak, use_torch, tuple(FLAGS.impls), L)
      results.append(r)
      for name in IMPLS:
        if name in r:
          x = r[name]
          ratio = x.get("ours_speedup")
          print(
            f"H={H:5d} L={L} B={B:3d} {name:5s} {x['steps_per_s']:7.2f} steps/s"
            f"  {x['gflops']:6.1f} GFLOP/s ({x['fraction_of_peak']:.0%} of "
            f"peak)  first step {x['first_step_s']:.1f} s  "
            f"{x['page_faults_per_step']:6.0f} page faults/step"
            + (f"  ours is {ratio:.2f}x" if ratio else "")
          )
  if FLAGS.output:
    summary = {
      "peak_gflops": peak,
      "ours_adam": adam,
      "steps": FLAGS.steps,
      "cpu": cpu(),
      "versions": versions("jax", "flax", *(["torch"] if use_torch else [])),
      "results": results,
    }
    write_results(FLAGS.output, summary, "benchmarks.train_step")


if __name__ == "__main__":
  flags.DEFINE_list("hidden", ["256", "1024"], "Hidden sizes H.")
  flags.DEFINE_list("batch", ["16"], "Batch sizes B.")
  flags.DEFINE_list("layers", ["1"], "Layers L of every LSTM stack.")
  flags.DEFINE_integer("steps", 10, "Timed steps per implementation.")
  flags.DEFINE_bool("no_torch", False, "Leave PyTorch out.")
  flags.DEFINE_list(
    "impls",
    list(IMPLS),
    "Implementations to time; one alone runs in a process of its own "
    "(no ratio is printed then).",
  )
  flags.DEFINE_string("output", "runs/bench_train_step.json", "JSON results.")
  cli.run_main(main, checks=(ValueError,))

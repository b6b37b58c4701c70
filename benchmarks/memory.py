"""Host memory of one training step of the paper-scale model on the CPU.

  python -m benchmarks.memory [--hidden=2048] [--layers=2] [--batch=16] \
      [--impls=ours,torch] [--output=runs/bench_memory.json]

The composite model with the paper's cell (peepholes for ours; PyTorch's
`nn.LSTM` has none), 10 + 10 + 10 frames of 4,096 pixels, Adam. Each
implementation runs in a fresh process: it builds the model and optimiser
state, runs `--steps` training steps, and reports the process's peak
resident memory (`ru_maxrss`), the same after imports alone, and the
difference. For ours it also prints what XLA's compiled step says it needs:
arguments, outputs, temporaries and the bytes that donation lets the
outputs reuse. With --output it writes the results as JSON and their table
as Markdown beside it (`to_markdown`).
"""

import json
import resource
import types

from absl import flags

from benchmarks import train_step as bench
from lstm_unsup import cli, training_step

FLAGS = flags.FLAGS
GIB = 2**30


def _peak_rss_bytes() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _ours(H: int, B: int, layers: int, inputs, future):
  """Our training step as `lstm_unsup.main` builds it (and nothing else kept
  on the host), and XLA's own account of its memory."""
  from lstm_unsup import models  # noqa: PLC0415

  config = bench.composite_config(H, B, layers, peepholes=True)
  model = models.build_model(config.model)
  mesh = training_step.make_mesh(1)
  state = training_step.create_train_state(config, model, inputs, future, mesh)
  step = training_step.make_train_step(config, model, mesh)
  batch = training_step.shard_batch(mesh, inputs, future)
  stats = step.compile(state, *batch).memory_analysis()  # compiled once
  xla = {
    "arguments": stats.argument_size_in_bytes,
    "outputs": stats.output_size_in_bytes,
    "temporaries": stats.temp_size_in_bytes,
    "aliased": stats.alias_size_in_bytes,
  }
  holder = [state]

  def run():
    holder[0], metrics = step(holder[0], *batch)
    return metrics["loss"]

  return run, xla


def measure(impl: str, H: int, B: int, layers: int, steps: int) -> dict:
  """Runs in a fresh process: the peak RSS of `steps` training steps."""
  import jax  # noqa: F401, PLC0415

  if impl == "torch":
    import torch  # noqa: F401, PLC0415
  baseline = _peak_rss_bytes()
  inputs, future = bench.random_batch(B)
  result = {"impl": impl, "baseline_bytes": baseline}
  if impl == "ours":
    run, result["xla"] = _ours(H, B, layers, inputs, future)
  else:
    from benchmarks import gpu_paper_scale  # noqa: PLC0415

    args = types.SimpleNamespace(
      hidden=H, batch=B, layers=layers, source="offline", valid_sequences=1
    )
    params = gpu_paper_scale._initial_params(args)
    run = bench.torch_peer(H, params, inputs, future, layers)
    del params
  result["losses"] = [float(run()) for _ in range(steps)]
  result["peak_bytes"] = _peak_rss_bytes()
  result["step_bytes"] = result["peak_bytes"] - baseline
  return result


def to_markdown(data: dict) -> str:
  """The table of peak resident memory, and XLA's account of our step."""
  titles = {"ours": "ours", "torch": "PyTorch `nn.LSTM` (no peepholes)"}
  lines = [
    "Host memory of the composite model training on the CPU, "
    f"{data['layers']} x {data['hidden']} units (with peepholes in ours), "
    f"batch {data['batch']}, 10 + 10 + 10 frames of 4,096 pixels, Adam: "
    "each implementation in a fresh process builds the model and optimiser "
    f"state and runs {data['steps']} training steps; peak resident memory "
    "of the process (`ru_maxrss`), and the same after imports alone.",
    "",
    "| | peak resident memory | of which after imports |",
    "|---|---|---|",
  ]
  for r in data["results"]:
    title = titles.get(r["impl"], r["impl"])
    if "error" in r:
      lines.append(f"| {title} | failed | - |")
      continue
    lines.append(
      f"| {title} | {r['peak_bytes'] / GIB:.2f} GiB "
      f"| {r['baseline_bytes'] / GIB:.2f} GiB |"
    )
  for r in data["results"]:
    if "xla" in r:
      x = r["xla"]
      lines += [
        "",
        "XLA's account of our compiled step: "
        f"{x['arguments'] / GIB:.2f} GiB of arguments (parameters, Adam's "
        "two moments, the gradient buffer, the batch), "
        f"{x['outputs'] / GIB:.2f} GiB of outputs, of which "
        f"{x['aliased'] / GIB:.2f} GiB are written over donated arguments, "
        f"and {x['temporaries'] / 2**20:.1f} MiB of temporaries.",
      ]
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  H, B, layers = FLAGS.hidden, FLAGS.batch, FLAGS.layers
  if FLAGS.child:
    result = measure(FLAGS.child, H, B, layers, FLAGS.steps)
    print(json.dumps(result))
    return
  print(f"Composite, {layers} x {H} units, batch {B}, {FLAGS.steps} steps:")
  results = [
    bench.run_child("benchmarks.memory", impl, impl) for impl in FLAGS.impls
  ]
  for r in results:
    if "error" in r:
      print(f"{r['impl']:6s} failed: {r['error']}")
      continue
    print(
      f"{r['impl']:6s} peak RSS {r['peak_bytes'] / GIB:5.2f} GiB "
      f"(after imports {r['baseline_bytes'] / GIB:4.2f} GiB, model and "
      f"steps {r['step_bytes'] / GIB:5.2f} GiB)"
    )
    if "xla" in r:
      x = {k: v / GIB for k, v in r["xla"].items()}
      print(
        f"       XLA: arguments {x['arguments']:.2f} GiB, outputs "
        f"{x['outputs']:.2f} GiB ({x['aliased']:.2f} GiB of them reuse "
        f"donated arguments), temporaries {x['temporaries']:.2f} GiB "
        f"({r['xla']['temporaries'] / 2**20:.1f} MiB)"
      )
  if FLAGS.output:
    data = {
      "hidden": H,
      "layers": layers,
      "batch": B,
      "steps": FLAGS.steps,
      "versions": bench.versions("jax", "torch"),
      "results": results,
    }
    bench.write_results(FLAGS.output, data, "benchmarks.memory")


if __name__ == "__main__":
  flags.DEFINE_integer("hidden", 2048, "Units per layer.")
  flags.DEFINE_integer("layers", 2, "LSTM layers.")
  flags.DEFINE_integer("batch", 16, "Sequences per step.")
  flags.DEFINE_integer("steps", 2, "Training steps to run.")
  flags.DEFINE_list("impls", ["ours", "torch"], "Implementations.")
  flags.DEFINE_string("child", "", "Internal: the implementation to measure.")
  flags.DEFINE_string("output", "runs/bench_memory.json", "JSON results.")
  cli.run_main(main)

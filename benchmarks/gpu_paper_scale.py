"""The paper-scale composite model on one GPU, against PyTorch's cuDNN LSTM.

  python -m benchmarks.gpu_paper_scale [--hidden=2048] [--layers=2] \
      [--batch=80] [--steps=20] [--train_seconds=120] \
      [--output=runs/gpu_paper_scale.json]

It writes its results as JSON and their tables as Markdown beside it
(`to_markdown`); docs/results/gpu_paper_scale_h200.json is one such file.

The model: the unconditioned composite (10 input, 10 reconstructed and 10
future frames of 64x64 pixels), `--layers` x `--hidden` units, Adam with
global-norm clipping. Each measurement runs in a fresh process, so that
peak memory belongs to one implementation alone.

Part 1, speed and memory (same weights and batch for all; the first loss of
each is checked against ours):
  ours            the jitted step of `lstm_unsup.main`, float32 matmuls;
  ours_bf16       the same with `model.matmul_dtype="bfloat16"`;
  ours_peepholes  the paper's cell (peepholes), which cuDNN does not have;
  torch           `torch.nn.LSTM` (cuDNN on a GPU) building the same model.
Each prints the median step time over `--steps`, the first step (compile)
time and the peak device memory the framework reports.

Part 2, time to quality: ours and torch each train for `--train_seconds` of
wall clock on Moving MNIST batches from the same generator and digits, and
are evaluated every `--eval_seconds` (clock stopped) on the same validation
sequences. It reports the curve of future cross entropy (nats per frame)
against training seconds, and when each first reached `--target` (default:
the paper's Table 2 Composite Model, 344.9), if it did.

Both frameworks use their default float32 matmul precision, which is
TensorFloat-32 on NVIDIA GPUs since Ampere for both.

On a CPU the same script runs at tiny sizes (the tests do this).
"""

import contextlib
import io
import json
import os
import time

import numpy as np
from absl import flags

from benchmarks import train_step as bench
from experiments import paper_numbers
from lstm_unsup import cli, training_step

IMPLS = ("ours", "ours_bf16", "ours_peepholes", "torch")
FIELDS = {
  "ours": {},
  "ours_bf16": {"matmul_dtype": "bfloat16"},
  "ours_peepholes": {"peepholes": True},
  "torch": {},
}

FLAGS = flags.FLAGS


def _config(args, impl):
  config = bench.composite_config(
    args.hidden, args.batch, args.layers, **FIELDS.get(impl, {})
  )
  config.data.source = args.source
  config.eval.num_valid_sequences = args.valid_sequences
  return config


def _initial_params(args):
  """Our model's initial weights on the host (the same in every process)."""
  import jax  # noqa: PLC0415

  from lstm_unsup import models  # noqa: PLC0415

  config = _config(args, "ours")
  inputs, future = bench.random_batch(args.batch)
  model = models.build_model(config.model)
  with jax.default_device(jax.devices("cpu")[0]):
    params = jax.jit(model.init)(jax.random.key(config.seed), inputs, future)[
      "params"
    ]
  return jax.tree.map(np.asarray, params)


def _torch_device():
  import torch  # noqa: PLC0415

  return "cuda" if torch.cuda.is_available() else "cpu"


def _peak_bytes(impl: str) -> int | None:
  if impl == "torch":
    import torch  # noqa: PLC0415

    if torch.cuda.is_available():
      return int(torch.cuda.max_memory_allocated())
    return None
  import jax  # noqa: PLC0415

  stats = jax.devices()[0].memory_stats() or {}
  return stats.get("peak_bytes_in_use")


def _device(impl: str) -> dict:
  """The device the implementation runs on, as its framework names it."""
  if impl == "torch":
    import torch  # noqa: PLC0415

    if not torch.cuda.is_available():
      return {"device": "cpu"}
    return {
      "device": torch.cuda.get_device_name(0),
      "cudnn": torch.backends.cudnn.version(),
    }
  import jax  # noqa: PLC0415

  return {"device": jax.devices()[0].device_kind}


def speed(args, impl: str) -> dict:
  """Part 1 for one implementation, in this process."""
  inputs, future = bench.random_batch(args.batch)
  if impl == "torch":
    run = bench.torch_peer(
      args.hidden,
      _initial_params(args),
      inputs,
      future,
      args.layers,
      _torch_device(),
    )
  else:
    _, run = bench.ours(
      args.hidden, args.batch, inputs, future, args.layers, **FIELDS[impl]
    )
  start = time.perf_counter()
  first_loss = float(run())
  first_step_s = time.perf_counter() - start
  seconds = bench._median_seconds(run, args.steps)
  return {
    "impl": impl,
    "first_loss": first_loss,
    "first_step_s": first_step_s,
    "step_ms": 1e3 * seconds,
    "steps_per_s": 1 / seconds,
    "peak_bytes": _peak_bytes(impl),
    **_device(impl),
  }


def _ours_trainer(args):
  from lstm_unsup import evaluation, models  # noqa: PLC0415

  config = _config(args, "ours")
  model = models.build_model(config.model)
  mesh = training_step.make_mesh(1)
  inputs, future = bench.random_batch(args.batch)
  # The same initial weights as _initial_params (same key), made on device.
  state = training_step.create_train_state(config, model, inputs, future, mesh)
  step_fn = training_step.make_train_step(config, model, mesh)
  evaluator = evaluation.Evaluator(config, model, "valid")
  holder = [state]

  def train_step(inputs, future):
    holder[0], metrics = step_fn(
      holder[0], *training_step.shard_batch(mesh, inputs, future)
    )
    return metrics["loss"]

  def evaluate():
    return float(evaluator.evaluate(holder[0].params)["future_ce"])

  return config, train_step, evaluate


def _torch_trainer(args):
  import torch  # noqa: PLC0415

  from lstm_unsup import input_pipeline  # noqa: PLC0415

  config = _config(args, "torch")
  device = _torch_device()
  enc, decs, heads = bench.torch_modules(
    args.hidden, _initial_params(args), args.layers, device
  )
  modules = torch.nn.ModuleList([enc, *decs.values(), *heads.values()])
  opt = torch.optim.Adam(modules.parameters(), lr=config.optim.learning_rate)
  loss_fn = bench.torch_loss_fn(enc, decs, heads)

  def tensors(inputs, future):
    x = torch.from_numpy(inputs).to(device, non_blocking=True)
    targets = {"reconstruct": x.flip(1), "future": torch.from_numpy(future)}
    targets["future"] = targets["future"].to(device, non_blocking=True)
    return x, targets

  def train_step(inputs, future):
    opt.zero_grad(set_to_none=True)
    loss, _ = loss_fn(*tensors(inputs, future))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(modules.parameters(), config.optim.clip_norm)
    opt.step()
    return loss.detach()

  frames = input_pipeline.eval_sequences(config, "valid")
  bce = torch.nn.BCEWithLogitsLoss(reduction="sum")

  @torch.no_grad()
  def evaluate():
    total, count = 0.0, 0
    for start in range(0, len(frames), args.batch):
      chunk = input_pipeline.to_unit(frames[start : start + args.batch])
      x, targets = tensors(*input_pipeline.split_frames(config, chunk))
      _, logits = loss_fn(x, targets)
      total += float(bce(logits["future"], targets["future"])) / bench.K
      count += len(chunk)
    return total / count

  return config, train_step, evaluate


def time_to_quality(args, impl: str) -> dict:
  """Part 2 for one implementation, in this process."""
  from lstm_unsup import input_pipeline  # noqa: PLC0415

  make = _torch_trainer if impl == "torch" else _ours_trainer
  config, train_step, evaluate = make(args)
  source = input_pipeline.load_train_source(config)
  # The first step compiles and warms up: it is not training time.
  float(train_step(*input_pipeline.train_batch(config, source, 0)))
  curve, step, trained_s = [], 1, 0.0
  next_eval, start = args.eval_seconds, time.perf_counter()
  while True:
    loss = train_step(*input_pipeline.train_batch(config, source, step))
    step += 1
    if trained_s + time.perf_counter() - start < next_eval:
      continue
    float(loss)  # waits for the device; then the clock stops
    trained_s += time.perf_counter() - start
    curve.append({"seconds": trained_s, "step": step, "future_ce": evaluate()})
    if trained_s >= args.train_seconds:
      break
    next_eval = min(next_eval + args.eval_seconds, args.train_seconds)
    start = time.perf_counter()
  reached = [p for p in curve if p["future_ce"] <= args.target]
  return {
    "impl": impl,
    "curve": curve,
    "target": args.target,
    "seconds_to_target": reached[0]["seconds"] if reached else None,
    "best_future_ce": min(p["future_ce"] for p in curve),
  }


def _child(kind: str, impl: str) -> dict:
  """Runs one measurement in a fresh process; returns its JSON result."""
  env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")
  return bench.run_child(
    "benchmarks.gpu_paper_scale", f"{kind}:{impl}", impl, env
  )


def _print_speed(rows):
  ref = next(
    (r for r in rows if r["impl"] == "ours" and "error" not in r), None
  )
  for r in rows:
    if "error" in r:
      print(f"{r['impl']:15s} failed: {r['error']}")
      continue
    mem = r["peak_bytes"]
    mem_text = "-" if mem is None else f"{mem / 2**30:.2f} GiB"
    ratio = (
      ""
      if ref is None
      else f"  {r['step_ms'] / ref['step_ms']:.2f}x ours' step time"
    )
    print(
      f"{r['impl']:15s} {r['step_ms']:8.2f} ms/step  {r['steps_per_s']:7.2f} "
      f"steps/s  first step {r['first_step_s']:5.1f} s  peak {mem_text}  "
      f"first loss {r['first_loss']:.3f}{ratio}"
    )


def _torch_title(torch_lstm) -> str:
  cudnn = bool(torch_lstm) and torch_lstm.startswith("cuDNN")
  return "PyTorch `nn.LSTM`" + (" (cuDNN)" if cudnn else "")


def _speed_markdown(data: dict) -> list[str]:
  machine = data.get("machine") or {}
  titles = {
    "ours": "ours, no peepholes",
    "ours_bf16": "ours, `--config.model.matmul_dtype=bfloat16`",
    "ours_peepholes": "ours, the paper's cell (peepholes)",
    "torch": _torch_title(machine.get("torch_lstm")) + ", same model",
  }
  stack = [
    f"{name} {machine[key]}"
    for name, key in (("JAX", "jax"), ("Flax", "flax"), ("PyTorch", "torch"))
    if machine.get(key)
  ]
  if stack and machine.get("torch") and machine.get("torch_lstm"):
    stack[-1] += f" with {machine['torch_lstm']}"
  stack = [", ".join(stack)] if stack else []
  if machine.get("matmul_precision"):
    stack.append(f"float32 matmul precision: {machine['matmul_precision']}")
  steps = data.get("steps")
  rows = data["speed"]
  losses = [
    f"{titles.get(r['impl'], r['impl']).split(',')[0]} {r['first_loss']:.2f}"
    for r in rows
    if "error" not in r and r["impl"] in ("ours", "torch")
  ]
  lines = [
    f"The composite model at {data['layers']} x {data['hidden']} units, "
    f"batch {data['batch']} (10 + 10 + 10 frames of 4,096 pixels, Adam with "
    "global-norm clipping), each implementation in a fresh process, from "
    "the same weights and batch"
    + (f" (first loss: {', '.join(losses)})" if losses else "")
    + "; "
    + (f"medians of {steps} timed steps" if steps else "median step times")
    + f" on {machine.get('device') or 'one device'}"
    + (f" ({'; '.join(stack)})" if stack else "")
    + ".",
    "",
    "| implementation | ms/step | steps/s | step time vs ours | peak device "
    "memory | first step (compile) |",
    "|---|---|---|---|---|---|",
  ]
  ref = next((r for r in rows if r["impl"] == "ours" and "error" not in r), {})
  for r in rows:
    title = titles.get(r["impl"], r["impl"])
    if "error" in r:
      lines.append(f"| {title} | failed | - | - | - | - |")
      continue
    ratio = (
      f"{r['step_ms'] / ref['step_ms']:.2f}x" if ref.get("step_ms") else "-"
    )
    memory = r.get("peak_bytes")
    memory = "-" if memory is None else f"{memory / 2**30:.2f} GiB"
    lines.append(
      f"| {title} | {r['step_ms']:.2f} | {r['steps_per_s']:.1f} | {ratio} "
      f"| {memory} | {r['first_step_s']:.1f} s |"
    )
  return lines


def _seconds(x: float) -> str:
  return f"{x:.0f}" if x >= 9.5 else f"{x:.1f}"


def _quality_markdown(data: dict) -> list[str]:
  runs = data["time_to_quality"]
  machine = data.get("machine") or {}
  done = [r for r in runs if "error" not in r]
  target = done[0]["target"] if done else None
  seconds = data.get("train_seconds") or (
    done[0]["curve"][-1]["seconds"] if done else 0
  )
  caption = (
    f"Time to quality: each trained for {_seconds(seconds)} s of wall clock "
    "(the Moving MNIST generator on the host included, compilation and "
    "evaluations excluded) from the same weights on the same batches, "
    "evaluated"
  )
  if data.get("eval_seconds"):
    caption += f" every {_seconds(data['eval_seconds'])} s"
  if data.get("valid_sequences"):
    caption += f" on {data['valid_sequences']:,} validation sequences"
  if target is not None:
    caption += f"; the target is {target} nats/frame"
    if abs(target - paper_numbers.TABLE2["composite"]["mnist_ce"]) < 1e-6:
      caption += ", the paper's Composite Model (Table 2)"
  lines = [
    caption + ".",
    "",
    "| implementation | steps trained | validation future cross entropy, "
    "nats/frame (at training seconds) | reached the target |",
    "|---|---|---|---|",
  ]
  titles = {"ours": "ours", "torch": _torch_title(machine.get("torch_lstm"))}
  for r in runs:
    title = titles.get(r["impl"], r["impl"])
    if "error" in r:
      lines.append(f"| {title} | failed | - | - |")
      continue
    curve = ", ".join(
      f"{p['future_ce']:.1f} ({_seconds(p['seconds'])} s)" for p in r["curve"]
    )
    reached = r["seconds_to_target"]
    reached = "no" if reached is None else f"after {_seconds(reached)} s"
    lines.append(
      f"| {title} | {r['curve'][-1]['step']:,} | {curve} | {reached} |"
    )
  return lines


def to_markdown(data: dict) -> str:
  """The speed table and the time-to-quality table of `main`'s results."""
  lines = _speed_markdown(data)
  if data.get("time_to_quality"):
    lines += ["", *_quality_markdown(data)]
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  args = FLAGS
  if args.child:
    kind, impl = args.child.split(":")
    fn = speed if kind == "speed" else time_to_quality
    print(json.dumps(fn(args, impl)))
    return
  result = {
    "hidden": args.hidden,
    "layers": args.layers,
    "batch": args.batch,
    "steps": args.steps,
    "train_seconds": args.train_seconds,
    "eval_seconds": args.eval_seconds,
    "valid_sequences": args.valid_sequences,
    # Versions from package metadata: this process starts no device.
    "machine": dict(
      bench.versions("jax", "flax", "torch"),
      matmul_precision=os.environ.get(
        "JAX_DEFAULT_MATMUL_PRECISION", "default"
      ),
    ),
    "speed": [],
    "time_to_quality": [],
  }

  def save(quiet=True):  # after each part: a killed run keeps what it did
    if args.output:
      with (
        contextlib.redirect_stdout(io.StringIO())
        if quiet
        else contextlib.nullcontext()
      ):
        bench.write_results(args.output, result, "benchmarks.gpu_paper_scale")

  print(f"Composite, {args.layers} x {args.hidden} units, batch {args.batch}:")
  result["speed"] = [_child("speed", impl) for impl in args.impls]
  for r in result["speed"]:
    if r["impl"] == "torch" and r.get("cudnn"):
      result["machine"]["torch_lstm"] = f"cuDNN {r['cudnn']}"
    elif r["impl"] != "torch" and "device" in r:
      result["machine"].setdefault("device", r["device"])
  save()
  _print_speed(result["speed"])
  # The same weights and batch give the same loss (peepholes add weights).
  ok = [
    r
    for r in result["speed"]
    if "error" not in r and r["impl"] != "ours_peepholes"
  ]
  for r in ok:
    if abs(r["first_loss"] - ok[0]["first_loss"]) > 1e-2 * abs(
      ok[0]["first_loss"]
    ):
      print(f"WARNING: {r['impl']} computes another first loss.")
  if args.train_seconds > 0:
    for impl in ("ours", "torch"):
      r = _child("train", impl)
      result["time_to_quality"].append(r)
      save()
      if "error" in r:
        print(f"{impl}: training failed: {r['error']}")
        continue
      last = r["curve"][-1]
      reached = r["seconds_to_target"]
      print(
        f"{impl:6s} after {last['seconds']:.0f} s ({last['step']} steps): "
        f"validation future CE {last['future_ce']:.1f} nats/frame; target "
        f"{r['target']} "
        + ("not reached" if reached is None else f"reached at {reached:.0f} s")
      )
  save(quiet=False)


if __name__ == "__main__":
  flags.DEFINE_integer("hidden", 2048, "Units per layer.")
  flags.DEFINE_integer("layers", 2, "LSTM layers.")
  flags.DEFINE_integer("batch", 80, "Sequences per step.")
  flags.DEFINE_integer("steps", 20, "Timed steps (median) in part 1.")
  flags.DEFINE_list("impls", list(IMPLS), f"Part 1 implementations: {IMPLS}.")
  flags.DEFINE_float("train_seconds", 60.0, "Part 2 training time; 0: skip.")
  flags.DEFINE_float("eval_seconds", 15.0, "Part 2 evaluation interval.")
  flags.DEFINE_integer("valid_sequences", 1000, "Part 2 validation set size.")
  flags.DEFINE_float(
    "target",
    paper_numbers.TABLE2["composite"]["mnist_ce"],
    "Part 2 target: future cross entropy, nats per frame.",
  )
  flags.DEFINE_string("source", "offline", "Digit source for part 2.")
  flags.DEFINE_string(
    "child", "", "Internal: kind:impl to run in this process."
  )
  flags.DEFINE_string("output", "runs/gpu_paper_scale.json", "JSON results.")
  cli.run_main(main)

"""The authors' setting and recipe, end to end through the trainer, on a CPU.

  python -m benchmarks.paper_cpu [--steps=20] [--sequences=80] \
      [--workdir=runs/paper_cpu] [--output=runs/paper_cpu.json]

Runs the command a user runs, `python -m lstm_unsup.main
--config=lstm_unsup/configs/composite.py:paper`, for `--steps` steps: the
composite model at 2 x 2048 units with peepholes, batch 80, the authors'
initialisation and clipped momentum update on the summed loss
(docs/recipe.md), evaluated at its last step on `--sequences` validation
and test sequences (10,000 test sequences take about 20 minutes on 2 cores).
It reports the seconds per training step (the median of the per-step
windows after the first two, which compile and warm up), the peak resident
memory of the process, the training loss at the first and last steps, and
whether a rerun resumed from the checkpoint of the middle step ends with the
same bits as the straight run. Writes the results as JSON and their table as
Markdown (`to_markdown`).
"""

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
from absl import flags

from benchmarks import train_step as bench
from experiments import results  # noqa: F401 (reads the commit at start)
from lstm_unsup import cli
from lstm_unsup.run import checkpoints, metrics_io

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 2**30


def command(workdir: str, steps: int, sequences: int, hidden: int) -> list[str]:
  """The training command, as a user types it."""
  size = [] if hidden == 2048 else [f"--config.model.hidden={hidden}"]
  return [
    sys.executable,
    "-m",
    "lstm_unsup.main",
    "--config=lstm_unsup/configs/composite.py:paper",
    f"--workdir={workdir}",
    f"--config.train.num_steps={steps}",
    "--config.train.log_every_steps=1",
    f"--config.train.checkpoint_every_steps={steps // 2}",
    f"--config.eval.num_valid_sequences={sequences}",
    f"--config.eval.num_test_sequences={sequences}",
    f"--config.eval.batch_size={sequences}",
    *size,
  ]


def _run(cmd: list[str]) -> tuple[float, str]:
  """(wall seconds, log) of a command that must succeed."""
  start = time.perf_counter()
  done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
  if done.returncode != 0:
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
  return time.perf_counter() - start, done.stderr


def _records(workdir: str) -> list[dict]:
  return metrics_io.read_metrics(workdir, damaged="refuse")


def measure(workdir: str, steps: int, sequences: int, hidden: int) -> dict:
  """Trains `steps` steps, then resumes a copy from step `steps // 2`."""
  if steps < 6 or steps % 2:
    raise ValueError(f"--steps must be even and at least 6, not {steps}.")
  straight = os.path.join(workdir, "straight")
  resumed = os.path.join(workdir, "resumed")
  shutil.rmtree(workdir, ignore_errors=True)
  wall, log = _run(command(straight, steps, sequences, hidden))
  peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
  recipe = [line for line in log.splitlines() if " recipe (" in line]
  train = [r for r in _records(straight) if r["split"] == "train"]
  test = [r for r in _records(straight) if r["split"] == "test"][-1]
  seconds = [1 / r["steps_per_sec"] for r in train[2:]]

  # The run again from the middle checkpoint: a copy without the last one.
  shutil.copytree(straight, resumed)
  shutil.rmtree(os.path.join(resumed, "checkpoints", str(steps)))
  _run(command(resumed, steps, sequences, hidden))
  a = checkpoints.restore_params(straight)
  b = checkpoints.restore_params(resumed)
  same = all(
    np.array_equal(np.asarray(x), np.asarray(y))
    for x, y in zip(_leaves(a), _leaves(b), strict=True)
  )
  return {
    "trainer_command": "python "
    + " ".join(command("W", steps, sequences, hidden)[1:]),
    "hidden": hidden,
    "steps": steps,
    "sequences": sequences,
    "recipe_line": recipe[0].split("] ", 1)[-1] if recipe else "",
    "cpu": bench.cpu(),
    "seconds_per_step": statistics.median(seconds),
    "seconds_per_step_range": [min(seconds), max(seconds)],
    "peak_rss_gib": peak / GIB,
    "wall_seconds": wall,
    "loss_first": train[0]["loss"],
    "loss_last": train[-1]["loss"],
    "future_ce_first": train[0]["future"],
    "future_ce_last": train[-1]["future"],
    "test_future_ce": test["future_ce"],
    "resumed_bit_exact": same,
  }


def _leaves(tree):
  import jax  # noqa: PLC0415

  return jax.tree.leaves(tree)


def to_markdown(data: dict) -> str:
  rows = [
    ("CPU", f"{data['cpu']['model']}, {data['cpu']['cores']} cores"),
    ("seconds per training step (median)", f"{data['seconds_per_step']:.2f}"),
    (
      "range over steps 3 on",
      "{:.2f} to {:.2f}".format(*data["seconds_per_step_range"]),
    ),
    ("peak resident memory", f"{data['peak_rss_gib']:.2f} GiB"),
    (
      f"training loss, step 1 -> {data['steps']} (summed over batch and "
      "frames)",
      f"{data['loss_first']:,.0f} -> {data['loss_last']:,.0f}",
    ),
    (
      "future cross entropy, nats/frame",
      f"{data['future_ce_first']:.2f} -> {data['future_ce_last']:.2f}",
    ),
    (
      f"resumed from step {data['steps'] // 2}: same bits at step "
      f"{data['steps']}",
      "yes" if data["resumed_bit_exact"] else "**no**",
    ),
    (
      "wall time of the run, evaluations included",
      f"{data['wall_seconds']:.0f} s",
    ),
  ]
  lines = [
    f"The authors' recipe at the paper's size on the CPU: "
    f"`{data['trainer_command']}` ({data['sequences']} validation and test "
    "sequences).",
    "",
    "| Measure | Value |",
    "|---|---|",
  ]
  lines += [f"| {name} | {value} |" for name, value in rows]
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  data = measure(FLAGS.workdir, FLAGS.steps, FLAGS.sequences, FLAGS.hidden)
  bench.write_results(FLAGS.output, data, "benchmarks.paper_cpu")


if __name__ == "__main__":
  flags.DEFINE_integer("steps", 20, "Training steps (even, at least 6).")
  flags.DEFINE_integer("sequences", 80, "Validation and test sequences.")
  flags.DEFINE_integer("hidden", 2048, "Units per LSTM (2048: the paper's).")
  flags.DEFINE_string("workdir", "runs/paper_cpu", "Where the runs go.")
  flags.DEFINE_string("output", "runs/paper_cpu.json", "JSON results.")
  cli.run_main(main)

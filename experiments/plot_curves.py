"""Plots a run's learning curves from its metrics.jsonl.

  python -m experiments.plot_curves --workdir=runs/composite_cpu \
      [--output=runs/composite_cpu/curves.png]

Train (every log period) and validation (every evaluation) loss of each
decoder in the paper's unit against the step: cross entropy in nats per
frame for binary frames (Moving MNIST), squared loss per frame for real ones
(image patches), as the run's config says. A damaged line of metrics.jsonl
is skipped with a warning naming it: the plot shows what can be read.
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from absl import flags  # noqa: E402

from lstm_unsup import cli, losses  # noqa: E402
from lstm_unsup.run import folder, metrics_io  # noqa: E402

FLAGS = flags.FLAGS


def loss_kind(workdir: str, records: list[dict]) -> str:
  """ "binary" or "real": the run's config, else the metric names."""
  config = folder.RunDir(workdir).read_config() or {}
  kind = config.get("model", {}).get("output")
  if kind in losses.UNITS:
    return kind
  real = any(key.endswith("_se") for r in records for key in r)
  return "real" if real else "binary"


def plot(workdir: str, output: str, title: str = "") -> str:
  records = metrics_io.read_metrics(workdir)
  if not records:
    raise FileNotFoundError(f"No records in {metrics_io.path(workdir)}.")
  kind = loss_kind(workdir, records)
  key = losses.METRIC_KEYS[kind]
  fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
  styles = {"reconstruct": "tab:blue", "future": "tab:red"}
  for name, color in styles.items():
    train = [
      (r["step"], r[name])
      for r in records
      if r["split"] == "train" and name in r
    ]
    valid = [
      (r["step"], r[f"{name}_{key}"])
      for r in records
      if r["split"] == "valid" and f"{name}_{key}" in r
    ]
    if train:
      ax.plot(
        *zip(*train), color=color, alpha=0.35, lw=1, label=f"{name}, train"
      )
    if valid:
      ax.plot(
        *zip(*valid), color=color, marker="o", lw=2, label=f"{name}, validation"
      )
  tests = [r for r in records if r["split"] == "test"]
  if tests and f"future_{key}" in tests[-1]:
    ax.axhline(
      tests[-1][f"future_{key}"],
      color="tab:red",
      ls="--",
      lw=1,
      label=f"future, test: {tests[-1][f'future_{key}']:.1f}",
    )
  ax.set_xlabel("training step")
  name = "cross entropy" if kind == "binary" else "squared loss"
  ax.set_ylabel(f"{name} ({losses.UNITS[kind]})")
  ax.set_title(title or os.path.basename(os.path.normpath(workdir)))
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(output)
  plt.close(fig)
  return output


def main(argv):
  del argv
  output = FLAGS.output or os.path.join(FLAGS.workdir, "curves.png")
  print("Wrote", plot(FLAGS.workdir, output))


if __name__ == "__main__":
  flags.DEFINE_string(
    "workdir", None, "A training run's workdir.", required=True
  )
  flags.DEFINE_string("output", "", "PNG path (default: workdir/curves.png).")
  cli.run_main(main)

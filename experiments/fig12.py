"""Figure 12 of the paper: accuracy against labelled videos per class.

  python -m experiments.fig12 --scale=quick|cpu|paper --workdir=runs/table3

Three classifiers on the labelled Moving MNIST task (40 classes): the
single-frame baseline (logistic regression per frame, averaged), the LSTM
classifier from random weights, and the LSTM seeded from the Composite
Model's encoder (pretrained by experiments.table3 under
`<workdir>/pretrain/composite`, so both scripts share it), each trained on
1 to 100 labelled videos per class. Every point is the mean over RESAMPLES
random draws of the labelled set, with the standard deviation as a band, as
the paper's grey bands over 10 samples. Writes `fig12.png` (ours beside the
paper's UCF-101 and HMDB-51 curves), `fig12.json` and `fig12.md`. Finished
runs are read back.

Scales: quick (seconds, 2 label counts x 2 draws); cpu (table3's cpu
encoder, 7 label counts x 10 draws: 210 classifiers; on 2 cores each LSTM
classifier takes about 43 s and a single-frame one about 9 s: 2.3 hours
in all, measured; --labels_per_class and --resamples pick a part); paper
(GPU). --classifier_steps trains every classifier longer (or shorter) in
cells of its own and writes `fig12_steps<N>.*`, e.g. to see whether the
many-label points of the `cpu` run are limited by its 500 steps.
"""

import os

import matplotlib
import numpy as np
from absl import flags

from experiments import paper_numbers, results, table3
from lstm_unsup import cli
from lstm_unsup.classifier import train as train_classifier
from lstm_unsup.configs import default
from lstm_unsup.data import labelled

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {
  "quick": (1, 2),
  "cpu": (1, 2, 4, 10, 20, 50, 100),
  "paper": (1, 2, 4, 10, 20, 50, 100),
}
DATASETS = {"ucf101": "UCF-101", "hmdb51": "HMDB-51"}
RESAMPLES = {"quick": 2, "cpu": 10, "paper": 10}
MODELS = {  # name: (title, classifier kind, seeded from the composite)
  "single_frame": ("Single Frame", "single_frame", False),
  "lstm": ("LSTM", "lstm", False),
  "lstm_pretrained": ("LSTM + Pretraining (Composite)", "lstm", True),
}


def build_curves(
  scale: str,
  workdir: str,
  labels=(),
  resamples: int = 0,
  classifier_steps: int = 0,
):
  """Trains or reads every point; returns the curves as a dict.

  `classifier_steps` > 0 trains every classifier for that many steps
  instead of the scale's, in cells of their own (`k<count>_s<steps>`).
  """
  if classifier_steps < 0:
    raise ValueError(f"classifier_steps must be >= 0, got {classifier_steps}")
  labels = tuple(labels) or LABELS[scale]
  resamples = resamples or RESAMPLES[scale]
  composite = next(r for r in table3.ROWS if r.name == "composite")
  pretrained, seconds = table3.pretrain(composite, scale, workdir)
  curves = {
    "scale": scale,
    "labels_per_class": list(labels),
    "resamples": resamples,
    "classifier_steps": classifier_steps or None,
    "pretrained": pretrained,
    "recipe": default.recipe(table3.encoder_config(scale)),  # pretraining
    "models": {},
  }
  for name, (title, kind, seeded) in MODELS.items():
    points = []
    for k in labels:
      accuracies = []
      for r in range(resamples):
        config = table3.classifier_config(
          scale, r, k, kind=kind, pretrained=pretrained if seeded else ""
        )
        point = f"k{k}"
        if classifier_steps:
          config.train.num_steps = classifier_steps
          point += f"_s{classifier_steps}"
        cell = os.path.join(workdir, "fig12", name, point, f"r{r}")
        result = train_classifier.train_and_evaluate(config, cell)
        accuracies.append(100 * result["accuracy"])
        seconds += result["wall_seconds"]
      points.append(
        {
          "mean": float(np.mean(accuracies)),
          "std": float(np.std(accuracies, ddof=1)) if resamples > 1 else 0.0,
          "resamples": accuracies,
        }
      )
    curves["models"][name] = {"title": title, "points": points}
  curves["minutes"] = seconds / 60  # training wall time, pretraining included
  return curves


def plot(curves: dict, path: str) -> None:
  """Ours beside the paper's two panels."""
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  colors = {"single_frame": "C2", "lstm": "C0", "lstm_pretrained": "C3"}
  x = curves["labels_per_class"]
  for name, model in curves["models"].items():
    mean = np.array([p["mean"] for p in model["points"]])
    std = np.array([p["std"] for p in model["points"]])
    axes[0].plot(x, mean, "o-", color=colors[name], label=model["title"])
    axes[0].fill_between(
      x, mean - std, mean + std, color=colors[name], alpha=0.2
    )
  axes[0].axhline(
    100 * labelled.ORDER_BLIND_CEILING,
    ls=":",
    color="0.4",
    label="ceiling of any frame-order-blind model",
  )
  axes[0].set_title(
    f"Ours: labelled Moving MNIST, scale {curves['scale']} "
    f"({_steps(curves)}{curves['resamples']} draws)"
  )
  for ax, dataset in zip(axes[1:], ("ucf101", "hmdb51")):
    paper = paper_numbers.FIG12[dataset]
    for name in ("single_frame", "lstm", "lstm_pretrained"):
      ax.plot(
        paper["labels_per_class"],
        paper[name],
        "o--",
        color=colors[name],
        label=MODELS[name][0],
      )
    _log_axis(ax, paper["labels_per_class"])
    ax.set_title(f"Paper: {DATASETS[dataset]} (read off Fig. 12)")
  _log_axis(axes[0], x)
  for ax in axes:
    ax.set_xlabel("labelled training videos per class")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _log_axis(ax, ticks) -> None:
  ax.set_xscale("log")
  ax.set_xticks(ticks, [str(t) for t in ticks])
  ax.minorticks_off()


def pretraining_gain(curves: dict) -> list[dict]:
  """Per label count: the seeded LSTM's mean accuracy minus the randomly
  initialised LSTM's, and whether that gain exceeds the larger of their
  two standard deviations over the draws (the issue's test)."""
  seeded = curves["models"]["lstm_pretrained"]["points"]
  random = curves["models"]["lstm"]["points"]
  out = []
  for a, b in zip(seeded, random):
    gain = a["mean"] - b["mean"]
    out.append({"gain": gain, "beyond_spread": gain > max(a["std"], b["std"])})
  return out


def to_markdown(curves: dict) -> str:
  x = curves["labels_per_class"]
  lines = [
    f"Figure 12 at scale `{curves['scale']}`: test accuracy (%) per video, "
    f"mean ± standard deviation over {curves['resamples']} draws of the "
    f"labelled videos; {_steps(curves)}{curves['minutes']:.1f} minutes of "
    "training in all. Ours: the labelled Moving MNIST task (40 classes, "
    "chance 2.5%), a stand-in for UCF-101, so compare the gaps between "
    "models, not the accuracies, with the paper's.",
    "",
    "| labelled videos per class | " + " | ".join(map(str, x)) + " |",
    "|---|" + "---|" * len(x),
  ]
  for model in curves["models"].values():
    cells = [f"{p['mean']:.1f} ± {p['std']:.1f}" for p in model["points"]]
    lines.append(f"| {model['title']} | " + " | ".join(cells) + " |")
  lines.append(
    "| pretrained - LSTM: gain; beyond the spread? | "
    + " | ".join(
      f"{g['gain']:+.1f}; {'yes' if g['beyond_spread'] else 'no'}"
      for g in pretraining_gain(curves)
    )
    + " |"
  )
  paper = paper_numbers.FIG12["ucf101"]
  lines += [
    "",
    "Paper, UCF-101 (labels per class "
    + ", ".join(map(str, paper["labels_per_class"]))
    + "): single frame "
    + ", ".join(map(str, paper["single_frame"]))
    + "; LSTM "
    + ", ".join(map(str, paper["lstm"]))
    + "; LSTM + pretraining "
    + ", ".join(map(str, paper["lstm_pretrained"]))
    + ".",
  ]
  return "\n".join(lines) + "\n"


def _steps(curves: dict) -> str:
  steps = curves.get("classifier_steps")
  return f"{steps} training steps per classifier; " if steps else ""


def output_name(classifier_steps: int) -> str:
  """`fig12`, or `fig12_steps<N>` for a run with its own step count."""
  return f"fig12_steps{classifier_steps}" if classifier_steps else "fig12"


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  curves = build_curves(
    FLAGS.scale,
    FLAGS.workdir,
    labels=tuple(int(k) for k in FLAGS.labels_per_class),
    resamples=FLAGS.resamples,
    classifier_steps=FLAGS.classifier_steps,
  )
  name = output_name(FLAGS.classifier_steps)
  results.write(FLAGS.workdir, name, curves, "experiments.fig12")
  plot(curves, os.path.join(FLAGS.workdir, f"{name}.png"))
  print(f"Wrote {FLAGS.workdir}/{name}.png")


if __name__ == "__main__":
  flags.DEFINE_enum("scale", "cpu", ["quick", "cpu", "paper"], "Scale.")
  flags.DEFINE_string("workdir", "runs/table3", "Shared with table3.")
  flags.DEFINE_list("labels_per_class", [], "Default: the scale's.")
  flags.DEFINE_integer("resamples", 0, "Draws per point; 0: the scale's.")
  flags.DEFINE_integer(
    "classifier_steps", 0, "Training steps per classifier; 0: the scale's."
  )
  cli.run_main(main, checks=(ValueError,))

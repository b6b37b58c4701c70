"""Table 3 of the paper: which unsupervised pretraining helps the classifier.

  python -m experiments.table3 --scale=quick|cpu|paper --workdir=runs/table3

Every row of the paper's Table 3: the LSTM classifier from random weights
(Baseline LSTM), or seeded from the encoder of an Autoencoder, Future
Predictor, Conditional Autoencoder, Conditional Future Predictor, Composite
Model, or Composite Model with Conditional Future Predictor, then fine-tuned
(all weights) on the labelled Moving MNIST task (`lstm_unsup.data.labelled`:
40 classes, digit x direction of motion; our stand-in for UCF-101 and
HMDB-51). Two columns, as the paper's: a small labelled set (SMALL videos
per class) and the full one. A single-frame row gives context (the paper's
Table 1). Every classifier has the encoders' architecture and the same
budget; each cell is the mean and spread over seeds (a different labelled
subset, initialisation, dropout and batch order per seed).

The encoders are pretrained once each under `<workdir>/pretrain/<row>` on
ordinary (unlabelled, two-digit) Moving MNIST, with 16 input frames (the
classifier's block) and 13 future frames as the paper's percept models at
`cpu` and `paper` scale. Finished runs are read back, so a rerun resumes.
Writes `table.md` and `table.json` beside the runs.

Scales:
  quick  seconds; a smoke test of the whole pipeline.
  cpu    1 x 256 units, 3,000 pretraining steps per encoder, classifiers
         of 500 steps, seeds 0-2: 6 pretrainings and 48 classifiers, about
         1.1 hours on 2 cores (measured: 56.7 minutes plus the composite
         pretraining that fig12 shares).
  paper  2 x 2048 units with peepholes (GPU).
"""

import dataclasses
import os

from absl import flags

from experiments import paper_numbers, results, table2, tables
from lstm_unsup import classifier, cli
from lstm_unsup.classifier import train as train_classifier
from lstm_unsup.configs import classifier as classifier_configs
from lstm_unsup.configs import default
from lstm_unsup.data import labelled


@dataclasses.dataclass(frozen=True)
class Row:
  name: str  # key in paper_numbers.TABLE3, or a context row
  title: str
  decoders: str | None  # the pretrained model; None: no pretraining
  conditional_reconstruct: bool = False
  conditional_future: bool = False
  kind: str = "lstm"


ROWS = (
  Row("baseline", "Baseline LSTM", None),
  Row("autoencoder", "Autoencoder", "autoencoder"),
  Row("future", "Future Predictor", "future"),
  Row(
    "autoencoder_conditional",
    "Conditional Autoencoder",
    "autoencoder",
    conditional_reconstruct=True,
  ),
  Row(
    "future_conditional",
    "Conditional Future Predictor",
    "future",
    conditional_future=True,
  ),
  Row("composite", "Composite Model", "composite"),
  Row(
    "composite_conditional",
    "Composite Model with Conditional Future Predictor",
    "composite",
    conditional_future=True,
  ),
  Row("single_frame", "Single Frame (context)", None, kind="single_frame"),
)
SEEDS = {"quick": (0,), "cpu": (0, 1, 2), "paper": (0, 1, 2)}
SMALL = {"quick": 2, "cpu": 10, "paper": 10}  # UCF-101 small: 10 per class
COLUMNS = ("small", "full")


def encoder_config(
  scale: str,
  decoders: str = "composite",
  conditional_reconstruct: bool = False,
  conditional_future: bool = False,
):
  """An unsupervised model of Table 3's size at `scale`."""
  config = default.get_config(scale)
  config.model.decoders = decoders
  config.model.conditional_reconstruct = conditional_reconstruct
  config.model.conditional_future = conditional_future
  if scale == "quick":
    config.train.eval_every_steps = config.train.num_steps
  else:  # the paper's percept models: autoencode 16 frames, predict 13
    config.data.num_input_frames, config.model.num_future = 16, 13
  if scale == "cpu":
    config.model.hidden, config.model.num_layers = 256, 1
    config.train.num_steps = 3_000
    config.train.eval_every_steps = config.train.checkpoint_every_steps = 1000
  return config


def pretrain(row: Row, scale: str, workdir: str) -> tuple[str, float]:
  """Trains (or finds) the unsupervised model whose encoder seeds the row's
  classifier; returns its workdir and training wall time."""
  config = encoder_config(
    scale, row.decoders, row.conditional_reconstruct, row.conditional_future
  )
  run_dir = os.path.join(workdir, "pretrain", row.name)
  return run_dir, table2.run_cell(config, run_dir)["wall_seconds"]


def classifier_config(
  scale: str,
  seed: int,
  labels_per_class: int,
  *,
  kind: str = "lstm",
  pretrained: str = "",
):
  """One classifier cell. Its LSTM has the encoders' architecture, so the
  baseline differs from the seeded rows only in its initial weights."""
  config = classifier_configs.get_config(scale)
  encoder = encoder_config(scale)  # the architecture all rows share
  config.data.image_size = encoder.data.image_size
  config.data.source = encoder.data.source
  for name in classifier.ARCHITECTURE_FIELDS:
    config.model[name] = encoder.model[name]
  config.model.kind = kind
  config.seed = seed
  config.data.labels_per_class = labels_per_class
  config.data.resample = seed
  config.pretrained.workdir = pretrained
  return config


def build_table(scale: str, workdir: str, rows=(), seeds=()):
  """Pretrains, trains and evaluates every cell (or reads it back)."""
  unknown = set(rows) - {row.name for row in ROWS}
  if unknown:
    raise ValueError(
      f"Unknown Table 3 rows {sorted(unknown)}; the rows are "
      f"{[row.name for row in ROWS]}."
    )
  seeds = tuple(seeds) or SEEDS[scale]
  table = {
    "scale": scale,
    "seeds": list(seeds),
    "small": SMALL[scale],
    "recipe": default.recipe(encoder_config(scale)),  # of the pretraining
  }
  table["rows"] = []
  for row in ROWS:
    if rows and row.name not in rows:
      continue
    pretrained, seconds = "", 0.0
    if row.decoders:
      pretrained, seconds = pretrain(row, scale, workdir)
    entry = {"name": row.name, "title": row.title, "pretrained": pretrained}
    for column in COLUMNS:
      per_class = SMALL[scale] if column == "small" else 0
      results = []
      for seed in seeds:
        config = classifier_config(
          scale, seed, per_class, kind=row.kind, pretrained=pretrained
        )
        cell = os.path.join(workdir, "table3", row.name, column, f"s{seed}")
        results.append(train_classifier.train_and_evaluate(config, cell))
      entry[column] = tables.spread([100 * r["accuracy"] for r in results])
      entry[column]["train_videos"] = results[0]["num_train_videos"]
      seconds += sum(r["wall_seconds"] for r in results)
    entry["minutes"] = seconds / 60
    table["rows"].append(entry)
  table["test_videos"] = results[0]["num_videos"]
  return table


def _paper(name: str, key: str):
  if name == "single_frame":
    table1 = paper_numbers.TABLE1["single_frame"]
    return {"ucf": table1["ucf101_rgb"], "hmdb": table1["hmdb51_rgb"]}.get(key)
  return paper_numbers.TABLE3.get(name, {}).get(key)


def _fmt(value, stat=None):
  if stat is not None:
    text = f"{stat['mean']:.1f}"
    return text + (f" ± {stat['std']:.1f}" if stat["std"] is not None else "")
  return "-" if value is None else f"{value}"


def to_markdown(table: dict) -> str:
  seeds = ", ".join(str(s) for s in table["seeds"])
  lines = [
    f"Table 3 at scale `{table['scale']}`: test accuracy (%) per video, mean "
    f"± standard deviation over seeds {seeds}. Ours: the labelled Moving "
    f"MNIST task ({table['test_videos']} test videos of test digits, 40 "
    f"classes, chance 2.5%); small = {table['small']} labelled videos per "
    "class. Paper: UCF-101 (small = 10 per class) and HMDB-51 (small = 4). "
    "Our task stands in for those, which cannot be had offline, so the "
    "accuracies are not comparable with the paper's: compare the gains "
    "from pretraining."
    + (
      " Quick scale: a smoke test, accuracies near chance."
      if table["scale"] == "quick"
      else ""
    ),
    "",
    "| Method | ours, small | ours, full | UCF-101 small, paper | UCF-101, "
    "paper | HMDB-51 small, paper | HMDB-51, paper | minutes |",
    "|---|---|---|---|---|---|---|---|",
  ]
  for e in table["rows"]:
    n = e["name"]
    lines.append(
      f"| {e['title']} | {_fmt(None, e['small'])} | {_fmt(None, e['full'])} "
      f"| {_fmt(_paper(n, 'ucf_small'))} | {_fmt(_paper(n, 'ucf'))} "
      f"| {_fmt(_paper(n, 'hmdb_small'))} | {_fmt(_paper(n, 'hmdb'))} "
      f"| {e['minutes']:.1f} |"
    )
  lines += [
    "",
    "Any model blind to the order of frames (the single-frame baseline) can "
    f"reach at most {100 * labelled.ORDER_BLIND_CEILING:.0f}% on our task: a "
    "video played backwards has the same frames and the opposite direction. "
    "Minutes: training wall time of the row, its pretraining and every "
    "classifier together.",
  ]
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  table = build_table(
    FLAGS.scale,
    FLAGS.workdir,
    rows=tuple(FLAGS.rows),
    seeds=tuple(int(s) for s in FLAGS.seeds),
  )
  results.write(FLAGS.workdir, "table3", table, "experiments.table3")


if __name__ == "__main__":
  flags.DEFINE_enum("scale", "cpu", ["quick", "cpu", "paper"], "Scale.")
  flags.DEFINE_string("workdir", "runs/table3", "Where every run goes.")
  flags.DEFINE_list("rows", [], "Only these rows (default: all).")
  flags.DEFINE_list("seeds", [], "Only these seeds (default: the scale's).")
  cli.run_main(main, checks=(ValueError,))

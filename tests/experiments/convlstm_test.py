"""The FC-LSTM against ConvLSTM comparison at the quick scale, end to end."""

import json
import os

import numpy as np
import PIL.Image
import pytest

from experiments import convlstm, paper_numbers, results

ROWS = ("fc_future", "conv_future")


def _quick_table(workdir: str) -> dict:
  """The two future predictors, 2 s of training each, offline digits."""
  offline = {"data.source": "offline", "data.data_dir": workdir}
  return convlstm.build_table(
    "quick", workdir, train_seconds=2.0, rows=ROWS, overrides=offline
  )


def test_quick_comparison_trains_both_cells_on_a_budget(tmp_path):
  workdir = str(tmp_path)
  table = _quick_table(workdir)
  assert [r["name"] for r in table["rows"]] == list(ROWS)
  fc, conv = table["rows"]
  for row in (fc, conv):
    assert 0 < row["ce"]["mean"] < 2000 and row["sse"]["mean"] > 0
    assert row["steps"]["mean"] >= 1 and row["parameters"] > 0
  with open(os.path.join(workdir, "conv_future", "seed_0", "config.json")) as f:
    model = json.load(f)["model"]
  assert model["cell"] == "conv" and model["decoders"] == "future"
  assert fc["shi_2015_ce"] == paper_numbers.SHI_2015["fc"]["ce"] == 483.2
  assert conv["openstl_sse"] == paper_numbers.OPENSTL["conv"]["sse"]
  # Written as results: the JSON renders to the Markdown beside it.
  results.write(workdir, "table", table, "experiments.convlstm")
  markdown = open(os.path.join(workdir, "table.md")).read()
  assert markdown == results.render(results.load(f"{workdir}/table.json"))
  assert "| ConvLSTM future predictor | 1 x 8 channels" in markdown
  assert "| 367.1 | 30 |" in markdown and "2 s of training" in markdown
  assert "Not comparable" in markdown  # quick frames are 32x32
  # A rerun reads the finished cells back instead of training them again.
  again = _quick_table(workdir)
  assert again["rows"][1]["steps"] == conv["steps"]
  # The picture: one panel per trained row, each two test sequences high.
  path = convlstm.prediction_figure(workdir, count=1)
  assert path == os.path.join(workdir, "predictions.png")
  one = np.asarray(PIL.Image.open(path))
  two = np.asarray(PIL.Image.open(convlstm.prediction_figure(workdir)))
  # Two rows' panels of one and of two sequences: the extra sequence adds
  # the same height to each panel.
  panel = one.shape[0] // 2
  assert one.shape[0] == 2 * panel and two.shape[0] > one.shape[0]
  assert (two.shape[0] - one.shape[0]) % 2 == 0
  assert one.std() > 10  # frames drawn, not a blank page
  with pytest.raises(ValueError, match="No trained rows"):
    convlstm.prediction_figure(os.path.join(workdir, "nothing"))


def test_cpu_cells_differ_only_in_the_model():
  # The same data, batch, budget and seed for both cells: only the model
  # fields differ (Table 2's FC-LSTM against the ConvLSTM of `:cpu`).
  for seed in convlstm.SEEDS["cpu"]:
    fc, conv = (
      convlstm.row_config(row, "cpu", seed, 1800.0) for row in convlstm.ROWS[:2]
    )
    assert fc.model.cell == "fc" and fc.model.hidden == 512
    assert conv.model.cell == "conv" and conv.model.hidden == 32
    for group in ("data", "train", "optim", "eval"):
      assert fc[group].to_dict() == conv[group].to_dict(), group
    assert fc.seed == conv.seed == seed
    assert conv.train.train_seconds == 1800.0

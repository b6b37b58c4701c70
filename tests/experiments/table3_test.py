"""The paper's Table 3 and Figure 12 at the quick scale, end to end."""

import glob
import json
import os

import pytest
from PIL import Image

from experiments import fig12, paper_numbers, table3

ROWS = ("baseline", "composite", "single_frame")  # one pretraining: fast


@pytest.fixture(scope="module")
def quick_table(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("table3"))
  return workdir, table3.build_table("quick", workdir, rows=ROWS)


def _metric_lines(workdir):
  return {
    path: len(open(path).readlines())
    for path in glob.glob(f"{workdir}/**/metrics.jsonl", recursive=True)
  }


def test_the_rows_are_the_papers_seven_variants_and_a_single_frame():
  names = [row.name for row in table3.ROWS]
  assert names[:-1] == list(paper_numbers.TABLE3)
  assert names[-1] == "single_frame"
  by_name = {row.name: row for row in table3.ROWS}
  assert by_name["baseline"].decoders is None
  assert by_name["autoencoder_conditional"].conditional_reconstruct
  assert by_name["composite_conditional"].conditional_future
  assert by_name["composite_conditional"].decoders == "composite"
  with pytest.raises(ValueError, match="Unknown Table 3 rows"):
    table3.build_table("quick", "/nonexistent", rows=("compsite",))


def test_quick_table3_sits_beside_the_paper(quick_table):
  workdir, table = quick_table
  assert [row["name"] for row in table["rows"]] == list(ROWS)
  for row in table["rows"]:
    for column in table3.COLUMNS:
      assert 0 <= row[column]["mean"] <= 100
    assert row["small"]["train_videos"] == 40 * table3.SMALL["quick"]
    assert row["full"]["train_videos"] == 160
  composite = table["rows"][1]
  assert composite["pretrained"].endswith(os.path.join("pretrain", "composite"))
  markdown = table3.to_markdown(table)
  assert "| Composite Model | " in markdown and "| 67.0 | 75.8 |" in markdown
  assert "| Single Frame (context) |" in markdown and "| 72.2 |" in markdown
  assert "at most 50%" in markdown


def test_finished_cells_are_read_back_not_retrained(quick_table):
  workdir, table = quick_table
  before = _metric_lines(workdir)
  assert len(before) == 1 + 3 * 2  # one pretraining, 3 rows x 2 columns
  again = table3.build_table("quick", workdir, rows=ROWS)
  assert _metric_lines(workdir) == before
  assert json.dumps(again["rows"]) == json.dumps(table["rows"])


def test_quick_fig12_reuses_the_composite_and_plots_beside_the_paper(
  quick_table,
):
  workdir, _ = quick_table
  pretrain_runs = glob.glob(f"{workdir}/pretrain/*")
  curves = fig12.build_curves("quick", workdir)
  assert glob.glob(f"{workdir}/pretrain/*") == pretrain_runs
  assert curves["labels_per_class"] == [1, 2] and curves["resamples"] == 2
  assert list(curves["models"]) == list(fig12.MODELS)
  for model in curves["models"].values():
    for point in model["points"]:
      assert len(point["resamples"]) == 2 and point["std"] >= 0
  path = os.path.join(workdir, "fig12.png")
  fig12.plot(curves, path)
  with Image.open(path) as image:
    assert image.size[0] > 1000
  markdown = fig12.to_markdown(curves)
  assert "| LSTM + Pretraining (Composite) |" in markdown
  assert "34.5, 45.7" in markdown  # the paper's UCF-101 curve


def test_pretraining_gain_compares_the_gap_with_both_spreads():
  def point(mean, std):
    return {"mean": mean, "std": std}

  curves = {
    "models": {
      "lstm": {"points": [point(10, 1), point(20, 4), point(30, 1)]},
      "lstm_pretrained": {"points": [point(13, 2), point(23, 1), point(29, 0)]},
    }
  }
  gains = fig12.pretraining_gain(curves)
  assert [g["gain"] for g in gains] == [3, 3, -1]
  # 3 > max(1, 2); 3 < max(4, 1); a loss never counts.
  assert [g["beyond_spread"] for g in gains] == [True, False, False]


def test_fig12_classifier_steps_trains_cells_of_their_own(quick_table):
  workdir, _ = quick_table
  curves = fig12.build_curves(
    "quick", workdir, labels=(1,), resamples=1, classifier_steps=4
  )
  assert curves["classifier_steps"] == 4
  for name in fig12.MODELS:
    cell = os.path.join(workdir, "fig12", name, "k1_s4", "r0")
    with open(os.path.join(cell, "config.json")) as f:
      assert json.load(f)["train"]["num_steps"] == 4
  assert "4 training steps per classifier" in fig12.to_markdown(curves)
  assert fig12.output_name(4) == "fig12_steps4"
  assert fig12.output_name(0) == "fig12"
  with pytest.raises(ValueError, match="classifier_steps"):
    fig12.build_curves("quick", workdir, classifier_steps=-1)

"""The paper's Table 2 and figures at the quick scale, end to end."""

import json
import os
import time

import pytest
from PIL import Image

from experiments import figures, paper_numbers, table2


@pytest.fixture(scope="module")
def quick_table(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("table2"))
  start = time.perf_counter()
  table = table2.build_table("quick", workdir)
  return workdir, table, time.perf_counter() - start


def test_quick_table2_has_every_row_beside_the_paper(quick_table):
  workdir, table, seconds = quick_table
  assert seconds < 120, f"the quick Table 2 took {seconds:.0f} s"
  names = [row["name"] for row in table["rows"]]
  assert names == [r.name for r in table2.ROWS]
  for row in table["rows"]:
    paper = paper_numbers.TABLE2.get(row["name"])
    mnist = row["mnist"]
    assert mnist["paper"] == (paper and paper["mnist_ce"])
    if row["name"] == "autoencoder":
      assert mnist["ce"] is None and mnist["reconstruct_ce"]["mean"] > 0
    else:
      assert 0 < mnist["ce"]["mean"] < 2000
    if paper:  # the paper's four rows also run on image patches
      assert row["patches"]["paper"] == paper["patches_se"]
      assert row["patches"]["se"]["mean"] > 0
    else:
      assert "patches" not in row
  markdown = table2.to_markdown(table)
  assert "| Composite Model | 344.9 |" in markdown
  assert "stand-in" in markdown


def test_finished_cells_are_read_back_not_retrained(quick_table):
  workdir, table, _ = quick_table
  start = time.perf_counter()
  again = table2.build_table("quick", workdir)
  assert time.perf_counter() - start < 30
  assert json.dumps(again["rows"]) == json.dumps(table["rows"])


def test_figures_are_written(quick_table):
  workdir, _, _ = quick_table
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

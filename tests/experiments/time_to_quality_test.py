"""The time-to-quality command: recipes under one wall-clock budget, curves
against training minutes, the test set read for one recipe only."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from experiments import time_to_quality as ttq
from lstm_unsup.run import metrics_io

ROOT = Path(__file__).resolve().parents[2]
MINUTES = 0.02  # 1.2 s of training per recipe at the quick scale


def _run(workdir, *args):
  return subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.time_to_quality",
      "--scale=quick",
      f"--minutes={MINUTES}",
      f"--workdir={workdir}",
      *args,
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("ttq")
  done = _run(workdir, "--recipes=constant,cosine", "--test=cosine")
  assert done.returncode == 0, done.stderr[-3000:]
  with open(workdir / f"time_to_quality_{MINUTES:g}min.json") as f:
    return workdir, json.load(f), done


def test_each_recipe_trains_until_the_budget_ends_it(sweep):
  _, data, _ = sweep
  assert [r["name"] for r in data["recipes"]] == ["constant", "cosine"]
  for row in data["recipes"]:
    # The quick config stops at 8 steps; here only the clock stops a run.
    assert row["steps"] > 8
    assert row["train_minutes"] >= MINUTES
    minutes = [point[0] for point in row["curve"]]
    steps = [point[1] for point in row["curve"]]
    assert len(row["curve"]) >= 2 and minutes == sorted(minutes)
    assert steps[-1] == row["steps"]
    assert row["curve"][-1][2] == row["valid_future_ce"]


def test_a_budget_sized_schedule_decays_over_the_timed_steps(sweep):
  workdir, data, _ = sweep
  with open(workdir / f"{MINUTES:g}min" / "plan.json") as f:
    plan = json.load(f)
  constant, cosine = data["recipes"]
  assert cosine["decay_steps"] == plan["cosine"]["steps"] > 0
  assert cosine["planned_steps"] == plan["cosine"]["steps"]
  assert constant["decay_steps"] == 0


def test_the_test_set_is_read_for_the_named_recipe_only(sweep):
  workdir, data, _ = sweep
  constant, cosine = data["recipes"]
  assert constant["test"] is None and cosine["test"]["future_ce"] > 0
  for row in data["recipes"]:
    splits = {r["split"] for r in metrics_io.read_metrics(row["workdir"])}
    assert ("test" in splits) == (row["name"] == "cosine")


def test_writes_the_table_and_the_curves(sweep):
  workdir, data, done = sweep
  stem = f"time_to_quality_{MINUTES:g}min"
  markdown = (workdir / f"{stem}.md").read_text()
  assert markdown == ttq.to_markdown(data) in done.stdout
  assert "| cosine |" in markdown and "not read" in markdown
  with Image.open(workdir / f"{stem}.png") as image:
    assert image.format == "PNG" and image.size[0] >= 600


def test_a_rerun_reads_finished_runs_back(sweep):
  workdir, data, _ = sweep
  again = _run(workdir, "--recipes=constant,cosine", "--test=cosine")
  assert again.returncode == 0, again.stderr[-3000:]
  with open(workdir / f"time_to_quality_{MINUTES:g}min.json") as f:
    reread = json.load(f)
  for before, after in zip(data["recipes"], reread["recipes"], strict=True):
    assert after["steps"] == before["steps"]
    assert after["valid_future_ce"] == before["valid_future_ce"]


def test_recipe_configs():
  config = ttq.recipe_config("cosine_2e-3", 15, 2400)
  assert config.train.num_steps == config.optim.decay_steps == 2400
  assert config.optim.warmup_steps == 200
  assert config.optim.learning_rate == 2e-3
  assert config.train.train_seconds == 900
  assert config.train.eval_every_steps == 300
  assert not config.eval.final_test
  short = ttq.recipe_config("cosine", 0.1, 400)
  assert short.optim.warmup_steps == 80  # a fifth of a short schedule
  constant = ttq.recipe_config("constant", 15, 2400)
  assert constant.optim.decay_steps == 0
  assert constant.train.num_steps > 2400  # only the budget stops it
  wide = ttq.recipe_config("2x512", 15, 2400)
  assert (wide.model.num_layers, wide.model.hidden) == (2, 512)
  # Every recipe names its size: it stays put when the cpu default moves.
  for name, (_, changes) in ttq.RECIPES.items():
    if name != "cpu":
      assert {"model.hidden", "model.num_layers"} <= set(changes), name
  narrow = ttq.recipe_config("cosine", 15, 2400)
  assert (narrow.model.num_layers, narrow.model.hidden) == (1, 1024)
  tiny = ttq.recipe_config("2x512", 15, 2400, scale="quick")
  assert tiny.model.hidden == 32 and tiny.optim.decay_steps == 2400
  cpu = ttq.recipe_config("cpu", 60, 18_000)  # as configured: its own steps
  assert cpu.train.num_steps == 25_000 and cpu.optim.decay_steps == -1
  noclip = ttq.recipe_config("cpu_noclip", 60, 18_000)
  assert noclip.optim.clip_norm == 1e9 and cpu.optim.clip_norm == 1.0
  noclip.optim.clip_norm = cpu.optim.clip_norm  # its one change from :cpu
  assert noclip.to_dict() == cpu.to_dict()
  assert cpu.train.eval_every_steps == 2_250  # 18,000 / 8, in fifties
  with pytest.raises(ValueError, match="Unknown recipe 'nope'"):
    ttq.recipe_config("nope", 15, 2400)


def test_bad_arguments_are_one_line(tmp_path):
  done = _run(tmp_path, "--recipes=constant", "--test=cosine")
  assert done.returncode == 1
  assert (
    done.stderr.strip()
    .splitlines()[-1]
    .endswith("--test=cosine is not among --recipes.")
  )
  assert "Traceback" not in done.stderr
  assert not os.listdir(tmp_path)


def test_step_rates_only_times_the_recipes_and_trains_nothing(tmp_path):
  done = _run(tmp_path, "--recipes=constant,2x512", "--step_rates_only")
  assert done.returncode == 0, done.stderr[-3000:]
  with open(tmp_path / "time_to_quality_step_rates.json") as f:
    data = json.load(f)
  assert [r["name"] for r in data["rates"]] == ["constant", "2x512"]
  for row in data["rates"]:
    assert row["steps_per_sec"] > 0
    # steps/s is rounded to 3 decimals in the file: the floor may move by 1.
    budget = row["steps_per_sec"] * 60 * MINUTES
    assert abs(row["steps_in_budget"] - budget) <= 1
  assert "| 2x512 | 2 x 512, cosine" in done.stdout
  assert sorted(os.listdir(tmp_path)) == [
    "time_to_quality_step_rates.json",
    "time_to_quality_step_rates.md",
  ]

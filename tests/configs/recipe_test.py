"""docs/recipe.md is the source of `:paper` and `:paper_2015`: every value
in its table is the config's, and every Table 2 config at those scales
trains with the authors' recipe."""

import ast
import importlib
import os
import re

import pytest

from lstm_unsup.configs import default
from lstm_unsup.optim import optimizers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
TABLE2_CONFIGS = (
  "future",
  "composite",
  "future_conditional",
  "composite_conditional",
  "patches",
)
SCALE_COLUMNS = {"paper": 3, "paper_2015": 4}


def recipe_rows() -> list[tuple[str, str, str]]:
  """(field, `:paper` value, `:paper_2015` value) of each table row that
  names a field, in the page's order."""
  with open(os.path.join(ROOT, "docs", "recipe.md")) as f:
    text = f.read()
  table = text.split("## Setting, source and value", 1)[1]
  table = table.split("\n## ", 1)[0]
  rows = []
  for line in table.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 5 or not cells[2].startswith("`"):
      continue
    field = re.fullmatch(r"`([^`]+)`", cells[2])
    assert field, f"the field cell {cells[2]!r} is one backticked name"
    rows.append((field.group(1), cells[3], cells[4]))
  return rows


def value_of(config_name: str, scale: str, field: str):
  """A recipe field of a config at a scale; `patches: F` reads the patches
  config, `optimizers.LOSS_REDUCTIONS[optim.name]` the loss's reduction."""
  if field.startswith("patches: "):
    config_name, field = "patches", field.removeprefix("patches: ")
  config = importlib.import_module(f"lstm_unsup.configs.{config_name}")
  config = config.get_config(scale)
  if field == "optimizers.LOSS_REDUCTIONS[optim.name]":
    return optimizers.LOSS_REDUCTIONS[config.optim.name]
  group, name = field.split(".")
  return config[group][name]


def test_the_table_names_every_recipe_field():
  fields = {field for field, _, _ in recipe_rows()}
  assert set(default.RECIPE_FIELDS) <= fields
  assert len(fields) >= 25


@pytest.mark.parametrize("scale", sorted(SCALE_COLUMNS))
def test_every_value_of_the_recipe_page_is_the_configs(scale):
  checked = 0
  for field, *values in recipe_rows():
    text = values[SCALE_COLUMNS[scale] - 3].strip("`")
    if text == "-":  # the recipe does not use this setting
      continue
    want = ast.literal_eval(text)
    # The conditional composite holds every decoder and conditioning field.
    got = value_of("composite_conditional", scale, field)
    assert got == want, f"{field} at :{scale}: config {got!r}, page {want!r}"
    checked += 1
  assert checked >= 25


@pytest.mark.parametrize("scale", sorted(SCALE_COLUMNS))
@pytest.mark.parametrize("name", TABLE2_CONFIGS)
def test_every_table2_config_trains_with_the_authors_recipe(name, scale):
  config = importlib.import_module(f"lstm_unsup.configs.{name}")
  config = config.get_config(scale)
  code = "2015" if scale == "paper_2015" else "2016"
  assert default.recipe(config) == f"authors {code}"
  conditional = config.model.conditional_future
  assert conditional == name.endswith("_conditional")
  # Where a decoder is conditional, both are (the 2-layer configs' L10-11).
  if conditional and config.model.decoders == "composite":
    assert config.model.conditional_reconstruct


def test_our_recipe_is_one_switch_away():
  paper_adam = default.get_config("paper_adam")
  paper = default.get_config("paper")
  assert default.recipe(paper_adam) == "ours (Adam 1e-3, constant rate)"
  assert paper_adam.optim.name == "adam"
  assert paper_adam.optim.learning_rate == 1e-3
  for field in ("model.hidden", "model.num_layers", "train.batch_size"):
    group, name = field.split(".")
    assert paper_adam[group][name] == paper[group][name]
  # One field off the authors' values is no longer their recipe.
  paper.optim.learning_rate = 1e-3
  assert default.recipe(paper) == "custom (paper)"
  cpu = default.get_config("cpu")
  assert default.recipe(cpu) == (
    "ours (Adam 1e-3, warm-up 200, cosine to step 25,000)"
  )
  cpu.train.num_steps = 4_000  # a shorter run decays over its own steps
  assert default.schedule(cpu) == "warm-up 200, cosine to step 4,000"


def test_the_recipe_names_adams_rate_and_schedule():
  config = default.get_config("quick")
  assert default.recipe(config) == "ours (Adam 1e-3, constant rate)"
  config.optim.learning_rate, config.optim.warmup_steps = 2.5e-4, 200
  config.optim.decay_steps, config.train.num_steps = -1, 12_000
  assert default.recipe(config) == (
    "ours (Adam 2.5e-4, warm-up 200, cosine to step 12,000)"
  )
  config.optim.decay_steps = 5_000  # a fixed length ignores num_steps
  assert default.schedule(config) == "warm-up 200, cosine to step 5,000"
  assert default.rate(0.01) == "1e-2" and default.rate(3e-3) == "3e-3"

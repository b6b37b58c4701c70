"""Time to quality on this machine: validation future cross entropy against
minutes of training, one line per recipe, each under the same budget.

  python -m experiments.time_to_quality --minutes=15 \
      --recipes=constant,cosine,cosine_2e-3,2x512 \
      [--workdir=runs/time_to_quality]
  python -m experiments.time_to_quality --minutes=60 --recipes=cpu --test=cpu

Each recipe is `composite.py:cpu` with the changes RECIPES lists ("cpu":
none, so its own 25,000 steps and its cosine over them), trained
under `train.train_seconds` = --minutes x 60 (the clock counts training
steps only: not the first step, which compiles, nor evaluations). A recipe
whose schedule decays "to the budget's end" has its cosine sized to the steps
this machine reaches in the budget: the command first times its step (about
20 s) and sets `optim.decay_steps` and `train.num_steps` to steps/s x budget.
About eight validation evaluations draw each curve.

Recipes are chosen on validation only: the test set (1,000 sequences) is
read for --test alone (`eval.final_test`), once. Each recipe trains in
`<workdir>/<minutes>min/<recipe>`; rerunning the command resumes an
interrupted run and reads finished ones back. Writes
`<workdir>/time_to_quality_<minutes>min.{json,md,png}`: the table (steps/s,
steps reached, validation future cross entropy at the end and what it gained
over the first recipe, the tested recipe's test score) and the curves.
--step_rates_only times each recipe's step and trains nothing: it writes
`<workdir>/time_to_quality_step_rates.{json,md}` (steps/s, the steps a
budget of --minutes buys), which rules out a lever that slows the step
before any training is spent on it.

docs/time_to_quality.md publishes the sweep and its confirmation.
"""

import json
import os
import time

import matplotlib
import numpy as np
from absl import flags

from experiments import results
from lstm_unsup import (
  cli,
  files,
  hardware,
  input_pipeline,
  models,
  training_step,
)
from lstm_unsup.configs import composite, default
from lstm_unsup.run import metrics_io

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Marks a recipe's schedule (and step count) as sized to the budget.
BUDGET = "budget"
# Marks a step count that only the budget ends.
UNBOUNDED = "unbounded"
# name: (what it is, overrides of composite.py:cpu). Each names its size,
# so that a recipe stays the same when the cpu default changes. "cosine" is
# the schedule: linear warm-up over 200 steps, then a cosine to zero.
_COSINE = {"optim.warmup_steps": 200, "optim.decay_steps": BUDGET}
_CONSTANT = {
  "optim.warmup_steps": 0,
  "optim.decay_steps": 0,
  "train.num_steps": UNBOUNDED,
}


def _size(layers: int, hidden: int) -> dict:
  return {"model.num_layers": layers, "model.hidden": hidden}


# composite.py:cpu's own steps and schedule, named so that a variant of it
# stays the same when the cpu default changes.
_CPU = {
  **_size(2, 512),
  "train.num_steps": 25_000,
  "optim.warmup_steps": 200,
  "optim.decay_steps": -1,
}

RECIPES = {
  "cpu": ("composite.py:cpu as configured (its own steps and schedule)", {}),
  "cpu_noclip": (
    "2 x 512, 25,000 steps, warm-up 200, cosine (composite.py:cpu), no "
    "gradient clipping (clip_norm 1e9)",
    {**_CPU, "optim.clip_norm": 1e9},
  ),
  "constant": (
    "1 x 1024, Adam 1e-3 at a constant rate (the cpu recipe before)",
    {**_size(1, 1024), **_CONSTANT},
  ),
  "cosine": (
    "1 x 1024, warm-up 200, cosine to the budget's end, peak 1e-3",
    {**_size(1, 1024), **_COSINE},
  ),
  "cosine_2e-3": (
    "1 x 1024, cosine, peak 2e-3",
    {**_size(1, 1024), **_COSINE, "optim.learning_rate": 2e-3},
  ),
  "cosine_5e-4": (
    "1 x 1024, cosine, peak 5e-4",
    {**_size(1, 1024), **_COSINE, "optim.learning_rate": 5e-4},
  ),
  "cosine_noclip": (
    "1 x 1024, cosine, peak 1e-3, no gradient clipping (clip_norm 1e9)",
    {**_size(1, 1024), **_COSINE, "optim.clip_norm": 1e9},
  ),
  "1x1536": ("1 x 1536, cosine, peak 1e-3", {**_size(1, 1536), **_COSINE}),
  "1x2048": ("1 x 2048, cosine, peak 1e-3", {**_size(1, 2048), **_COSINE}),
  "2x512": ("2 x 512, cosine, peak 1e-3", {**_size(2, 512), **_COSINE}),
  "2x768": ("2 x 768, cosine, peak 1e-3", {**_size(2, 768), **_COSINE}),
  "3x512": ("3 x 512, cosine, peak 1e-3", {**_size(3, 512), **_COSINE}),
  "2x512_batch32": (
    "2 x 512, batch 32, cosine, peak 1e-3",
    {**_size(2, 512), **_COSINE, "train.batch_size": 32},
  ),
  "2x512_bf16": (
    "2 x 512, bfloat16 matmul inputs, cosine, peak 1e-3",
    {**_size(2, 512), **_COSINE, "model.matmul_dtype": "bfloat16"},
  ),
  "2x512_noclip": (
    "2 x 512, cosine, peak 1e-3, no gradient clipping (clip_norm 1e9)",
    {**_size(2, 512), **_COSINE, "optim.clip_norm": 1e9},
  ),
  "2x512_copy": (
    "2 x 512, the copy hand-off, cosine, peak 1e-3",
    {**_size(2, 512), **_COSINE, "model.handoff": "copy"},
  ),
}
EVALUATIONS = 8  # validation points per curve
GOAL = 410  # issue 38: test future cross entropy within 60 minutes
CALIBRATION_SECONDS = {"cpu": 15.0, "quick": 1.0}  # timing a recipe's step


def recipe_config(
  name: str, minutes: float, steps: int, test=False, scale="cpu"
):
  """composite.py:`scale` with recipe `name` under a budget of `minutes`,
  planned for `steps` (what the machine reaches in the budget): a schedule
  sized to the budget ends there, and the evaluations spread over them.
  Other recipes may run past `steps`: only the budget stops them.
  `scale="quick"` puts the changes but the size on the tiny model (tests)."""
  if name not in RECIPES:
    raise ValueError(
      f"Unknown recipe {name!r}; choose from {', '.join(RECIPES)}."
    )
  if minutes <= 0:
    raise ValueError(f"--minutes must be positive, got {minutes}.")
  steps = max(int(steps), 10)
  config = composite.get_config(scale)
  for dotted, value in RECIPES[name][1].items():
    if scale == "quick" and dotted in _size(0, 0):
      continue  # tests: the tiny model takes the rest of the changes
    group, field = dotted.split(".")
    if value == BUDGET:
      value = config.train.num_steps = steps
    elif value == UNBOUNDED:
      value = 100 * steps
    config[group][field] = value
  o = config.optim
  decay = default.decay_steps(config)
  if decay:  # a short schedule warms up over its first fifth at most
    o.warmup_steps = min(o.warmup_steps, decay // 5)
  config.train.train_seconds = 60.0 * minutes
  config.train.log_every_steps = 50
  steps = min(steps, config.train.num_steps)
  every = max(50, 50 * round(steps / EVALUATIONS / 50))
  config.train.eval_every_steps = config.train.checkpoint_every_steps = every
  config.eval.final_test = test
  return config


def steps_per_second(config, seconds: float = 15.0) -> float:
  """This machine's training steps per second for `config`, data included:
  a few steps to compile and warm up, then as many as `seconds` allows."""
  mesh = training_step.make_mesh(config.train.num_devices)
  model = models.build_model(config.model)
  source = input_pipeline.load_train_source(config)
  batch = input_pipeline.train_batch(config, source, 0)
  state = training_step.create_train_state(config, model, *batch, mesh)
  step_fn = training_step.make_train_step(config, model, mesh)
  size = config.train.batch_size

  def step(state, index):
    batch = input_pipeline.train_batch(config, source, index)
    state, metrics = step_fn(
      state, *training_step.shard_batch(mesh, *batch, batch_size=size)
    )
    return state, metrics

  for index in range(1, 4):
    state, metrics = step(state, index)
  metrics["loss"].block_until_ready()
  began, index = time.perf_counter(), 4
  while time.perf_counter() - began < seconds:
    state, metrics = step(state, index)
    metrics["loss"].block_until_ready()
    index += 1
  return (index - 4) / (time.perf_counter() - began)


def planned_steps(name, minutes: float, workdir: str, scale="cpu") -> dict:
  """{"steps", "steps_per_sec"}: the steps this machine reaches in the
  budget, by timing the recipe's step, kept in `<workdir>/plan.json` so that
  a resumed run keeps its schedule and its evaluations."""
  path = os.path.join(workdir, "plan.json")
  plans = {}
  if os.path.exists(path):
    with open(path) as f:
      plans = json.load(f)
  if name not in plans:
    config = recipe_config(name, minutes, 1000, scale=scale)
    rate = steps_per_second(config, CALIBRATION_SECONDS[scale])
    plans[name] = {"steps": int(rate * 60.0 * minutes), "steps_per_sec": rate}
    os.makedirs(workdir, exist_ok=True)
    files.write_atomically(path, json.dumps(plans, indent=2) + "\n")
  return plans[name]


def train_recipe(name, minutes: float, workdir: str, test: bool, scale="cpu"):
  """Trains (or reads back) one recipe; returns its row of the table."""
  from lstm_unsup import train  # noqa: PLC0415 (heavy; not for --help)

  sweep = os.path.join(workdir, f"{minutes:g}min")
  run_dir = os.path.join(sweep, name)
  plan = planned_steps(name, minutes, sweep, scale)
  config = recipe_config(name, minutes, plan["steps"], test, scale)
  done = train.train_and_evaluate(config, run_dir)
  records = metrics_io.read_metrics(run_dir)
  curve = [
    [
      round(train.trained_seconds(records, r["step"]) / 60.0, 3),
      r["step"],
      r["future_ce"],
    ]
    for r in records
    if r["split"] == "valid"
  ]
  last = done["steps"]
  trained = done["train_seconds"]  # the budget's clock at the last step
  return {
    "name": name,
    "changes": RECIPES[name][0],
    "hidden": config.model.hidden,
    "num_layers": config.model.num_layers,
    "batch_size": config.train.batch_size,
    "learning_rate": config.optim.learning_rate,
    "decay_steps": config.optim.decay_steps,
    "planned_steps": plan["steps"],
    "timed_steps_per_sec": round(plan["steps_per_sec"], 3),
    "steps": last,
    "train_minutes": round(trained / 60.0, 2),
    "steps_per_sec": round(last / max(trained, 1e-9), 3),
    "curve": curve,
    "valid_future_ce": done["valid"]["future_ce"],
    "valid_sequences": done["valid"]["num_sequences"],
    "valid_reconstruct_ce": done["valid"].get("reconstruct_ce"),
    "test": done["test"] or None,
    "workdir": run_dir,
  }


def machine() -> dict:
  """The CPU that ran, and whether it has native bfloat16 instructions."""
  info = hardware.cpu()
  return {
    "cpu": info.model,
    "cores": info.cores,
    "native_bf16": info.native_bf16,
  }


def step_rates_markdown(data: dict) -> str:
  rows = data["rates"]
  first = rows[0]["steps_per_sec"] if rows else 1.0
  lines = [
    f"Training steps per second of each recipe on {data['machine']['cpu']} "
    f"({data['machine']['cores']} cores; native bfloat16 instructions: "
    f"{', '.join(data['machine']['native_bf16']) or 'none'}), data "
    f"included, and the steps {data['minutes']:g} minutes buy.",
    "",
    f"| recipe | changes | steps/s | vs {rows[0]['name'] if rows else '-'} "
    "| steps in the budget |",
    "|---|---|---|---|---|",
  ]
  for r in rows:
    lines.append(
      f"| {r['name']} | {r['changes']} | {r['steps_per_sec']:.2f} | "
      f"{r['steps_per_sec'] / first:.2f}x | {r['steps_in_budget']:,} |"
    )
  return "\n".join(lines) + "\n"


def to_markdown(data: dict) -> str:
  if data.get("kind") == "step_rates":
    return step_rates_markdown(data)
  rows = data["recipes"]
  first = rows[0]["valid_future_ce"] if rows else 0.0
  lines = [
    f"Budget {data['minutes']:g} minutes of training per recipe on "
    f"{data['machine']['cpu']} ({data['machine']['cores']} cores). Each "
    f"recipe: the composite model of `composite.py:{data['scale']}` (its "
    "data and initialisation; batch 16 unless the row says) at the row's size "
    "and schedule; "
    "validation future cross entropy in nats/frame "
    f"({data['valid_sequences']:,} sequences) at the run's end (its last "
    "step, or the budget's end).",
    "",
    "| recipe | what it is | steps/s | steps | valid future CE | vs "
    f"{rows[0]['name'] if rows else '-'} | test future CE |",
    "|---|---|---|---|---|---|---|",
  ]
  for r in rows:
    test = r["test"]["future_ce"] if r.get("test") else None
    lines.append(
      f"| {r['name']} | {r['changes']} | {r['steps_per_sec']:.2f} | "
      f"{r['steps']:,} | {r['valid_future_ce']:.1f} | "
      f"{r['valid_future_ce'] - first:+.1f} | "
      + (f"**{test:.1f}** |" if test is not None else "not read |")
    )
  lines += ["", *data["notes"]] if data.get("notes") else []
  return "\n".join(lines) + "\n"


def plot(data: dict, path: str) -> None:
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for r in data["recipes"]:
    curve = np.asarray(r["curve"], dtype=float).reshape(-1, 3)
    ax.plot(curve[:, 0], curve[:, 2], marker="o", ms=3, label=r["name"])
  ax.axhline(GOAL, color="grey", ls="--", lw=0.8, label=f"goal: {GOAL}")
  ax.set_xlabel("training minutes (evaluations not counted)")
  ax.set_ylabel("validation future cross entropy (nats/frame)")
  ax.set_title(
    f"Time to quality, {data['minutes']:g}-minute budget, "
    f"{data['machine']['cores']} CPU cores"
  )
  values = [p[2] for r in data["recipes"] for p in r["curve"]]
  if values:
    low = min(min(values), GOAL)  # the goal's line stays in view
    ax.set_ylim(low - 5, min(max(values), low + 120) + 5)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


FLAGS = flags.FLAGS


def main(argv):
  del argv
  names = list(FLAGS.recipes)
  for name in names + ([FLAGS.test] if FLAGS.test else []):
    if name not in RECIPES:
      raise ValueError(
        f"Unknown recipe {name!r}; choose from {', '.join(RECIPES)}."
      )
  if FLAGS.test and FLAGS.test not in names:
    raise ValueError(f"--test={FLAGS.test} is not among --recipes.")
  if FLAGS.minutes <= 0:
    raise ValueError(f"--minutes must be positive, got {FLAGS.minutes}.")
  if FLAGS.step_rates_only:
    rows = []
    for name in names:
      config = recipe_config(name, FLAGS.minutes, 1000, scale=FLAGS.scale)
      rate = steps_per_second(config, CALIBRATION_SECONDS[FLAGS.scale])
      rows.append(
        {
          "name": name,
          "changes": RECIPES[name][0],
          "steps_per_sec": round(rate, 3),
          "steps_in_budget": int(rate * 60 * FLAGS.minutes),
        }
      )
    data = {
      "kind": "step_rates",
      "minutes": FLAGS.minutes,
      "machine": machine(),
      "scale": FLAGS.scale,
      "rates": rows,
    }
    stem = "time_to_quality_step_rates"
    results.write(FLAGS.workdir, stem, data, "experiments.time_to_quality")
    return
  data = {
    "minutes": FLAGS.minutes,
    "machine": machine(),
    "scale": FLAGS.scale,
    "recipes": [],
  }
  for name in names:
    data["recipes"].append(
      train_recipe(
        name, FLAGS.minutes, FLAGS.workdir, name == FLAGS.test, FLAGS.scale
      )
    )
  data["valid_sequences"] = data["recipes"][0]["valid_sequences"]
  stem = f"time_to_quality_{FLAGS.minutes:g}min"
  plot(data, os.path.join(FLAGS.workdir, f"{stem}.png"))
  results.write(FLAGS.workdir, stem, data, "experiments.time_to_quality")


if __name__ == "__main__":
  flags.DEFINE_list("recipes", ["constant", "cosine"], "Recipes, in order.")
  flags.DEFINE_float("minutes", 15.0, "Training budget per recipe, minutes.")
  flags.DEFINE_string("test", "", "The one recipe whose test set is read.")
  flags.DEFINE_string("workdir", "runs/time_to_quality", "Runs and results.")
  flags.DEFINE_enum("scale", "cpu", ["cpu", "quick"], "quick: for tests.")
  flags.DEFINE_bool("step_rates_only", False, "Time steps; train nothing.")
  cli.run_main(main, checks=(ValueError,))

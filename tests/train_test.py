"""End-to-end tests of the trainer: files, resume, golden values, sharding."""

import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from lstm_unsup import (
  config_lib,
  guards,
  input_pipeline,
  models,
  train,
  training_step,
)
from lstm_unsup.configs import composite, default, future_conditional
from lstm_unsup.run import checkpoints, folder, metrics_io


def _quick(tmp_path, get_config=composite.get_config):
  config = get_config("quick")
  config.data.data_dir = str(tmp_path / "data")
  config.data.source = "offline"
  return config


def test_quick_run_writes_everything_then_resumes(tmp_path):
  config = _quick(tmp_path)
  workdir = str(tmp_path / "run")
  result = train.train_and_evaluate(config, workdir)
  assert json.load(open(os.path.join(workdir, "config.json")))["seed"] == 0
  records = metrics_io.read_metrics(workdir)
  splits = [(r["split"], r["step"]) for r in records]
  assert splits == [
    ("train", 4),
    ("valid", 4),
    ("train", 8),
    ("valid", 8),
    ("test", 8),
  ]
  train_record = records[0]
  assert {"loss", "reconstruct", "future", "steps_per_sec"} <= set(train_record)
  assert result["test"]["conditioning"] == {
    "reconstruct": "unconditioned",
    "future": "unconditioned",
  }
  assert len(result["test"]["future_ce_per_frame"]) == config.model.num_future
  assert os.path.exists(os.path.join(workdir, "figures", "step_0000008.png"))
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "8"]
  assert os.listdir(os.path.join(workdir, "tensorboard"))

  # The same command with more steps resumes from step 8.
  config.train.num_steps = 12
  train.train_and_evaluate(config, workdir)
  steps = [
    r["step"] for r in metrics_io.read_metrics(workdir) if r["split"] == "train"
  ]
  assert steps == [4, 8, 12]


def test_resumed_run_equals_uninterrupted_run(quick_run, tmp_path):
  config = _quick(tmp_path)
  train.train_and_evaluate(config, str(tmp_path / "straight"))
  # Determinism: two runs of one seed and config, every value the same.
  assert _timeless(str(tmp_path / "straight")) == _timeless(quick_run[1])
  jax.tree.map(
    np.testing.assert_array_equal,
    checkpoints.restore_state(quick_run[1]),
    checkpoints.restore_state(str(tmp_path / "straight")),
  )
  config.train.num_steps = 4
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  config.train.num_steps = 8
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  a = checkpoints.restore_params(str(tmp_path / "straight"))
  b = checkpoints.restore_params(str(tmp_path / "resumed"))
  jax.tree.map(np.testing.assert_array_equal, a, b)

  def records(name):  # what both runs log while training (not timings)
    return [
      {k: v for k, v in r.items() if k != "steps_per_sec"}
      for r in metrics_io.read_metrics(str(tmp_path / name))
      if r["split"] in ("train", "valid")
    ]

  assert records("straight") == records("resumed")


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
  tmp_path, monkeypatch
):
  config = _quick(tmp_path)
  config.train.checkpoint_every_steps = 2
  real = input_pipeline.train_batch

  def poisoned(config, digits, step, rows=None):
    inputs, future = real(config, digits, step, rows)
    if step == 5:
      inputs = inputs * np.nan
    return inputs, future

  monkeypatch.setattr(input_pipeline, "train_batch", poisoned)
  workdir = str(tmp_path / "run")
  with pytest.raises(FloatingPointError, match=r"step 5.*checkpoint is step 4"):
    train.train_and_evaluate(config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]


def test_refuses_to_resume_a_workdir_of_another_config(tmp_path):
  config = _quick(tmp_path)
  config.train.num_steps = 4
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  config.model.hidden = 16
  with pytest.raises(ValueError, match="model.hidden: 32 -> 16"):
    train.train_and_evaluate(config, workdir)


@pytest.mark.parametrize(
  "field, value, match",
  [
    ("model.hidden", 0, "config.model.hidden must be >= 1"),
    ("model.num_future", 0, "num_future is 0 but the future decoder"),
    ("model.decoders", "both", "config.model.decoders='both'"),
    ("data.image_size", 20, "config.data.image_size=20 is smaller"),
    ("train.batch_size", -1, "config.train.batch_size must be >= 1"),
    ("optim.learning_rate", 0.0, "config.optim.learning_rate must be > 0"),
    ("optim.learning_rate", float("inf"), "learning_rate must be > 0 and fin"),
    ("model.hidden", True, "config.model.hidden must be of type int"),
    ("data.step_length", -0.5, r"config.data.step_length must be in \[0, 1\]"),
    ("eval.mnist_test_seq", "x.npy", "does not match config.data.image_size"),
  ],
)
def test_bad_config_values_name_the_field(tmp_path, field, value, match):
  config = _quick(tmp_path)
  group, key = field.split(".")
  config[group][key] = value
  with pytest.raises(ValueError, match=match):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")  # nothing computed or written


def test_conditional_decoder_of_length_zero_is_refused(tmp_path):
  config = _quick(tmp_path, future_conditional.get_config)
  config.model.num_future = 0
  with pytest.raises(ValueError, match="conditional future decoder"):
    config_lib.validate(config)


def test_unknown_field_in_a_config_dict_is_named():
  values = composite.get_config("quick").to_dict()
  values["model"]["hiden"] = 3
  with pytest.raises(ValueError, match="config.model.hiden"):
    config_lib.from_dict(values)


@pytest.mark.parametrize(
  "override, message",
  [
    ("--config.model.hiden=3", 'unknown field hiden Did you mean "hidden"'),
    ("--config.model.hidden=-5", "config.model.hidden must be >= 1; got -5."),
  ],
)
def test_command_line_reports_a_bad_config_in_one_line(
  tmp_path, override, message
):
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "lstm_unsup.main",
      "--config=lstm_unsup/configs/composite.py:quick",
      f"--workdir={tmp_path / 'run'}",
      override,
    ],
    cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode != 0
  assert message in proc.stderr.splitlines()[-1]
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "run").exists()


def test_records_past_the_last_checkpoint_are_dropped_on_resume(tmp_path):
  # A run killed before its first checkpoint left a record behind.
  config = _quick(tmp_path)
  config.train.num_steps = 4
  workdir = str(tmp_path / "run")
  metrics_io.MetricWriter(workdir).write(2, "train", {"loss": -1.0})
  train.train_and_evaluate(config, workdir)
  records = metrics_io.read_metrics(workdir)
  assert [(r["split"], r["step"]) for r in records] == [
    ("train", 4),
    ("valid", 4),
    ("test", 4),
  ]


def test_resumes_a_run_made_before_a_config_field_was_added(tmp_path):
  config = _quick(tmp_path)
  config.train.num_steps = 4
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  path = os.path.join(workdir, "config.json")
  values = json.load(open(path))
  del values["data"]["patch_source"]  # as written by an older version
  json.dump(values, open(path, "w"))
  config.train.num_steps = 8
  train.train_and_evaluate(config, workdir)
  steps = [
    r["step"] for r in metrics_io.read_metrics(workdir) if r["split"] == "train"
  ]
  assert steps == [4, 8]


def _timeless(workdir):  # every record, but the timings
  return [
    {k: v for k, v in r.items() if k != "steps_per_sec"}
    for r in metrics_io.read_metrics(workdir)
  ]


def test_sigterm_saves_a_checkpoint_then_stops_and_resumes_exactly(
  quick_run, tmp_path, monkeypatch
):
  signum = signal.SIGTERM
  config = _quick(tmp_path)  # the quick run's config: checkpoints at 4, 8
  real = input_pipeline.train_batch

  def signalled(config, digits, step, rows=None):
    if step == 6:
      os.kill(os.getpid(), signum)  # handled while step 6 is prepared
    return real(config, digits, step, rows)

  monkeypatch.setattr(input_pipeline, "train_batch", signalled)
  workdir = str(tmp_path / "run")
  handler = signal.getsignal(signum)
  with pytest.raises(train.Interrupted, match=f"{signum.name} at step 6"):
    train.train_and_evaluate(config, workdir)
  assert signal.getsignal(signum) is handler  # restored
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "6"]
  monkeypatch.undo()  # rerun: the same bits as a run never stopped
  train.train_and_evaluate(config, workdir)
  assert _timeless(workdir) == _timeless(quick_run[1])
  jax.tree.map(
    np.testing.assert_array_equal,
    checkpoints.restore_state(quick_run[1]),
    checkpoints.restore_state(workdir),
  )


def test_skip_nonfinite_leaves_the_state_of_a_bad_step_unchanged(tmp_path):
  config = _quick(tmp_path)
  config.train.skip_nonfinite = True
  mesh = training_step.make_mesh()
  model = models.build_model(config.model)
  digits = input_pipeline.load_train_digits(config)
  inputs, future = input_pipeline.train_batch(config, digits, 1)
  state = training_step.create_train_state(config, model, inputs, future, mesh)
  before = jax.tree.map(np.array, (state.params, state.opt_state))
  step = training_step.make_train_step(config, model, mesh)
  state, metrics = step(
    state, *training_step.shard_batch(mesh, inputs * np.nan, future)
  )
  assert np.isnan(metrics["loss"]) and int(state.step) == 1
  after = jax.tree.map(np.array, (state.params, state.opt_state))
  jax.tree.map(np.testing.assert_array_equal, before, after)
  state, metrics = step(state, *training_step.shard_batch(mesh, inputs, future))
  assert np.isfinite(metrics["loss"])
  w = state.params["encoder"]["layer_0"]["w_input"]
  assert not np.array_equal(w, before[0]["encoder"]["layer_0"]["w_input"])


def test_skip_nonfinite_counts_skipped_steps_and_goes_on(tmp_path, caplog):
  guard = guards.FiniteGuard(
    True, folder.RunDir(str(tmp_path)).checkpoint_manager()
  )
  nan = {"loss": np.float32(np.nan), "grad_norm": np.float32(np.nan)}
  guard.check(nan, 5)
  guard.check(nan, 5)  # checked once per step
  assert (
    guard.skipped == 1 and "Step 5: the training loss is nan" in caplog.text
  )


def test_a_non_finite_gradient_is_named_with_its_step(tmp_path):
  guard = guards.FiniteGuard(
    False, folder.RunDir(str(tmp_path)).checkpoint_manager()
  )
  finite = {"loss": np.float32(3.0), "grad_norm": np.float32(1.0)}
  guard.check(finite, 6)
  with pytest.raises(
    train.NonFiniteError, match="gradient norm is inf at step 7"
  ):
    guard.check(dict(finite, grad_norm=np.float32(np.inf)), 7)


def test_progress_lines_name_the_loss_unit_of_the_data(tmp_path, caplog):
  config = _quick(tmp_path)
  config.train.num_steps = config.train.log_every_steps = 2
  config.train.eval_every_steps = 2
  default.use_patches(config)
  caplog.set_level("INFO")
  train.train_and_evaluate(config, str(tmp_path / "patches"))
  lines = [r.getMessage() for r in caplog.records if "step 2/2" in r.message]
  assert lines and "SE/frame" in lines[0] and "nats" not in lines[0]


def test_a_time_budget_ends_training_then_evaluates_and_saves(tmp_path):
  config = _quick(tmp_path)
  config.train.num_steps = 10**6
  config.train.log_every_steps = config.train.eval_every_steps = 10**6
  config.train.checkpoint_every_steps = 10**6
  config.train.train_seconds = 2.0
  workdir = str(tmp_path / "run")
  result = train.train_and_evaluate(config, workdir)
  last = result["steps"]
  assert 1 < last < 10**6 and result["train_seconds"] >= 2.0
  records = metrics_io.read_metrics(workdir)
  assert [(r["split"], r["step"]) for r in records] == [
    ("train", last),
    ("valid", last),
    ("test", last),
  ]
  assert records[0]["train_seconds"] == result["train_seconds"]
  assert os.listdir(os.path.join(workdir, "checkpoints")) == [str(last)]
  # The same command again: the budget is spent, so nothing trains.
  again = train.train_and_evaluate(config, workdir)
  assert again["steps"] == last and again["test"]["step"] == last
  assert again["test"]["future_ce"] == result["test"]["future_ce"]
  assert metrics_io.read_metrics(workdir) == records
  # A larger budget trains on from the checkpoint.
  config.train.train_seconds = 3.0
  more = train.train_and_evaluate(config, workdir)
  assert more["steps"] > last and more["train_seconds"] >= 3.0


def test_a_run_past_a_smaller_num_steps_keeps_its_own_step(tmp_path, caplog):
  config = _quick(tmp_path)
  workdir = str(tmp_path / "run")
  first = train.train_and_evaluate(config, workdir)
  records = metrics_io.read_metrics(workdir)
  config.train.num_steps = 4  # trained to 8 already
  with caplog.at_level("INFO"):
    again = train.train_and_evaluate(config, workdir)
  assert again["steps"] == 8 and again["test"]["step"] == 8
  assert again["test"]["future_ce"] == first["test"]["future_ce"]
  assert metrics_io.read_metrics(workdir) == records  # nothing labelled 4
  assert "trained to step 8" in caplog.text
  assert "steps 9..4" not in caplog.text


@pytest.mark.parametrize(
  "line",
  [
    b"garbage\n",
    b"42\n",
    b'{"step": 9}\n',
    b'{"step": "9", "split": "train"}\n',
    b'{"step": 9, "split": "tr\xff\xfein"}\n',
  ],
)
def test_a_damaged_metrics_line_stops_the_resume_naming_it(
  quick_run, tmp_path, line
):
  """Resuming rewrites metrics.jsonl (it drops the records after the
  checkpoint): a line it cannot read would be lost, so it is refused."""
  workdir = tmp_path / "run"
  shutil.copytree(quick_run[1], workdir)
  path = workdir / "metrics.jsonl"
  first, rest = path.read_bytes().split(b"\n", 1)
  path.write_bytes(first + b"\n" + line + rest)
  before = path.read_bytes()
  config = _quick(tmp_path)
  config.train.num_steps = 12
  with pytest.raises(metrics_io.MetricsError) as error:
    train.train_and_evaluate(config, str(workdir))
  assert str(error.value).startswith(f"{path}, line 2: ")
  assert "delete or mend that line" in str(error.value)
  assert path.read_bytes() == before

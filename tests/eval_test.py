"""The evaluation command and its library path (eval.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lstm_unsup import eval, train


def test_evaluate_run_matches_the_trainers_final_test_metrics(quick_run):
  config, workdir = quick_run
  result = eval.evaluate_run(workdir)
  saved = json.load(open(os.path.join(workdir, "eval_test.json")))
  assert saved["future_ce"] == result["future_ce"]
  final = [
    json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))
  ][-1]
  assert final["split"] == "test"
  np.testing.assert_allclose(result["future_ce"], final["future_ce"], rtol=1e-6)
  assert result["num_sequences"] == config.eval.num_test_sequences
  assert result["step"] == final["step"] == config.train.num_steps
  for key in (
    "future_sse",
    "future_mae",
    "future_ssim",
    "future_psnr",
    "reconstruct_ce",
  ):
    assert np.isfinite(result[key])


@pytest.mark.parametrize("command", ["lstm_unsup.eval", "lstm_unsup.features"])
def test_commands_report_a_missing_run_in_one_line(tmp_path, command):
  args = [sys.executable, "-m", command, f"--workdir={tmp_path / 'no_run'}"]
  if command == "lstm_unsup.features":
    args.append(f"--output={tmp_path / 'f.npy'}")
  done = subprocess.run(args, capture_output=True, text=True, timeout=120)
  assert done.returncode == 1
  last = done.stderr.strip().splitlines()
  assert len(last) == 1 and "Traceback" not in done.stderr, done.stderr
  assert "no_run" in last[0]
  assert not (tmp_path / "f.npy").exists()


def test_teacher_forced_evaluation_feeds_conditional_decoders_the_truth(
  tmp_path,
):
  from lstm_unsup.configs import composite_conditional

  config = composite_conditional.get_config("quick")
  config.data.data_dir = str(tmp_path / "data")
  config.data.source = "offline"
  config.train.num_steps = 2
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  free = eval.evaluate_run(workdir)
  forced = eval.evaluate_run(workdir, teacher_forced=True)
  assert free["conditioning"]["future"] == "free-running"
  assert forced["conditioning"]["future"] == "teacher-forced"
  assert forced["conditioning"]["reconstruct"] == "unconditioned"
  assert forced["future_ce"] != free["future_ce"]
  saved = os.path.join(workdir, "eval_test_teacher_forced.json")
  assert json.load(open(saved))["future_ce"] == forced["future_ce"]
  plain = json.load(open(os.path.join(workdir, "eval_test.json")))
  assert plain["future_ce"] == free["future_ce"]

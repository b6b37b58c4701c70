"""The training loop's guards (guards.py): a non-finite step stops the run
or is skipped, and SIGINT asks the loop to save and stop."""

import os
import signal

import numpy as np
import pytest

from lstm_unsup import cli, guards, train
from lstm_unsup.configs import composite
from lstm_unsup.run import checkpoints


class _Manager:
  """What the guard asks of a checkpoint manager."""

  def __init__(self):
    self.waited = 0

  def wait_until_finished(self):
    self.waited += 1

  def latest_step(self):
    return 4


def test_a_non_finite_loss_stops_naming_the_step_and_the_last_checkpoint():
  guard = guards.FiniteGuard(skip=False, mngr=_Manager())
  guard.check({"loss": 1.0, "grad_norm": 2.0}, step=5)
  with pytest.raises(guards.NonFiniteError, match="loss is nan at step 6.*4"):
    guard.check({"loss": np.nan, "grad_norm": 2.0}, step=6)


def test_skipping_counts_each_step_once():
  guard = guards.FiniteGuard(skip=True, mngr=_Manager())
  bad = {"loss": 1.0, "grad_norm": np.inf}
  guard.check(bad, step=3)
  guard.check(bad, step=3)  # the same step, checked again: not counted
  guard.check(bad, step=4)
  assert guard.skipped == 2


def test_a_signal_is_recorded_and_a_second_stops_at_once():
  before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
  with guards.stop_signals() as received:
    os.kill(os.getpid(), signal.SIGINT)
    assert received == [signal.SIGINT]
    with pytest.raises(guards.StoppedAtOnce):
      os.kill(os.getpid(), signal.SIGTERM)
  after = {s: signal.getsignal(s) for s in before}
  assert after == before  # the handlers are put back


def test_a_loss_ten_times_its_start_stops_the_run_in_one_line():
  guard = guards.FiniteGuard(skip=False, mngr=_Manager())
  guard.check({"loss": 500.0, "grad_norm": 2.0}, step=1)
  guard.check({"loss": 4000.0, "grad_norm": 2.0}, step=2)  # 8x: still going
  with pytest.raises(guards.DivergedError) as e:
    guard.check({"loss": 6e5, "grad_norm": 2.0}, step=3)
  line = cli.one_line(e.value, (), "")
  assert line.startswith("Training diverged: The training loss is 6e+05 at")
  assert "step 3" in line and "checkpoint is step 4" in line


def test_a_run_that_blows_up_stops_and_keeps_its_last_checkpoint(tmp_path):
  # The run: Adam at a rate of 1e3 exited 0 with losses near 1.2e6.
  config = composite.get_config("quick")
  config.optim.learning_rate = 1e3
  config.train.num_steps = 40
  config.train.checkpoint_every_steps = 1
  with pytest.raises(guards.DivergedError, match="at step"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  kept = int(checkpoints.restore_state(str(tmp_path / "run"))["step"])
  assert 1 <= kept < 40

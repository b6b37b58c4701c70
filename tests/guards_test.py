"""The training loop's guards (guards.py): a non-finite step stops the run
or is skipped, and SIGINT asks the loop to save and stop."""

import os
import signal

import numpy as np
import pytest

from lstm_unsup import guards


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

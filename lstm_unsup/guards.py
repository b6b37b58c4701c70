"""Guards of the training loop: non-finite steps and stop signals.

`FiniteGuard` checks each step's loss and gradient norm once and stops the
run at the first non-finite one (or counts it as skipped); `stop_signals`
turns SIGINT and SIGTERM into a request to save and stop after the step.
"""

import contextlib
import signal
import threading

import numpy as np
from absl import logging

from lstm_unsup.run import checkpoints


class NonFiniteError(FloatingPointError):
  """A step's loss or gradient, or the parameters, are not finite."""


class DivergedError(FloatingPointError):
  """The training loss grew far past where it started."""


# A finite loss this many times the run's first checked loss has diverged:
# training lowers a loss, and no run here climbs tenfold and recovers (an
# untrained composite scores about 555 nats/frame; diverged ones 6e5).
DIVERGED_FACTOR = 10.0


class Interrupted(KeyboardInterrupt):
  """SIGINT or SIGTERM stopped training after a checkpoint was saved."""

  def __init__(self, signum: int, step: int):
    self.signum, self.step = signum, step
    super().__init__(
      f"{signal.Signals(signum).name} at step {step}: saved checkpoint "
      f"{step}; rerun the same command to resume."
    )


class StoppedAtOnce(KeyboardInterrupt):
  """A second SIGINT or SIGTERM stopped training at once, saving nothing."""

  def __init__(self, signum: int):
    self.signum = signum
    super().__init__(
      f"a second {signal.Signals(signum).name}, at once: nothing was saved "
      "since the last checkpoint; rerun the same command to resume from it."
    )


class FiniteGuard:
  """Checks each step's loss and gradient norm once: stops the run at the
  first non-finite one, or counts it as skipped (config.train.skip_nonfinite:
  the jitted step then left the state unchanged)."""

  def __init__(self, skip: bool, mngr):
    self.skip, self.mngr = skip, mngr
    self.checked, self.skipped = 0, 0
    self.first_loss = None  # the first finite loss checked

  def check(self, step_metrics, step: int) -> None:
    if step <= self.checked:
      return
    self.checked = step
    self._check_finite(step_metrics, step)
    loss = float(step_metrics["loss"])
    if not np.isfinite(loss):
      return  # skipped
    if self.first_loss is None:
      self.first_loss = loss
    elif loss > DIVERGED_FACTOR * abs(self.first_loss):
      checkpoints.finish(self.mngr)
      raise DivergedError(
        f"The training loss is {loss:.4g} at step {step}, over "
        f"{DIVERGED_FACTOR:g} times the {self.first_loss:.4g} it started "
        f"at; stopping. The last good checkpoint is step "
        f"{self.mngr.latest_step()} (nothing was saved after it). Lower "
        "config.optim.learning_rate, or add config.optim.warmup_steps."
      )

  def _check_finite(self, step_metrics, step: int) -> None:
    names = {"loss": "training loss", "grad_norm": "gradient norm"}
    for key, what in names.items():
      value = float(step_metrics[key])
      if np.isfinite(value):
        continue
      if self.skip:
        self.skipped += 1
        logging.warning(
          "Step %d: the %s is %s; skipped its update "
          "(config.train.skip_nonfinite).",
          step,
          what,
          value,
        )
        return
      checkpoints.finish(self.mngr)
      raise NonFiniteError(
        f"The {what} is {value} at step {step}; stopping. The last good "
        f"checkpoint is step {self.mngr.latest_step()} (nothing was saved "
        "after it). Lower config.optim.learning_rate, set "
        "config.train.skip_nonfinite=True to skip such steps, or set "
        "JAX_DEBUG_NANS=True to find the first non-finite value."
      )


@contextlib.contextmanager
def stop_signals():
  """Yields a list that SIGINT and SIGTERM append their number to; the loop
  then saves and stops. A second signal stops at once."""
  received = []
  if threading.current_thread() is not threading.main_thread():
    yield received  # signal handlers can only be set from the main thread
    return

  def handler(signum, frame):
    if received:
      raise StoppedAtOnce(signum)
    received.append(signum)
    logging.warning(
      "%s: saving a checkpoint after this step, then stopping (send it "
      "again to stop at once).",
      signal.Signals(signum).name,
    )

  signals = (signal.SIGINT, signal.SIGTERM)
  previous = {s: signal.signal(s, handler) for s in signals}
  try:
    yield received
  finally:
    for s, h in previous.items():
      signal.signal(s, h if h is not None else signal.SIG_DFL)

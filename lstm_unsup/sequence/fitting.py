"""How `SequenceAutoencoder` trains: minibatch Adam on the masked loss, a
learning rate halved on a plateau, early stopping, progress that suits
where it goes, and the trial fits behind `learning_rate="auto"`.

The schedule (`Plateau`) answers the two ways a fit went wrong before it:
a loss spike that early stopping took for the end, and a stop while the
loss still fell. Stopping waits for `patience` (50) epochs without a new
lowest validation loss, raw or smoothed over about ten epochs, so neither
a spike nor the noise of a small validation set ends a fit whose loss
still trends down; meanwhile the rate halves every `patience // 4` epochs
without one, which calms a spike and lets a fit settle; the parameters
kept are those of the lowest validation loss.
"""

import functools
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lstm_unsup.optim import optimizers
from lstm_unsup.sequence.network import Network, loss_terms

try:
  from tqdm import tqdm
except ImportError:  # a terminal then gets one line rewritten in place
  tqdm = None

LEARNING_RATES_TRIED = (1e-2, 3e-3, 1e-3)  # by learning_rate="auto"
SMOOTHING = 0.1  # Plateau's weight of each new epoch's validation loss
TRIAL_STEPS = 300  # optimiser steps of each trial fit (at least 10 epochs)


class Plateau:
  """After each epoch's validation loss: "best" (a new lowest loss: keep
  these parameters), "continue", "halve" (the rate) or "stop". Progress is
  a new lowest loss or a new lowest smoothed loss (an exponential average
  weighting each epoch by `SMOOTHING`), so that a fit whose loss still
  trends down on a small, noisy validation set is not stopped for failing
  to beat one lucky epoch. After `patience // 4` epochs without progress
  the rate halves; after `patience`, the fit stops."""

  def __init__(self, patience: int):
    self.patience, self.halve_after = patience, max(1, patience // 4)
    self.smoothed, self.best_smoothed, self.best = None, math.inf, math.inf
    self.since_best, self.since_change, self.lr_scale = 0, 0, 1.0

  def update(self, loss: float) -> str:
    a = SMOOTHING
    if self.smoothed is None:
      self.smoothed = loss
    else:
      self.smoothed = (1 - a) * self.smoothed + a * loss
    best = loss < self.best
    progress = best or self.smoothed < self.best_smoothed
    self.best = min(self.best, loss)
    self.best_smoothed = min(self.best_smoothed, self.smoothed)
    if progress:
      self.since_best, self.since_change = 0, 0
      return "best" if best else "continue"
    self.since_best += 1
    self.since_change += 1
    if self.since_best >= self.patience:
      return "stop"
    if self.since_change >= self.halve_after:
      self.since_change = 0
      self.lr_scale *= 0.5
      return "halve"
    return "continue"


class Progress:
  """verbose=0: silent. In a terminal, a live bar (tqdm) with the losses;
  anywhere else (a log file, a pipe, a notebook's captured stream) one
  line every `every` epochs, on each halving and at the end, so that a log
  holds lines, never a bar redrawn into one growing line."""

  def __init__(self, verbose: int, epochs: int, stream=None):
    self.stream = stream if stream is not None else sys.stderr
    self.on = bool(verbose)
    self.live = self.on and _is_terminal(self.stream)
    self.every = max(1, min(50, epochs // 10))
    self.epochs, self.start = epochs, time.perf_counter()
    self.bar = None
    if self.live and tqdm is not None:
      self.bar = tqdm(total=epochs, desc="fit", unit="epoch", file=self.stream)

  def epoch(self, record: dict, event: str) -> None:
    if not self.on:
      return
    text = " ".join(
      f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "lr")
    )
    if self.bar is not None:
      self.bar.update(1)
      self.bar.set_postfix_str(f"{text} lr {record['lr']:.2g}")
    elif self.live:
      self.stream.write(f"\r{self._line(record, text)}\x1b[K")
      self.stream.flush()
    elif record["epoch"] % self.every == 0 or event in ("halve", "stop"):
      self._print(self._line(record, text) + _EVENTS.get(event, ""))

  def close(self, history: list[dict], best_epoch: int, why: str) -> None:
    if not self.on:
      return
    if self.bar is not None:
      self.bar.close()
    elif self.live:
      self.stream.write("\n")
    self._print(
      f"fit: {len(history)} epochs, best epoch {best_epoch}; {why} "
      f"({time.perf_counter() - self.start:.0f} s)"
    )

  def _line(self, record: dict, text: str) -> str:
    return (
      f"epoch {record['epoch']}/{self.epochs} {text} lr {record['lr']:.2g} "
      f"({time.perf_counter() - self.start:.0f} s)"
    )

  def _print(self, line: str) -> None:
    self.stream.write(line + "\n")
    self.stream.flush()


_EVENTS = {
  "halve": " -> half the learning rate",
  "stop": " -> stop",
}


def _is_terminal(stream) -> bool:
  try:
    return bool(stream.isatty())
  except (AttributeError, ValueError):  # no isatty, or a closed stream
    return False


@functools.lru_cache(maxsize=16)
def training_fns(net: Network, future_steps: int, clip_norm):
  """Adam, a jitted training step (its rate a traced argument, so halving
  it compiles nothing) and the validation sums; cached, so that fits with
  the same settings and shapes compile once."""
  optimizer = optimizers.adam(1.0, clip_norm=clip_norm)

  def loss_fn(params, x, n):
    terms = loss_terms(net, params, x, n, future_steps, train=True)
    return sum(s / jnp.maximum(c, 1) for s, c in terms.values())

  @jax.jit
  def step(params, opt_state, x, n, lr):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, n)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    updates = jax.tree.map(lambda u: lr * u, updates)  # Adam: scales the rate
    return optax.apply_updates(params, updates), opt_state, loss

  @jax.jit
  def valid_sums(params, x, n):
    terms = loss_terms(net, params, x, n, future_steps, train=False)
    return jnp.stack([jnp.stack(t) for t in terms.values()])  # [decoders, 2]

  return optimizer, step, valid_sums


def train(
  net: Network,
  params,
  x_NxTxF: np.ndarray,
  lengths_N: np.ndarray,
  train_idx: np.ndarray,
  valid_idx: np.ndarray,
  rng: np.random.Generator,
  *,
  future_steps: int,
  learning_rate: float,
  clip_norm: float | None,
  epochs: int,
  batch_size: int,
  patience: int,
  verbose: int,
):
  """Minibatch Adam, with the `Plateau` schedule and early stopping on the
  validation sequences (without any, every epoch at a constant rate);
  returns the best parameters and a history (one dict per epoch)."""
  optimizer, step, valid_sums = training_fns(net, future_steps, clip_norm)

  def valid_loss(params, size=256):
    sums = 0.0
    for start in range(0, len(valid_idx), size):
      rows = valid_idx[start : start + size]
      sums = sums + valid_sums(params, x_NxTxF[rows], lengths_N[rows])
    sums = np.asarray(sums)
    return float(np.sum(sums[:, 0] / np.maximum(sums[:, 1], 1)))

  B = min(batch_size, len(train_idx))
  opt_state = optimizer.init(params)
  plateau = Plateau(patience)
  best = (params, 0)  # the parameters of the lowest validation loss, epoch
  history, why = [], f"reached epochs={epochs}"
  progress = Progress(verbose, epochs)
  for epoch in range(1, epochs + 1):
    lr = learning_rate * plateau.lr_scale
    order = rng.permutation(train_idx)
    batch_losses = []
    for i in range(len(order) // B):
      rows = order[i * B : (i + 1) * B]
      params, opt_state, loss = step(
        params, opt_state, x_NxTxF[rows], lengths_N[rows], np.float32(lr)
      )
      batch_losses.append(loss)
    record = {"epoch": epoch, "loss": float(np.mean(batch_losses)), "lr": lr}
    if not np.isfinite(record["loss"]):
      raise FloatingPointError(
        f"The training loss is {record['loss']} at epoch {epoch}; try a "
        "lower learning_rate."
      )
    event = "best"
    if len(valid_idx):
      record["val_loss"] = valid_loss(params)
      event = plateau.update(record["val_loss"])
    if event == "best":
      best = (params, epoch)
    history.append(record)
    progress.epoch(record, event)
    if event == "stop":
      why = f"no better validation loss in {patience} epochs"
      break
  progress.close(history, best[1], why)
  return best[0], history


def choose_learning_rate(fit_for, epochs: int, steps_per_epoch: int) -> float:
  """The rate of LEARNING_RATES_TRIED whose short fit (`fit_for(rate,
  epochs)` returns its history) reaches the lowest validation loss; each
  trial lasts about TRIAL_STEPS optimiser steps."""
  trial_epochs = min(epochs, max(10, -(-TRIAL_STEPS // steps_per_epoch)))
  best = {}
  for rate in LEARNING_RATES_TRIED:
    history = fit_for(rate, trial_epochs)
    best[rate] = min(h.get("val_loss", h["loss"]) for h in history)
  return min(best, key=best.get)

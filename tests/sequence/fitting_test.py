"""Tests of how SequenceAutoencoder trains: the plateau schedule, stopping,
progress output, frames and learning_rate="auto"."""

import io

import numpy as np
import pytest

from lstm_unsup import SequenceAutoencoder
from lstm_unsup.sequence import data, fitting


def _updates(losses, patience):
  plateau = fitting.Plateau(patience)
  return [plateau.update(loss) for loss in losses], plateau


def test_a_slowly_falling_loss_never_stops_the_fit():
  events, plateau = _updates(1 - 1e-6 * np.arange(500), patience=5)
  assert set(events) == {"best"} and plateau.lr_scale == 1.0


def test_a_spike_halves_the_rate_and_stops_only_after_patience():
  # Falls, then spikes and never comes back: halve every patience // 4
  # epochs without progress, stop after `patience` of them.
  losses = [1.0, 0.8, 0.6] + [5.0] * 20
  events, plateau = _updates(losses, patience=8)
  assert events[:3] == ["best"] * 3
  assert events[3:11] == ["continue", "halve"] * 3 + ["continue", "stop"]
  assert plateau.lr_scale == 0.125 and plateau.best == 0.6


def test_a_noisy_loss_that_trends_down_is_not_stopped_by_one_lucky_epoch(
  monkeypatch,
):
  # A slow fall under noise, with one lucky epoch (the 6th) that no epoch
  # beats for a long while: the raw best stands still, the smoothed loss
  # keeps falling.
  rng = np.random.default_rng(0)
  losses = 1.0 - 0.002 * np.arange(300) + rng.uniform(-0.1, 0.1, 300)
  losses[5] = 0.6
  assert losses[6:150].min() > 0.6
  events, _ = _updates(losses, patience=30)
  assert "stop" not in events
  # Judged on the raw loss alone, the same fit would have stopped early.
  monkeypatch.setattr(fitting, "SMOOTHING", 1.0)
  events, _ = _updates(losses, patience=30)
  assert events.index("stop") == 5 + 30


def _small_set(n=60, T=50, seed=0):
  """Noisy sine waves of random phase and frequency, [n, T, 2]."""
  rng = np.random.default_rng(seed)
  t = np.arange(T)[None, :, None]
  phase, freq = rng.uniform(0, 6, (n, 1, 1)), rng.uniform(0.1, 0.4, (n, 1, 1))
  waves = np.concatenate([np.sin(freq * t + phase), np.cos(freq * t)], -1)
  return (waves + 0.05 * rng.normal(size=waves.shape)).astype(np.float32)


@pytest.mark.slow  # 30 s: the defaults fit to the end
def test_a_default_fit_does_not_stop_while_its_validation_loss_falls():
  """The defaults on a small set: the fit learns, stops on its own, and
  only once its validation loss has flattened out: over its last
  `patience` epochs no new best, and a least-squares trend that falls by
  less than 1% of the lowest loss over the whole window."""
  ae = SequenceAutoencoder(verbose=0).fit(_small_set())
  val = np.array([h["val_loss"] for h in ae.history_])
  patience = ae.patience
  assert len(val) < ae.epochs  # it stopped by itself
  assert val.min() < 0.2 * val[0]  # and learned
  last = val[-patience:]
  assert last.min() > val.min()  # no new best at the end
  slope = np.polyfit(np.arange(patience), last, 1)[0]
  assert slope * patience > -0.01 * val.min()  # no trend downwards
  assert ae.best_epoch_ == 1 + int(np.argmin(val))
  # The rate fell on the plateau: the fit ended at an eighth of it or less.
  assert ae.history_[-1]["lr"] <= ae.learning_rate / 8


def test_progress_in_a_log_is_lines_never_a_redrawn_bar():
  log = io.StringIO()  # not a terminal: isatty() is False
  progress = fitting.Progress(1, epochs=200, stream=log)
  for epoch in range(1, 101):
    event = "halve" if epoch == 37 else "continue"
    progress.epoch({"epoch": epoch, "loss": 1.0, "lr": 1e-3}, event)
  progress.close([{}] * 100, 60, "no better validation loss in 40 epochs")
  text = log.getvalue()
  assert "\r" not in text and "\x1b" not in text
  lines = text.splitlines()
  assert len(lines) == 100 // 20 + 1 + 1  # every 20th, the halving, the end
  assert lines[0].startswith("epoch 20/200 loss 1 lr 0.001")
  assert lines[1].endswith("-> half the learning rate")
  assert lines[-1].startswith("fit: 100 epochs, best epoch 60; no better")


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_progress_in_a_terminal_is_one_live_line(monkeypatch):
  monkeypatch.setattr(fitting, "tqdm", None)  # the fallback without tqdm
  screen = _Terminal()
  progress = fitting.Progress(1, epochs=10, stream=screen)
  for epoch in range(1, 11):
    progress.epoch({"epoch": epoch, "loss": 0.5, "lr": 1e-3}, "best")
  progress.close([{}] * 10, 10, "reached epochs=10")
  text = screen.getvalue()
  assert text.count("\r") == 10  # each epoch redraws the one line
  assert text.count("\n") == 2  # which ends; then the summary


def test_silent_fits_print_nothing(capsys):
  SequenceAutoencoder(units=4, epochs=2, verbose=0).fit(_small_set(8, 10))
  assert capsys.readouterr() == ("", "")


def test_frames_round_trip_and_the_last_one_repeats_the_last_step():
  values = [np.arange(14, dtype=np.float32).reshape(7, 2)]
  (framed,) = data.to_frames(values, 3)
  assert framed.shape == (3, 6)
  np.testing.assert_array_equal(framed[-1], [12, 13, 12, 13, 12, 13])
  steps = data.from_frames(framed[None], 3)[0]
  np.testing.assert_array_equal(steps[:7], values[0])
  assert data.frame_size(np.array([64, 65]), 32) == 3


def test_long_sequences_are_read_in_frames_and_outputs_come_back_in_steps():
  x = _small_set(12, 70)
  ae = SequenceAutoencoder(
    variant="composite", units=8, epochs=2, verbose=0
  ).fit(x)
  assert ae.frame_ == 3  # 70 steps in at most 32 frames
  assert ae.transform(x).shape == (12, 3 * 8)  # c, h and mean h
  assert ae.reconstruct(x).shape == x.shape
  scores, steps = ae.score_samples(x, per_step=True)
  assert scores.shape == (12,) and steps.shape == (12, 70)
  np.testing.assert_allclose(scores, steps.mean(1), rtol=1e-5)
  assert ae.predict_future(x, 5).shape == (12, 5, 2)
  ragged = [x[0, :70], x[1, :31]]
  out = ae.reconstruct(ragged)
  assert [len(o) for o in out] == [70, 31]
  fixed = SequenceAutoencoder(units=8, epochs=1, frame=1, verbose=0).fit(x)
  assert fixed.frame_ == 1


def test_framed_models_save_and_load_exactly(tmp_path):
  x = _small_set(10, 40)
  ae = SequenceAutoencoder(units=8, epochs=2, frame=4, verbose=0).fit(x)
  ae.save(str(tmp_path / "ae"))
  loaded = SequenceAutoencoder.load(str(tmp_path / "ae"))
  assert loaded.frame_ == 4 and loaded.learning_rate_ == ae.learning_rate_
  np.testing.assert_array_equal(loaded.transform(x), ae.transform(x))
  np.testing.assert_array_equal(loaded.reconstruct(x), ae.reconstruct(x))


def test_auto_learning_rate_tries_each_rate_on_the_inner_split(monkeypatch):
  tried = []
  original = fitting.train

  def spy(*args, **kwargs):
    tried.append((kwargs["learning_rate"], kwargs["epochs"]))
    return original(*args, **kwargs)

  monkeypatch.setattr(fitting, "train", spy)
  ae = SequenceAutoencoder(
    units=4, epochs=20, learning_rate="auto", verbose=0
  ).fit(_small_set(20, 10))
  assert [rate for rate, _ in tried[:3]] == list(fitting.LEARNING_RATES_TRIED)
  assert all(epochs == 20 for _, epochs in tried)  # trials capped by epochs
  assert tried[-1][0] == ae.learning_rate_ in fitting.LEARNING_RATES_TRIED
  assert ae.get_params()["learning_rate"] == "auto"


@pytest.mark.parametrize(
  "name, value",
  [("frame", 0), ("frame", "Auto"), ("frame", 2.0), ("initializer", "he")],
)
def test_new_settings_are_checked_and_named(name, value):
  ae = SequenceAutoencoder(**{"epochs": 1, name: value})
  with pytest.raises(ValueError, match=f"^{name}"):
    ae.fit(_small_set(6, 8))

"""Tests of experiments/timeseries.py: its helpers, and --quick with aeon."""

import json

import numpy as np
import pytest

from experiments import timeseries


def test_resample_stretches_each_feature_between_its_end_points():
  x = np.stack([np.arange(4.0), 10 * np.arange(4.0)], axis=1)  # [4, 2]
  out = timeseries.resample([x, x[:2]], 7)
  assert out.shape == (2, 14)
  np.testing.assert_allclose(out[0].reshape(7, 2)[:, 0], np.linspace(0, 3, 7))
  np.testing.assert_allclose(out[1].reshape(7, 2)[:, 1], np.linspace(0, 10, 7))


def test_a_window_hits_when_it_overlaps_or_its_centre_is_near():
  W = timeseries.WINDOW
  assert timeseries.hits(100, (100 + W - 1, 200)) == (True, True)
  assert timeseries.hits(100, (100 + W, 200)) == (False, True)
  far = 100 + W // 2 + timeseries.UCR_MARGIN + 1
  assert timeseries.hits(100, (far, far + 5)) == (False, False)


def test_frames_group_consecutive_steps_and_repeat_the_last():
  x = np.arange(10.0).reshape(5, 2)  # [T=5, F=2]
  (frames,) = timeseries.to_frames([x], 2)
  np.testing.assert_array_equal(frames[0], [0, 1, 2, 3])
  np.testing.assert_array_equal(frames[-1], [8, 9, 8, 9])
  assert timeseries.frame_size([np.zeros((timeseries.MAX_STEPS + 1, 1))]) == 2


def test_nearest_distance_matches_brute_force():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(1100, 5)), rng.normal(size=(30, 5))
  want = np.linalg.norm(a[:, None] - b[None], axis=-1).min(1)
  np.testing.assert_allclose(timeseries.nearest_distance(a, b), want, 1e-6)


def test_both_detectors_find_a_burst_in_a_sine():
  t = np.arange(1600)
  series = np.sin(2 * np.pi * t / 50) + 0.01 * np.cos(t)
  series[1000:1010] += np.random.default_rng(0).normal(0, 1.0, 10)
  labels = np.zeros(len(series), int)
  labels[1000:1010] = 1
  tiny = dict(units=8, epochs=5, batch_size=64, verbose=0)
  rows = timeseries.locate_anomaly(series[:600], series, labels, tiny, [0])
  assert [r["labelled"] for r in rows] == ["1000-1009"] * 2
  assert rows[1]["hits"] == rows[1]["ucr_hits"] == 1  # nearest window
  assert [r["tries"] for r in rows] == [1, 1]
  table = timeseries.markdown(rows, timeseries.ANOMALY_COLUMNS)
  assert table.count("\n") == 3 and "| method |" in table


def test_quick_run_writes_its_tables(tmp_path):
  pytest.importorskip("aeon")
  result = timeseries.run(str(tmp_path), quick=True)
  names = [r["data_set"] for r in result["classification"]]
  assert names == list(timeseries.QUICK_DATASETS)
  for row in result["classification"]:
    for key in ("lstm_features", "raw_logistic", "nn1_euclidean"):
      assert 0 <= row[key] <= 1
  assert len(result["anomaly"]) == 2
  saved = json.loads((tmp_path / "timeseries.json").read_text())
  assert saved["classification"] == result["classification"]
  assert "| data set |" in (tmp_path / "timeseries.md").read_text()


def test_the_setting_is_chosen_by_training_cross_validation(monkeypatch):
  """The choice and its score come from training data alone: flipping the
  test labels changes neither; the score is the best CV accuracy over every
  (candidate, encoding)."""
  rng = np.random.default_rng(0)
  y_train, y_test = np.repeat([0, 1], 10), np.repeat([0, 1], 5)
  frames_train = [rng.normal(size=(4, 2)) + 3 * y for y in y_train]
  frames_test = [rng.normal(size=(4, 2)) for _ in y_test]
  monkeypatch.setattr(
    timeseries,
    "CANDIDATES",
    (dict(variant="autoencoder", units=4), dict(variant="future", units=6)),
  )
  tiny = dict(epochs=2, batch_size=8, verbose=0)
  accuracy, name, cv, epochs = timeseries.select_and_score(
    frames_train, y_train, frames_test, y_test, 0, tiny
  )
  assert 0 <= accuracy <= 1 and epochs == 2
  flipped = timeseries.select_and_score(
    frames_train, y_train, frames_test, 1 - y_test, 0, tiny
  )
  assert flipped[1:3] == (name, cv)
  assert flipped[0] == pytest.approx(1 - accuracy)
  assert name.split(",")[0] in ("autoencoder 4", "future 6")
  assert name.split(", ")[1] in timeseries.ENCODINGS_TRIED
  # The reported CV score is the best over every (candidate, encoding).
  best = 0.0
  for candidate in timeseries.CANDIDATES:
    ae = timeseries.SequenceAutoencoder(
      random_state=0, **candidate, **tiny
    ).fit(frames_train)
    for encoding in timeseries.ENCODINGS_TRIED:
      f = ae.encode(frames_train, which=encoding)
      best = max(best, timeseries.fit_logistic(f, y_train)[1])
  assert cv == pytest.approx(best)


def test_rows_are_read_back_only_under_the_same_settings(tmp_path):
  calls = []

  def compute(value):
    return lambda: calls.append(value) or {"accuracy": value}

  first = timeseries.cached_row(str(tmp_path), "Set", {"a": 1}, compute(0.5))
  again = timeseries.cached_row(str(tmp_path), "Set", {"a": 1}, compute(0.9))
  changed = timeseries.cached_row(str(tmp_path), "Set", {"a": 2}, compute(0.7))
  assert first == again == {"accuracy": 0.5}
  assert changed == {"accuracy": 0.7} and calls == [0.5, 0.7]


def test_unknown_data_sets_are_refused(tmp_path):
  pytest.importorskip("aeon")
  with pytest.raises(ValueError, match="Unknown data sets"):
    timeseries.run(str(tmp_path), datasets=("NotASet",))

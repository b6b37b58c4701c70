"""Tests of experiments/sequence_defaults.py: the protocol that chose
SequenceAutoencoder's defaults, and `timeseries --defaults`."""

import json

import numpy as np
import pytest

from experiments import sequence_defaults, timeseries


def _labelled(n, seed):
  """Two classes of noisy series of 6 to 9 steps, 2 features."""
  rng = np.random.default_rng(seed)
  y = np.arange(n) % 2
  x = [rng.normal(size=(6 + i % 4, 2)) + 2 * label for i, label in enumerate(y)]
  return [a.astype(np.float32) for a in x], y


@pytest.fixture
def no_test_split(monkeypatch):
  """Training splits from `_labelled`; reading a test split fails."""

  def refuse(name):
    raise AssertionError(f"the protocol read {name}'s test split")

  monkeypatch.setattr(
    sequence_defaults, "load_train", lambda n: _labelled(20, 0)
  )
  monkeypatch.setattr(timeseries, "load_classification", refuse)


def test_the_protocol_reads_training_splits_only_and_writes_its_choice(
  tmp_path, no_test_split
):
  result = sequence_defaults.run_protocol(str(tmp_path), True, ("A",))
  assert [row["data_set"] for row in result["rows"]] == ["A"]
  n = len(sequence_defaults.CANDIDATES) * len(sequence_defaults.ENCODINGS)
  assert len(result["means"]) == n
  assert result["means"][result["chosen"]] == max(result["means"].values())
  saved = json.loads((tmp_path / "sequence_defaults.json").read_text())
  assert saved["chosen"] == result["chosen"]
  table = (tmp_path / "sequence_defaults.md").read_text()
  assert f"| {result['chosen']} **(chosen)** |" in table
  assert table.count("**(chosen)**") == 1
  assert "raw values (no model)" in table
  # A rerun reads each set's row back instead of fitting again.
  again = sequence_defaults.run_protocol(str(tmp_path), True, ("A",))
  assert again["rows"] == result["rows"]


def test_the_choice_is_the_best_mean_and_a_tie_keeps_the_earlier():
  def row(*cvs):
    return dict(
      fits=[
        dict(candidate=f"c{i}", cv=dict(h=cv, state=0.0, mean=0.0))
        for i, cv in enumerate(cvs)
      ]
    )

  chosen = sequence_defaults.choose([row(0.5, 0.9, 0.7), row(0.5, 0.5, 0.7)])
  assert chosen["means"]["c1; h"] == pytest.approx(0.7)
  assert chosen["chosen"] == "c1; h"  # c1 and c2 tie at 0.7: c1 is earlier


def test_the_defaults_run_scores_the_class_defaults_beside_raw_values(
  tmp_path, monkeypatch
):
  def load(name):
    x_train, y_train = _labelled(20, 0)
    x_test, y_test = _labelled(10, 1)
    return x_train, y_train, x_test, y_test

  monkeypatch.setattr(timeseries, "load_classification", load)
  result = sequence_defaults.evaluate(str(tmp_path), True, 3, ("A",))
  (row,) = result["classification"]
  for key in ("lstm_features", "raw_logistic", "nn1_euclidean"):
    assert 0 <= row[key] <= 1
  assert row["frame"] == 1 and len(row["epochs_per_seed"]) == 1
  assert result["class_defaults"]["frame"] == "auto"
  table = (tmp_path / "timeseries_defaults.md").read_text()
  assert "| A | 20 / 10 | 6-9 | 1 |" in table

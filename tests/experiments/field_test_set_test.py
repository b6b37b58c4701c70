"""A Table 2 cell trained and scored on the field's Moving MNIST test set,
through the command a user runs: a file in mnist_test_seq.npy's exact layout,
and TFDS moving_mnist (under tfds.testing.mock_data)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from lstm_unsup import evaluation
from lstm_unsup.data import test_sets
from lstm_unsup.run import opening

ROOT = Path(__file__).resolve().parent.parent.parent
SEQUENCES = 12  # scored: the file's first ones


def _table2(workdir, test_set, *prefix):
  """`python -m experiments.table2` for one tiny cell on `test_set`."""
  command = [
    sys.executable,
    "-m",
    *prefix,
    "experiments.table2",
    "--scale=quick",
    "--columns=mnist",
    "--rows=future",
    f"--workdir={workdir}",
    f"--test_set={test_set}",
    "--override=data.image_size=64,data.source=offline,model.hidden=8,"
    f"eval.num_test_sequences={SEQUENCES},eval.num_valid_sequences=8",
  ]
  done = subprocess.run(
    command, cwd=ROOT, capture_output=True, text=True, timeout=600
  )
  assert done.returncode == 0, done.stderr[-3000:]
  with open(Path(workdir) / "table.json") as f:
    return json.load(f), done.stderr


def _rescored(cell_dir, sequences):
  """The future cross entropy of the cell's last checkpoint on `sequences`,
  computed here."""
  config, model, params = opening.load_run(str(cell_dir))
  evaluator = evaluation.Evaluator(config, model, "test", sequences=sequences)
  return evaluator.evaluate(params)["future_ce"]


def test_a_cell_trained_and_scored_on_an_mnist_test_seq_file(tmp_path):
  # The standard layout, uint8 (20, 10000, 64, 64) time-major, sparse on
  # disk; its first sequences are real Moving MNIST of another seed.
  path = tmp_path / "mnist_test_seq.npy"
  frames_TxNxHxW = np.lib.format.open_memmap(
    path, "w+", np.uint8, test_sets.MNIST_TEST_SEQ_SHAPE
  )
  first_NxTxHxW = test_sets.fixed_test_set(
    SEQUENCES, source="offline", cache_dir=tmp_path, seed=7
  )
  frames_TxNxHxW[:, :SEQUENCES] = first_NxTxHxW.swapaxes(0, 1)
  frames_TxNxHxW.flush()
  del frames_TxNxHxW
  table, log = _table2(tmp_path / "t2", path)
  setup = table["setup"]["mnist"]
  assert setup["test_set"] == (
    f"the field's test set mnist_test_seq.npy, its first {SEQUENCES} sequences"
  )
  assert setup["recipe"] == "ours (Adam 1e-3, constant rate)"
  ce = table["rows"][0]["mnist"]["ce"]["mean"]
  # The score is the model's on the file's sequences (4 + 3 frames used).
  cell = tmp_path / "t2" / "mnist" / "future" / "seed_0"
  want = _rescored(cell, first_NxTxHxW[:, :7])
  np.testing.assert_allclose(ce, want, rtol=1e-5)
  ours_NxTxHxW = test_sets.fixed_test_set(SEQUENCES, source="offline")
  ours = _rescored(cell, ours_NxTxHxW[:, :7])
  # Not our generated set: an 8-step model scores the two sets 0.3 nats
  # apart, 30 times the float32 rounding that rtol above allows.
  assert abs(ours - want) > 1e-4 * want
  assert "mnist_test_seq.npy" in (tmp_path / "t2" / "table.md").read_text()


def test_a_cell_trained_and_scored_on_tfds_moving_mnist(tmp_path):
  table, _ = _table2(
    tmp_path / "t2", "tfds", "tests.experiments.run_with_mock_tfds"
  )
  setup = table["setup"]["mnist"]
  assert setup["test_set"] == (
    f"the field's test set TFDS moving_mnist, its first {SEQUENCES} sequences"
  )
  cell = table["rows"][0]["mnist"]
  assert np.isfinite(cell["ce"]["mean"]) and cell["ce"]["mean"] > 0
  records = [
    json.loads(line)
    for line in open(tmp_path / "t2/mnist/future/seed_0/metrics.jsonl")
  ]
  (test,) = [r for r in records if r["split"] == "test"]
  assert test["num_sequences"] == SEQUENCES
  assert test["sequences"] == setup["test_set"]

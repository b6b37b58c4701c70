"""The learning-curve plot reads a run's metrics and writes a PNG."""

import logging
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from experiments import plot_curves

ROOT = Path(__file__).resolve().parents[2]


def test_plot_writes_a_png(quick_run, tmp_path):
  _, workdir = quick_run
  path = plot_curves.plot(workdir, str(tmp_path / "curves.png"))
  with Image.open(path) as image:
    assert image.format == "PNG" and image.size[0] > 300


def _write_run(workdir, output, key):
  import json

  workdir.mkdir()
  (workdir / "config.json").write_text(
    json.dumps({"model": {"output": output}})
  )
  lines = [
    {"step": 10, "split": "train", "future": 5.0, "loss": 5.0},
    {"step": 10, "split": "valid", f"future_{key}": 4.0},
    {"step": 20, "split": "train", "future": 3.0, "loss": 3.0},
    {"step": 20, "split": "valid", f"future_{key}": 2.5},
    {"step": 20, "split": "test", f"future_{key}": 2.0},
  ]
  text = "".join(json.dumps(line) + "\n" for line in lines)
  (workdir / "metrics.jsonl").write_text(text)


def test_real_valued_runs_plot_squared_loss_curves(tmp_path, monkeypatch):
  # A patch run has `_se` validation keys and squared loss per frame.
  _write_run(tmp_path / "patches", "real", "se")
  _write_run(tmp_path / "mnist", "binary", "ce")
  drawn = {}

  def spy(fig, path, **kwargs):
    ax = fig.axes[0]
    drawn[path] = (ax.get_ylabel(), [line.get_label() for line in ax.lines])

  monkeypatch.setattr(plot_curves.plt.Figure, "savefig", spy)
  for run in ("patches", "mnist"):
    assert plot_curves.loss_kind(str(tmp_path / run), []) in ("real", "binary")
    plot_curves.plot(str(tmp_path / run), run)
  label, lines = drawn["patches"]
  assert label == "squared loss (SE/frame)"
  assert lines == ["future, train", "future, validation", "future, test: 2.0"]
  label, lines = drawn["mnist"]
  assert label == "cross entropy (nats/frame)"
  assert "future, validation" in lines


def test_damaged_lines_are_skipped_with_a_warning(tmp_path, caplog):
  _write_run(tmp_path / "run", "binary", "ce")
  path = tmp_path / "run" / "metrics.jsonl"
  lines = path.read_bytes().split(b"\n")
  lines[1:1] = [b"42", b'{"step": "9", "split": "train"}', b"\xff\xfe"]
  path.write_bytes(b"\n".join(lines))
  with caplog.at_level(logging.WARNING):
    plot_curves.plot(str(tmp_path / "run"), str(tmp_path / "curves.png"))
  assert (tmp_path / "curves.png").exists()
  for number in (2, 3, 4):
    assert f"metrics.jsonl, line {number}: " in caplog.text


def test_a_picture_it_cannot_write_is_one_line(tmp_path):
  _write_run(tmp_path / "run", "binary", "ce")
  (tmp_path / "run" / "curves.png").mkdir()  # where the picture goes
  cases = [[]]
  if os.geteuid() != 0:  # root writes into a read-only folder
    (tmp_path / "ro").mkdir()
    cases.append([f"--output={tmp_path / 'ro' / 'curves.png'}"])
    os.chmod(tmp_path / "ro", 0o555)
  for extra in cases:
    proc = subprocess.run(
      [
        sys.executable,
        "-m",
        "experiments.plot_curves",
        f"--workdir={tmp_path / 'run'}",
        *extra,
      ],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("File error: ") and "curves.png" in last, last

"""The learning-curve plot reads a run's metrics and writes a PNG."""

from PIL import Image

from experiments import plot_curves


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

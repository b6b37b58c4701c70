"""The learning-curve plot reads a run's metrics and writes a PNG."""

from PIL import Image

from experiments import plot_curves


def test_plot_writes_a_png(quick_run, tmp_path):
  _, workdir = quick_run
  path = plot_curves.plot(workdir, str(tmp_path / "curves.png"))
  with Image.open(path) as image:
    assert image.format == "PNG" and image.size[0] > 300

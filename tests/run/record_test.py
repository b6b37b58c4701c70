"""A run's record is the source of truth: its data record is written once
and checked on resume, `features` and `eval` use what it recorded, and an
edited config.json or a damaged record is one clear line."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from lstm_unsup import cli, eval, features, train
from lstm_unsup.config_lib import ConfigError
from lstm_unsup.configs import composite, patches
from lstm_unsup.run import record


def _video_folder(folder, index: int, frames: int = 40, size: int = 24):
  """A video as a folder of grey PNG frames: a square moving on noise."""
  rng = np.random.default_rng(index)
  os.makedirs(folder)
  x, v = rng.integers(0, size - 6, 2), rng.choice([-2, -1, 1, 2], 2)
  for t in range(frames):
    frame = rng.integers(0, 60, (size, size), dtype=np.uint8)
    frame[x[0] : x[0] + 6, x[1] : x[1] + 6] = 200 + 10 * index
    Image.fromarray(frame).save(os.path.join(folder, f"{t:03d}.png"))
    v = np.where((x + v < 0) | (x + v > size - 6), -v, v)
    x = x + v


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory):
  """A quick patch run on a folder of two videos, trained 2 steps."""
  root = tmp_path_factory.mktemp("record")
  source = root / "videos"
  for i in range(2):
    _video_folder(source / f"v{i}", i)
  config = patches.get_config("quick")
  config.data.patch_source = str(source)
  config.train.num_steps = 2
  workdir = str(root / "run")
  train.train_and_evaluate(config, workdir)
  return config, workdir, source


def _one_line(error: Exception) -> str:
  line = cli.one_line(error, (), "")
  assert line is not None and "\n" not in line
  return line


def test_a_source_that_gained_a_video_is_refused_and_the_record_kept(
  patch_run, tmp_path
):
  config, _, _ = patch_run
  source, run = tmp_path / "videos", tmp_path / "run"
  for i in range(2):
    _video_folder(source / f"v{i}", i)
  config = config.copy_and_resolve_references()
  config.data.patch_source = str(source)
  train.train_and_evaluate(config, str(run))
  before = (run / record.DATA_SPLIT).read_bytes()
  _video_folder(source / "v2", 2)  # the folder gains a video
  config.train.num_steps = 4
  with pytest.raises(record.RecordError) as e:
    train.train_and_evaluate(config, str(run))
  line = _one_line(e.value)
  assert line.startswith("Bad data: The data source of") and "v2 added" in line
  assert (run / record.DATA_SPLIT).read_bytes() == before
  # The source it trained on resumes, and the record stays as it was.
  shutil.rmtree(source / "v2")
  assert train.train_and_evaluate(config, str(run))["steps"] == 4
  assert (run / record.DATA_SPLIT).read_bytes() == before


def test_features_use_the_recorded_statistics_without_the_source(
  patch_run, tmp_path
):
  config, workdir, source = patch_run
  run = tmp_path / "run"
  shutil.copytree(workdir, run)
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 255, (3, 4, 8, 8, 1), dtype=np.uint8)
  np.save(tmp_path / "frames.npy", frames)
  args = (str(run), None, str(tmp_path / "frames.npy"), str(tmp_path / "f"))
  with_source, _ = features.export(*args, "h", layout="NT")
  moved = tmp_path / "moved"
  shutil.move(source, moved)  # the source folder is gone
  try:
    without, _ = features.export(*args, "h", layout="NT")
  finally:
    shutil.move(moved, source)
  np.testing.assert_array_equal(without, with_source)
  # Other statistics in the record give other features: they are used.
  path = run / record.DATA_SPLIT
  values = json.loads(path.read_text())
  values["mean"] = [min(values["mean"][0] + 0.2, 1.0)]
  path.write_text(json.dumps(values))
  shifted, _ = features.export(*args, "h", layout="NT")
  assert not np.allclose(shifted, with_source)


@pytest.mark.parametrize(
  "damage, says",
  [
    (lambda v: dict(v, std=[0.0]), "statistics that cannot be right"),
    (lambda v: dict(v, mean=[float("nan")]), "statistics that cannot be"),
    (lambda v: {k: x for k, x in v.items() if k != "std"}, "no per-channel"),
    (lambda v: [1, 2], "does not hold a data record"),
  ],
)
def test_a_damaged_data_record_is_one_line(patch_run, tmp_path, damage, says):
  _, workdir, _ = patch_run
  run = tmp_path / "run"
  shutil.copytree(workdir, run)
  path = run / record.DATA_SPLIT
  path.write_text(json.dumps(damage(json.loads(path.read_text()))))
  frames = np.zeros((2, 4, 8, 8), np.uint8)
  with pytest.raises(record.RecordError) as e:
    features.encode(str(run), frames)
  line = _one_line(e.value)
  assert says in line and record.DATA_SPLIT in line


def test_eval_refuses_a_config_json_edited_after_training(tmp_path):
  config = composite.get_config("quick")
  config.train.num_steps = 2
  workdir = tmp_path / "run"
  train.train_and_evaluate(config, str(workdir))
  assert eval.evaluate_run(str(workdir))["num_sequences"] == 16
  path = workdir / "config.json"
  values = json.loads(path.read_text())
  values["data"]["num_input_frames"] = 2
  path.write_text(json.dumps(values, indent=2, sort_keys=True))
  with pytest.raises(ConfigError) as e:
    eval.evaluate_run(str(workdir))
  line = _one_line(e.value)
  assert line.startswith("Bad configuration:") and "config.json" in line
  assert "changed or damaged" in line


def test_a_run_from_before_the_config_checksum_still_opens(tmp_path):
  config = composite.get_config("quick")
  config.train.num_steps = 2
  workdir = tmp_path / "run"
  train.train_and_evaluate(config, str(workdir))
  os.remove(workdir / "config.json.sha256")  # as an older version wrote it
  assert eval.evaluate_run(str(workdir))["step"] == 2


def test_a_record_from_before_the_fingerprint_is_checked_by_its_split(
  patch_run, tmp_path
):
  config, workdir, source = patch_run
  run = tmp_path / "run"
  shutil.copytree(workdir, run)
  path = run / record.DATA_SPLIT
  values = json.loads(path.read_text())
  del values["fingerprint"]  # as an older version wrote it
  path.write_text(json.dumps(values, indent=1))
  before = path.read_bytes()
  config = config.copy_and_resolve_references()
  config.train.num_steps = 3
  assert train.train_and_evaluate(config, str(run))["steps"] == 3
  assert path.read_bytes() == before  # resumed, the record as it was
  values["std"] = [values["std"][0] * 2]  # another source's statistics
  path.write_text(json.dumps(values, indent=1))
  config.train.num_steps = 4
  with pytest.raises(record.RecordError, match="the training std was"):
    train.train_and_evaluate(config, str(run))

"""Tests of classifier training: seeding and fine-tuning, the end-to-end
run, the task's single-frame ceiling, and percept files."""

import json
import os

import jax
import numpy as np
import pytest

from lstm_unsup import cli
from lstm_unsup.classifier import train as train_classifier
from lstm_unsup.configs import classifier as classifier_configs
from lstm_unsup.data import labelled
from lstm_unsup.run import checkpoints


def _quick(tmp_path, **changes):
  config = classifier_configs.get_config("quick")
  config.data.source = "offline"
  config.data.data_dir = str(tmp_path / "data")
  for field, value in changes.items():
    group, name = field.split("__")
    config[group][name] = value
  return config


@pytest.mark.parametrize("finetune", ["readout", "all"])
def test_fine_tuning_all_weights_or_only_the_readout(
  quick_run, tmp_path, finetune
):
  _, workdir = quick_run
  config = _quick(
    tmp_path, pretrained__workdir=workdir, pretrained__finetune=finetune
  )
  train, test = train_classifier.load_videos(config)
  mcfg, params = train_classifier.fit(config, train, test.num_classes)
  assert mcfg.peepholes and mcfg.hidden == 32  # the encoder's architecture
  fresh = train_classifier.init_params(config, mcfg, train.feature_dim)
  encoder = checkpoints.restore_params(workdir)["encoder"]
  same = jax.tree.leaves(jax.tree.map(np.array_equal, params["lstm"], encoder))
  assert all(same) == (finetune == "readout")
  assert not np.array_equal(
    params["readout"]["kernel"], fresh["readout"]["kernel"]
  )


def test_a_run_writes_its_results_and_a_rerun_reads_them_back(tmp_path):
  config = _quick(tmp_path)
  workdir = str(tmp_path / "run")
  result = train_classifier.train_and_evaluate(config, workdir)
  assert 0 <= result["accuracy"] <= 1 and 0 <= result["block_accuracy"] <= 1
  assert result["num_videos"] == 80 and result["num_blocks"] == 160
  assert result["num_train_videos"] == 160 and result["init"] == "random"
  lines = open(f"{workdir}/metrics.jsonl").read().splitlines()
  assert [json.loads(x)["split"] for x in lines] == ["train", "train", "test"]
  again = train_classifier.train_and_evaluate(config, workdir)
  assert open(f"{workdir}/metrics.jsonl").read().splitlines() == lines
  assert again["accuracy"] == result["accuracy"]
  config.model.hidden, config.train.num_steps = 16, 7  # a different run
  with pytest.raises(ValueError, match="different config"):
    train_classifier.train_and_evaluate(config, workdir)


def test_an_lstm_beats_the_ceiling_of_any_single_frame_model(tmp_path):
  # One digit, so the 4 classes are the direction quadrants alone. A model
  # blind to frame order can reach at most 50% (labelled.py says why).
  config = _quick(
    tmp_path,
    data__image_size=40,
    data__num_frames=8,
    data__step_length=0.14,
    data__digit_classes=(1,),
    data__num_train_per_class=64,
    data__num_test_per_class=50,
    model__block_length=8,
    model__block_stride=8,
    model__hidden=16,
    model__dropout_rate=0.0,
    train__num_steps=150,
    train__batch_size=32,
    train__log_every_steps=150,
    optim__learning_rate=3e-3,
  )
  lstm = train_classifier.train_and_evaluate(config, str(tmp_path / "lstm"))
  config.model.kind = "single_frame"
  single = train_classifier.train_and_evaluate(config, str(tmp_path / "sf"))
  ceiling = labelled.ORDER_BLIND_CEILING
  assert single["accuracy"] <= ceiling + 0.07  # 200 test videos: +-3.5%
  assert lstm["accuracy"] > ceiling + 0.15, (lstm, single)


def test_percept_files_train_a_classifier(tmp_path):
  # Class 0: the features rise over the video; class 1: they fall. Both
  # classes show the same values, so only the order tells them apart.
  rng = np.random.default_rng(0)
  N, T, D = 200, 12, 6
  ramp_T = np.linspace(-1, 1, T)
  labels = rng.integers(0, 2, N)
  direction = np.where(labels == 0, 1.0, -1.0)
  features = (
    direction[:, None, None]
    * ramp_T[None, :, None]
    * rng.uniform(0.5, 1.5, (N, 1, D))
  )
  lengths = rng.integers(6, T + 1, N)
  features[np.arange(T)[None] >= lengths[:, None]] = 0
  split = np.where(np.arange(N) < 150, "train", "test")
  path = tmp_path / "percepts.npz"
  np.savez(path, features=features, labels=labels, split=split, lengths=lengths)
  config = _quick(
    tmp_path,
    data__task="percepts",
    data__percepts=str(path),
    model__hidden=8,
    train__num_steps=60,
    train__log_every_steps=60,
    optim__learning_rate=1e-2,
  )
  result = train_classifier.train_and_evaluate(config, str(tmp_path / "run"))
  assert result["num_videos"] == 50
  assert result["accuracy"] > 0.9


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("model__kind", "svm", "config.model.kind='svm' is not one of"),
    ("pretrained__finetune", "top", "config.pretrained.finetune"),
    ("train__num_steps", 0, "config.train.num_steps must be >= 1"),
    ("data__task", "percepts", "needs config.data.percepts"),
    ("data__image_size", 28, "image_size=28 leaves the 28-pixel digits no"),
  ],
)
def test_bad_configs_name_the_field(tmp_path, field, value, message):
  config = _quick(tmp_path, **{field: value})
  with pytest.raises(ValueError, match=message):
    train_classifier.validate(config)
  single = _quick(tmp_path, model__kind="single_frame", pretrained__workdir="x")
  with pytest.raises(ValueError, match="seeds an LSTM"):
    train_classifier.validate(single)


def _refused(config, workdir) -> str:
  """The one line with which the classifier's command refuses `config`."""
  with pytest.raises(Exception) as e:
    train_classifier.train_and_evaluate(config, str(workdir))
  line = cli.one_line(e.value)
  assert line is not None and "\n" not in line, e.value
  return line


def test_a_pretrained_encoder_that_does_not_fit_the_frames_is_one_line(
  quick_run, tmp_path
):
  _, pretrained = quick_run  # 32 x 32 grey frames: 1024 values a frame
  config = _quick(tmp_path, pretrained__workdir=pretrained, data__image_size=40)
  assert _refused(config, tmp_path / "cls") == (
    f"Bad configuration: The encoder of {pretrained} reads frames of 1024 "
    "values (32x32 pixels, the frames it was trained on), but the "
    "classifier's frames have 1600 (40x40 pixels): set "
    "--config.data.image_size=32, or seed it from a run trained on 40x40 "
    "grey frames."
  )
  path = tmp_path / "percepts.npz"
  np.savez(
    path,
    features=np.zeros((4, 6, 5)),
    labels=np.arange(4) % 2,
    split=np.array(["train", "train", "test", "test"]),
  )
  config = _quick(
    tmp_path,
    pretrained__workdir=pretrained,
    data__task="percepts",
    data__percepts=str(path),
  )
  assert _refused(config, tmp_path / "cls").endswith(
    "but the classifier's percepts have 5 features a frame "
    f"({path}): seed it from a run trained on frames of 5 values."
  )
  assert sorted(os.listdir(tmp_path)) == ["percepts.npz"]  # no workdir


@pytest.mark.parametrize("kind", ["missing", "not a run"])
@pytest.mark.parametrize("workdir_existed", [False, True])
def test_a_pretrained_workdir_that_is_not_a_run_is_one_line(
  tmp_path, kind, workdir_existed
):
  pretrained = tmp_path / "pretrained"
  if kind == "not a run":
    pretrained.mkdir()
  workdir = tmp_path / "cls"
  if workdir_existed:
    workdir.mkdir()
  config = _quick(tmp_path, pretrained__workdir=str(pretrained))
  what = "does not exist" if kind == "missing" else "holds no config.json"
  line = _refused(config, workdir)
  assert workdir.exists() == workdir_existed  # kept if it was there before
  assert not workdir_existed or os.listdir(workdir) == []
  assert line == (
    f"Bad configuration: config.pretrained.workdir={pretrained} {what}: it "
    "is not a training run. Give the --workdir of a run of python -m "
    "lstm_unsup.main, or leave it empty to start from random weights."
  )

"""The ConvLSTM configs: a run trains, evaluates and encodes end to end."""

import numpy as np
import pytest

from lstm_unsup import config_lib, eval, features
from lstm_unsup.configs import convlstm_composite, convlstm_future
from lstm_unsup.run import metrics_io, opening
from tests.conftest import train_quick


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
  root = tmp_path_factory.mktemp("conv_run")
  return train_quick(root, convlstm_composite.get_config)


def test_a_conv_composite_trains_evaluates_and_encodes(conv_run):
  config, workdir = conv_run
  test = metrics_io.last_record(workdir, "test")
  assert test["step"] == config.train.num_steps
  assert 0 < test["future_ce"] < 2000 and 0 < test["reconstruct_ce"] < 2000
  # The checkpoint holds convolutions, and evaluates to the same numbers.
  _, _, params = opening.load_run(workdir)
  k, p = config.model.conv_kernel, config.model.patch_size
  G = 4 * config.model.hidden
  assert params["encoder"]["layer_0"]["w_input"].shape == (k, k, p * p, G)
  again = eval.evaluate_run(workdir)
  np.testing.assert_allclose(again["future_ce"], test["future_ce"], rtol=1e-5)
  # Features: each layer's final h, its grid flattened.
  grid = config.data.image_size // p
  videos = np.random.default_rng(0).random(
    (3, config.data.num_input_frames, 32, 32)
  )
  feats = features.encode(workdir, videos)
  assert feats.shape == (3, grid * grid * config.model.hidden)
  both = features.encode(workdir, videos, which="state")
  np.testing.assert_array_equal(both[:, feats.shape[1] :], feats)


def test_a_classifier_is_not_seeded_from_a_conv_run(conv_run):
  _, workdir = conv_run
  with pytest.raises(ValueError, match="ConvLSTM encoder"):
    opening.encoder_of_run(workdir)


@pytest.mark.parametrize("scale", ["quick", "cpu", "paper"])
def test_every_scale_is_a_valid_conv_config(scale):
  for module in (convlstm_future, convlstm_composite):
    config = module.get_config(scale)
    config_lib.validate(config)
    assert config.model.cell == "conv"
  assert convlstm_future.get_config(scale).model.decoders == "future"


def test_a_patch_that_does_not_divide_the_frame_is_refused():
  config = convlstm_composite.get_config("quick")
  config.model.patch_size = 5
  with pytest.raises(config_lib.ConfigError, match="patch_size=5"):
    config_lib.validate(config)

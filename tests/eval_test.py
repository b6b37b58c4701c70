"""The evaluation CLI's library path and the feature extractor."""

import json
import os

import numpy as np
import pytest

import lstm_unsup
from lstm_unsup import checkpoint, eval, input_pipeline


def test_evaluate_run_matches_the_trainers_final_test_metrics(quick_run):
  config, workdir = quick_run
  result = eval.evaluate_run(workdir)
  saved = json.load(open(os.path.join(workdir, "eval_test.json")))
  assert saved["future_ce"] == result["future_ce"]
  final = [
    json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))
  ][-1]
  assert final["split"] == "test"
  np.testing.assert_allclose(result["future_ce"], final["future_ce"], rtol=1e-6)
  assert result["num_sequences"] == config.eval.num_test_sequences
  for key in (
    "future_sse",
    "future_mae",
    "future_ssim",
    "future_psnr",
    "reconstruct_ce",
  ):
    assert np.isfinite(result[key])


def test_encode_returns_the_encoder_final_state(quick_run):
  config, workdir = quick_run
  frames = input_pipeline.eval_sequences(config, "test")[:5]
  feats = lstm_unsup.encode(workdir, frames)
  assert feats.shape == (5, config.model.hidden * config.model.num_layers)
  _, model, params = checkpoint.load_run(workdir)
  inputs, _ = input_pipeline.split_frames(
    config, input_pipeline.to_unit(frames)
  )
  carries = model.apply({"params": params}, inputs, method=model.encode)
  np.testing.assert_allclose(feats, carries[-1][1], rtol=1e-5, atol=1e-6)
  state = lstm_unsup.encode(workdir, frames, which="state")
  assert state.shape == (5, 2 * config.model.hidden)


def test_encode_rejects_videos_of_the_wrong_shape(quick_run):
  _, workdir = quick_run
  with pytest.raises(ValueError, match="Expected videos of shape"):
    lstm_unsup.encode(workdir, np.zeros((2, 10, 64, 64), np.float32))

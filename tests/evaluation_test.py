"""Evaluation on a fixed set (evaluation.py): padded last batches do not
count, and the numbers are the model's loss on exactly those sequences."""

import jax
import numpy as np
import pytest

from lstm_unsup import eval as eval_cli
from lstm_unsup import evaluation, input_pipeline, losses, models
from lstm_unsup.configs import composite, patches


def _quick(output="binary"):
  if output == "binary":
    config = composite.get_config("quick")
  else:
    config = patches.get_config("quick")
  config.model.hidden = 8
  config.eval.batch_size = 4  # 6 sequences: the last batch is padded
  frames = input_pipeline.eval_sequences(config, "test")[:6]
  model = models.build_model(config.model)
  inputs, future = input_pipeline.split_frames(
    config, input_pipeline.model_frames(config, frames)
  )
  params = model.init(jax.random.key(0), inputs, future)["params"]
  return config, model, frames, params, (inputs, future)


def test_the_score_is_the_mean_loss_over_exactly_the_sequences():
  config, model, frames, params, (inputs, future) = _quick()
  result = evaluation.Evaluator(config, model, "test", frames).evaluate(params)
  assert result["num_sequences"] == 6
  assert result["conditioning"] == {
    "reconstruct": "unconditioned",
    "future": "unconditioned",
  }
  outputs, _ = model.apply({"params": params}, inputs, future, train=False)
  want = losses.frame_loss(outputs["future"], future, "binary")  # (6, K)
  np.testing.assert_allclose(result["future_ce"], want.mean(), rtol=1e-5)
  np.testing.assert_allclose(
    result["future_ce_per_frame"], want.mean(axis=0), rtol=1e-5
  )


@pytest.mark.parametrize("output", ["binary", "real"])
def test_the_mean_baseline_is_the_loss_of_predicting_the_mean(output):
  config, model, frames, params, targets = _quick(output)
  result = evaluation.Evaluator(config, model, "test", frames).evaluate(params)
  unit = losses.METRIC_KEYS[output]
  for name, target in zip(("reconstruct", "future"), targets):
    mean = np.mean(target, dtype=np.float64)
    constant = np.log(mean / (1 - mean)) if output == "binary" else mean
    want = losses.frame_loss(np.full_like(target, constant), target, output)
    np.testing.assert_allclose(
      result["mean_baseline"][f"{name}_{unit}"], np.mean(want), rtol=1e-4
    )


def test_results_worse_than_predicting_the_mean_are_flagged(capsys):
  """Issue 35: a diverged run's 6.08e5 nats was printed without comment."""
  config, model, frames, params, _ = _quick()
  evaluator = evaluation.Evaluator(config, model, "test", frames)
  for decoder in ("decoder_future", "decoder_reconstruct"):  # every pixel on
    readout = params[decoder]["readout"]
    readout["bias"] = np.full_like(readout["bias"], 30.0)
  worse = evaluator.evaluate(params)
  assert worse["future_ce"] > 10 * worse["mean_baseline"]["future_ce"]
  line = evaluation.summary_line(worse)
  assert "WARNING: no better than predicting every value the set's mean" in line
  assert f"future_ce {worse['future_ce']:.4g} >= " in line
  eval_cli._print("test", worse)
  assert "WARNING" in capsys.readouterr().out
  fine = dict(worse, future_ce=0.5 * worse["mean_baseline"]["future_ce"])
  fine["reconstruct_ce"] = fine["future_ce"]
  assert "WARNING" not in evaluation.summary_line(fine)

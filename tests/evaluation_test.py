"""Evaluation on a fixed set (evaluation.py): padded last batches do not
count, and the numbers are the model's loss on exactly those sequences."""

import jax
import numpy as np

from lstm_unsup import evaluation, input_pipeline, losses, models
from lstm_unsup.configs import composite


def test_the_score_is_the_mean_loss_over_exactly_the_sequences():
  config = composite.get_config("quick")
  config.model.hidden = 8
  config.eval.batch_size = 4  # 6 sequences: the last batch is padded
  frames = input_pipeline.eval_sequences(config, "test")[:6]
  model = models.build_model(config.model)
  inputs, future = input_pipeline.split_frames(
    config, input_pipeline.model_frames(config, frames)
  )
  params = model.init(jax.random.key(0), inputs, future)["params"]
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

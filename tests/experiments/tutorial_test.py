"""The Keras tutorial's toy examples train to their targets."""

import numpy as np

from experiments import tutorial


def test_toy_examples_reach_their_targets():
  results = tutorial.run_examples(steps=400, seed=0)
  x = tutorial.make_sequence()[0, :, 0]
  (recon,) = results["reconstruct"]["outputs"]
  (pred,) = results["predict"]["outputs"]
  np.testing.assert_allclose(recon, x, atol=0.03)
  np.testing.assert_allclose(pred, x[1:], atol=0.06)
  comp_recon, comp_pred = results["composite"]["outputs"]
  np.testing.assert_allclose(comp_recon, x, atol=0.03)
  np.testing.assert_allclose(comp_pred, x[1:], atol=0.06)

  # (d) The standalone encoder gives the composite encoder's 100-d state.
  features = results["encoder"]["features"]
  assert features.shape == (1, tutorial.UNITS)
  params = results["composite"]["params"]["encoder"]
  again = tutorial.Encoder().apply({"params": params}, tutorial.make_sequence())
  np.testing.assert_array_equal(np.asarray(again), features)
  # The two decoders of the composite have their own weights.
  decoders = [results["composite"]["params"][f"decoder_{i}"] for i in (0, 1)]
  assert not np.allclose(
    decoders[0]["lstm"]["layer_0"]["w_recurrent"],
    decoders[1]["lstm"]["layer_0"]["w_recurrent"],
  )
  assert all(
    np.isfinite(r["loss"]) for k, r in results.items() if k != "encoder"
  )

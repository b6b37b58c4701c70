"""The SequenceAutoencoder's network (sequence/network.py): its loss counts
each sequence's own steps, whatever the padding beside it."""

import jax
import jax.numpy as jnp
import numpy as np

from lstm_unsup.sequence import network


def _net():
  return network.Network(
    units=8,
    num_layers=1,
    decoders=("reconstruct", "future"),
    conditional=(False, True),
  )


def test_padding_changes_neither_the_sums_nor_the_counts():
  net = _net()
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 7, 3)), jnp.float32)
  lengths = jnp.array([7, 5])
  params = net.init(jax.random.key(0), x, jnp.ones((2, 7), bool), 2)["params"]
  terms = network.loss_terms(net, params, x, lengths, 2, train=True)
  # The second sequence alone, unpadded, and padded with garbage.
  alone = network.loss_terms(net, params, x[1:, :5], lengths[1:], 2, train=True)
  noisy = x.at[1, 5:].set(1e3)
  padded = network.loss_terms(net, params, noisy, lengths, 2, train=True)
  for name in ("reconstruct", "future"):
    total, count = terms[name]
    np.testing.assert_allclose(padded[name][0], total, rtol=1e-5)
    assert int(padded[name][1]) == int(count)
    # Counts: reconstruct reads L - K steps, future predicts K of each.
    assert int(count) == {"reconstruct": 5 + 3, "future": 2 + 2}[name]
    first_only = network.loss_terms(
      net, params, x[:1], lengths[:1], 2, train=True
    )[name][0]
    np.testing.assert_allclose(alone[name][0] + first_only, total, rtol=1e-5)

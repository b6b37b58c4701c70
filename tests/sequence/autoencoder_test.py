"""Tests of SequenceAutoencoder: masking, persistence, errors, the toy."""

import copy
import json

import jax
import numpy as np
import pytest
from flax import serialization
from sklearn.base import clone

from lstm_unsup import SequenceAutoencoder
from lstm_unsup.sequence import network

LENGTHS = (5, 9, 3, 7, 8, 6)
F = 2


def _sequences(lengths=LENGTHS, seed=0):
  rng = np.random.default_rng(seed)
  return [
    np.cumsum(rng.normal(size=(n, F)), axis=0).astype(np.float32)
    for n in lengths
  ]


def _padded(seqs, fill):
  x_NxTxF = np.full((len(seqs), max(map(len, seqs)), F), fill, np.float32)
  for i, s in enumerate(seqs):
    x_NxTxF[i, : len(s)] = s
  return x_NxTxF, np.array([len(s) for s in seqs])


TINY = dict(
  variant="composite",
  units=8,
  num_layers=2,
  conditional_reconstruct=True,  # also exercises the free-running decoder
  future_steps=2,
  epochs=3,
  batch_size=4,
  validation_fraction=0.2,
  verbose=0,
)


@pytest.fixture(scope="module")
def fitted():
  return SequenceAutoencoder(**TINY).fit(_sequences())


def test_a_padded_batch_encodes_each_sequence_as_if_alone(fitted):
  seqs = _sequences()
  for which in ("h", "c", "state", "mean"):
    batch = fitted.encode(seqs, which=which)
    alone = np.concatenate([fitted.encode([s], which=which) for s in seqs])
    np.testing.assert_allclose(batch, alone, rtol=1e-5, atol=1e-6)
  assert fitted.transform(seqs).shape == (len(seqs), 2 * 8)  # h of 2 layers


def test_padding_values_never_reach_outputs_or_scores(fitted):
  seqs = _sequences()
  zeros, lengths = _padded(seqs, 0.0)
  huge, nans = _padded(seqs, 1e6)[0], _padded(seqs, np.nan)[0]
  scores, steps = fitted.score_samples(seqs, per_step=True)
  for x in (zeros, huge, nans):
    np.testing.assert_array_equal(
      fitted.transform(x, lengths), fitted.transform(seqs)
    )
    got, got_steps = fitted.score_samples(x, lengths, per_step=True)
    np.testing.assert_array_equal(got, scores)
    for i, n in enumerate(lengths):
      np.testing.assert_array_equal(got_steps[i, :n], steps[i])
      assert np.isnan(got_steps[i, n:]).all()
    recon = fitted.reconstruct(x, lengths)
    assert np.isnan(recon[0, LENGTHS[0] :]).all()
  # A sequence's score is the mean of its own steps' errors only.
  np.testing.assert_allclose(scores, [s.mean() for s in steps], rtol=1e-6)
  alone = np.concatenate([fitted.score_samples([s]) for s in seqs])
  np.testing.assert_allclose(scores, alone, rtol=1e-5, atol=1e-7)
  # Training on NaN-padded rows is training on the sequences.
  again = SequenceAutoencoder(**TINY).fit(nans, lengths=lengths)
  jax.tree.map(np.testing.assert_array_equal, again.params_, fitted.params_)


def test_the_loss_counts_only_each_sequences_own_steps(fitted):
  seqs = _sequences()[:3]
  x, lengths = _padded(seqs, 0.0)
  K = fitted.future_steps_
  loss_terms = jax.jit(
    network.loss_terms, static_argnums=(0, 4), static_argnames="train"
  )
  for train in (True, False):
    batch = loss_terms(
      fitted._network, fitted.params_, x, lengths, K, train=train
    )
    alone = [
      loss_terms(
        fitted._network,
        fitted.params_,
        s[None],
        np.array([len(s)]),
        K,
        train=train,
      )
      for s in seqs
    ]
    for name, (total, count) in batch.items():
      np.testing.assert_allclose(
        total, sum(a[name][0] for a in alone), rtol=1e-5
      )
      assert int(count) == sum(int(a[name][1]) for a in alone)
      want = sum(lengths - K) if name == "reconstruct" else len(seqs) * K
      assert int(count) == want


def test_scaling_uses_the_training_steps_only(fitted):
  steps = np.concatenate(_sequences())
  np.testing.assert_allclose(fitted.mean_, steps.mean(0), rtol=1e-5)
  np.testing.assert_allclose(fitted.scale_, steps.std(0), rtol=1e-5)


def test_save_and_load_round_trip_exactly(fitted, tmp_path):
  fitted.save(str(tmp_path / "ae"))
  loaded = SequenceAutoencoder.load(str(tmp_path / "ae"))
  assert loaded.get_params() == fitted.get_params()
  assert loaded.history_ == fitted.history_
  assert loaded.best_epoch_ == fitted.best_epoch_
  jax.tree.map(np.testing.assert_array_equal, loaded.params_, fitted.params_)
  seqs = _sequences(seed=1)
  for method, args in [
    ("transform", ()),
    ("score_samples", ()),
    ("predict_future", (4,)),
  ]:
    np.testing.assert_array_equal(
      getattr(loaded, method)(seqs, *args), getattr(fitted, method)(seqs, *args)
    )
  for a, b in zip(loaded.reconstruct(seqs), fitted.reconstruct(seqs)):
    np.testing.assert_array_equal(a, b)


def test_a_folder_in_the_saved_format_loads(fitted, tmp_path):
  """The format, written here by hand: settings.json is plain JSON (a format
  tag, the constructor's settings, fitted ints, the history) and
  params.msgpack plain arrays. No module path nor pickled class, so folders
  saved before the modules moved (lstm_unsup.sequence_*) load unchanged."""
  fitted.save(str(tmp_path / "saved"))
  with open(tmp_path / "saved" / "settings.json") as f:
    saved = json.load(f)
  assert set(saved) == {"format", "settings", "fitted", "history"}
  assert saved["format"] == "lstm_unsup.SequenceAutoencoder/1"
  assert "lstm_unsup" not in json.dumps({**saved, "format": ""})
  folder = tmp_path / "by_hand"
  folder.mkdir()
  settings = {
    "format": "lstm_unsup.SequenceAutoencoder/1",
    "settings": fitted.get_params(),  # the constructor's keywords
    "fitted": {
      "n_features_in_": F,
      "future_steps_": 2,
      "best_epoch_": fitted.best_epoch_,
    },
    "history": fitted.history_,
  }
  (folder / "settings.json").write_text(json.dumps(settings))
  arrays = {
    "params": fitted.params_,
    "mean": fitted.mean_,
    "std": fitted.scale_,
  }
  blob = serialization.msgpack_serialize(jax.tree.map(np.asarray, arrays))
  assert blob == (tmp_path / "saved" / "params.msgpack").read_bytes()
  (folder / "params.msgpack").write_bytes(blob)
  loaded = SequenceAutoencoder.load(str(folder))
  assert loaded.get_params() == fitted.get_params()
  seqs = _sequences(seed=1)
  np.testing.assert_array_equal(loaded.transform(seqs), fitted.transform(seqs))


def test_seeds_make_fits_reproducible(fitted):
  again = clone(fitted).fit(_sequences())
  jax.tree.map(np.testing.assert_array_equal, again.params_, fitted.params_)
  assert again.history_ == fitted.history_
  assert fitted.best_epoch_ == 1 + int(
    np.argmin([h["val_loss"] for h in fitted.history_])
  )


def _fit(X, lengths=None, **kwargs):
  return SequenceAutoencoder(**{**TINY, **kwargs}).fit(X, lengths=lengths)


@pytest.mark.parametrize(
  "call, match",
  [
    (lambda m: _fit([np.array([[0.0], [np.nan]])]), "NaN or infinite"),
    (lambda m: _fit(np.zeros((4, 5))), "rank 2"),
    (lambda m: _fit([np.zeros(5)]), r"x\[:, None\]"),
    (lambda m: _fit([np.zeros((3, 2)), np.zeros((0, 2))]), "1 is empty"),
    (lambda m: _fit([]), "no sequences"),
    (lambda m: _fit([np.zeros((3, 2)), np.zeros((3, 3))]), "3 features"),
    (lambda m: _fit(np.zeros((2, 3, 1)), lengths=[3, 0]), "no empty"),
    (lambda m: _fit([np.array([["a"]])]), "not numeric"),
    (lambda m: _fit(np.zeros((2, 3, 1)), variant="vae"), "variant"),
    (lambda m: _fit(np.zeros((2, 3, 1)), future_steps=3), "future_steps"),
    (lambda m: m.transform([np.zeros((4, 3))]), "fitted on 2"),
    (lambda m: m.transform(np.zeros((1, 4, 2)), lengths=[5]), r"\[1, 4\]"),
    (lambda m: m.encode(_sequences(), which="x"), "which"),
    (
      lambda m: SequenceAutoencoder().transform([np.zeros((2, 1))]),
      "not fitted",
    ),
    (
      lambda m: (
        copy.copy(m).set_params(variant="future").score_samples(_sequences())
      ),
      "no reconstruct decoder",
    ),
  ],
)
def test_bad_input_gets_a_clear_error(fitted, call, match):
  with pytest.raises(ValueError, match=match):
    call(fitted)


def test_the_keras_tutorial_sequence_reconstructs():
  x_1x9x1 = np.linspace(0.1, 0.9, 9, dtype=np.float32).reshape(1, 9, 1)
  ae = SequenceAutoencoder(
    units=32, epochs=300, learning_rate=1e-2, validation_fraction=0, verbose=0
  ).fit(x_1x9x1)
  np.testing.assert_allclose(ae.reconstruct(x_1x9x1), x_1x9x1, atol=0.02)
  assert ae.transform(x_1x9x1).shape == (1, 32)

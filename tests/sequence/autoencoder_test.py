"""Tests of SequenceAutoencoder: masking, persistence, errors, the toy."""

import copy

import jax
import numpy as np
import pytest
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
  # c and h of 2 layers, and the top layer's mean h: encoding="mean"
  assert fitted.transform(seqs).shape == (len(seqs), 5 * 8)


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
    (lambda m: _fit(np.ones((2, 3, 1), complex)), "X is complex"),
    (lambda m: _fit([np.ones((3, 1)), np.ones((3, 1)) * 1j]), "1 is complex"),
    (lambda m: m.transform(np.ones((1, 3, 2), complex)), "X is complex"),
    (
      lambda m: _fit([np.array([[0.0], [-1e39]])]),
      r"0's value -1e\+39 at step 1, feature 0 exceeds float32's range "
      r"\(±3.4e38\)",
    ),
    (
      lambda m: m.transform(np.full((1, 3, 2), 1e300)),
      r"Sequence 0's value 1e\+300 at step 0, feature 0 exceeds float32's",
    ),
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
        copy.copy(m).set_params(variant="future").reconstruct(_sequences())
      ),
      "no reconstruct decoder",
    ),
    (lambda m: m.score_samples([np.zeros((5, 2)), np.zeros((2, 2))]), "1 has"),
  ],
)
def test_bad_input_gets_a_clear_error(fitted, call, match):
  with pytest.raises(ValueError, match=match):
    call(fitted)


def test_the_keras_tutorial_sequence_reconstructs():
  x_1x9x1 = np.linspace(0.1, 0.9, 9, dtype=np.float32).reshape(1, 9, 1)
  ae = SequenceAutoencoder(
    variant="autoencoder",
    units=32,
    encoding="h",
    epochs=300,
    learning_rate=1e-2,
    validation_fraction=0,
    verbose=0,
  ).fit(x_1x9x1)
  np.testing.assert_allclose(ae.reconstruct(x_1x9x1), x_1x9x1, atol=0.02)
  assert ae.transform(x_1x9x1).shape == (1, 32)


@pytest.mark.parametrize(
  "name, value",
  [
    ("epochs", 1.9),
    ("epochs", 0),
    ("units", 1.5),
    ("units", True),  # bools are not integers
    ("num_layers", np.float64(2)),
    ("batch_size", "32"),
    ("patience", 0.5),
    ("patience", 0),
    ("future_steps", 1.5),
    ("random_state", -1),
    ("random_state", None),
    ("verbose", 0.5),
    ("learning_rate", np.nan),
    ("learning_rate", 0),
    ("learning_rate", None),
    ("clip_norm", "1"),
    ("validation_fraction", None),
    ("clip_norm", -1.0),
    ("validation_fraction", np.nan),
    ("validation_fraction", True),
    ("scale", "yes"),
    ("conditional_future", 1),
    ("activation", "swish"),
    ("encoding", "mean "),
    ("variant", None),
  ],
)
def test_every_setting_is_checked_in_fit_and_named(name, value):
  """scikit-learn's convention: the constructor stores, fit validates."""
  ae = SequenceAutoencoder(**{**TINY, name: value})
  with pytest.raises(ValueError, match=f"^{name}"):
    ae.fit(_sequences())
  assert not hasattr(ae, "params_")


def test_integer_settings_of_numpy_types_are_accepted():
  ae = SequenceAutoencoder(
    **{**TINY, "units": np.int64(8), "epochs": np.int32(1)}
  ).fit(_sequences())
  assert len(ae.history_) == 1


def _anomaly_data(seed=0):
  """Noisy sines (normal) and noise (anomalies), 3 features, the last
  constant."""
  rng = np.random.default_rng(seed)
  t = np.arange(12)[:, None]

  def normal(n):
    phase = rng.uniform(0, 6, (n, 1, 1))
    waves = np.concatenate([np.sin(t / 2 + phase), np.cos(t / 2 + phase)], -1)
    return waves + 0.05 * rng.normal(size=waves.shape)

  anomalies = rng.normal(size=(8, 12, 2))
  test = np.concatenate([normal(24), anomalies])
  train, test = (
    np.pad(x, [(0, 0)] * 2 + [(0, 1)], constant_values=5.0)
    for x in (normal(48), test)
  )
  return train, test, np.r_[np.zeros(24), np.ones(8)]


def test_data_scaled_by_1e_9_gets_the_same_anomaly_scores():
  """Standardising makes units irrelevant: only an exactly constant feature
  (here the third) keeps scale 1."""
  from sklearn.metrics import roc_auc_score  # noqa: PLC0415

  train, test, is_anomaly = _anomaly_data()
  settings = dict(units=8, epochs=30, validation_fraction=0, verbose=0)
  ae = SequenceAutoencoder(**settings).fit(train)
  tiny = SequenceAutoencoder(**settings).fit(1e-9 * train)
  np.testing.assert_allclose(tiny.scale_, [1e-9, 1e-9, 1] * ae.scale_, 1e-5)
  assert ae.scale_[2] == 1
  scores = ae.score_samples(test)
  tiny_scores = tiny.score_samples(1e-9 * test)
  np.testing.assert_allclose(tiny_scores, scores, rtol=1e-3)
  auc = roc_auc_score(is_anomaly, scores)
  assert auc > 0.95 and roc_auc_score(is_anomaly, tiny_scores) == auc


def test_non_finite_parameters_are_refused(fitted, tmp_path):
  nans = copy.copy(fitted)
  nans.params_ = jax.tree.map(lambda a: a * np.nan, fitted.params_)
  from tests.sequence.saving_test import _save_before_checksums

  for folder, save in [
    (tmp_path / "with_checksums", lambda m, d: m.save(str(d))),
    (tmp_path / "without", _save_before_checksums),
  ]:
    save(nans, folder)
    with pytest.raises(ValueError, match="params/decoder_.* holds NaN or inf"):
      SequenceAutoencoder.load(str(folder))


def test_the_default_models_scores_of_its_training_data_beat_the_mean():
  """The score is the model's own objective: a composite trained to read
  the first L - K steps must not be scored on reconstructing all L (issue
  35: the first steps' error was 1.9, worse than predicting the mean)."""
  rng = np.random.default_rng(0)
  t = np.arange(275)
  freq, phase = rng.uniform(0.02, 0.06, (2, 40, 1)) * [[[1]], [[100]]]
  x = np.sin(freq * t + phase) + 0.1 * rng.standard_normal((40, 275))
  ae = SequenceAutoencoder(epochs=40, verbose=0).fit(x[..., None])
  assert ae.variant == "composite" and ae.future_steps_ > 0
  scores_N, steps_NxT = ae.score_samples(x[..., None], per_step=True)
  # Predicting the mean scores each step's squared standardised value.
  mean_NxT = np.square((x - ae.mean_[0]) / ae.scale_[0])
  assert scores_N.mean() < 0.5 * mean_NxT.mean()
  for part in (slice(0, 10), slice(-10, None)):  # first and last steps
    assert steps_NxT[:, part].mean() < mean_NxT[:, part].mean()

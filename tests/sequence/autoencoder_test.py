"""Tests of SequenceAutoencoder: masking, persistence, errors, the toy."""

import copy
import hashlib
import json
import logging

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


def test_a_folder_in_the_saved_format_loads(fitted, tmp_path, caplog):
  """The format, written here by hand: settings.json is plain JSON (a format
  tag, the constructor's settings, fitted ints, the history) and
  params.msgpack plain arrays. No module path nor pickled class, so folders
  saved before the modules moved (lstm_unsup.sequence_*) load unchanged.
  checksums.sha256 (sha256sum's format) came later: a folder without it
  loads, with a warning that it was not verified."""
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
  manifest = (tmp_path / "saved" / "checksums.sha256").read_text()
  assert manifest == "".join(
    f"{hashlib.sha256((tmp_path / 'saved' / name).read_bytes()).hexdigest()}"
    f"  {name}\n"
    for name in ("settings.json", "params.msgpack")
  )
  with caplog.at_level(logging.WARNING):
    loaded = SequenceAutoencoder.load(str(folder))
  assert f"{folder} was saved before checksums; not verified" in caplog.text
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


def _overwrite_8_bytes(path):
  data = bytearray(path.read_bytes())
  data[len(data) // 2 : len(data) // 2 + 8] = b"\x00" * 8
  path.write_bytes(bytes(data))


def _edit_settings(folder, **changes):
  path = folder / "settings.json"
  saved = json.loads(path.read_text())
  saved["settings"].update(changes)
  path.write_text(json.dumps(saved, indent=1))


@pytest.mark.parametrize(
  "damage, file",
  [
    (lambda d: _overwrite_8_bytes(d / "params.msgpack"), "params.msgpack"),
    (lambda d: _edit_settings(d, activation="relu"), "settings.json"),
    (lambda d: _edit_settings(d, variant="autoencoder"), "settings.json"),
  ],
  ids=["8 bytes of params", "activation", "variant"],
)
def test_a_changed_or_damaged_save_is_refused_naming_the_file(
  fitted, tmp_path, damage, file
):
  folder = tmp_path / "saved"
  fitted.save(str(folder))
  damage(folder)
  with pytest.raises(ValueError) as e:
    SequenceAutoencoder.load(str(folder))
  assert str(e.value).startswith(
    f"{folder / file} does not match its checksum in checksums.sha256: the "
    "file was changed or damaged."
  )


def _save_before_checksums(model, folder):
  model.save(str(folder))
  (folder / "checksums.sha256").unlink(missing_ok=True)


def test_non_finite_parameters_are_refused(fitted, tmp_path):
  nans = copy.copy(fitted)
  nans.params_ = jax.tree.map(lambda a: a * np.nan, fitted.params_)
  for folder, save in [
    (tmp_path / "with_checksums", lambda m, d: m.save(str(d))),
    (tmp_path / "without", _save_before_checksums),
  ]:
    save(nans, folder)
    with pytest.raises(ValueError, match="params/decoder_.* holds NaN or inf"):
      SequenceAutoencoder.load(str(folder))


@pytest.mark.parametrize(
  "changes, match",
  [
    (dict(activation="swish"), "activation='swish' is not one of"),
    (dict(variant="vae"), "variant='vae' is not one of"),
    (dict(units=1.5), "units must be an integer >= 1; got 1.5"),
    (
      dict(units=16),
      r"params/decoder_future/lstm/layer_0/bias is \(32,\) in .* but \(64,\)",
    ),
    (dict(variant="autoencoder"), "params/decoder_future/.* is not part of"),
    (dict(layers=2), r"unknown settings \['layers'\]"),
  ],
)
def test_settings_saved_before_checksums_are_checked(
  fitted, tmp_path, changes, match
):
  """Without a checksum an edit is not seen as such, but settings that the
  constructor refuses, or that do not fit the parameters, are refused."""
  folder = tmp_path / "saved"
  _save_before_checksums(fitted, folder)
  _edit_settings(folder, **changes)
  with pytest.raises(ValueError, match=match) as e:
    SequenceAutoencoder.load(str(folder))
  assert str(folder / "settings.json") in str(e.value)


def test_a_path_that_is_not_a_saved_model_gets_one_clear_error(tmp_path):
  a_file = tmp_path / "model.msgpack"
  a_file.write_bytes(b"\x00")
  with pytest.raises(ValueError, match="is a file, not a folder saved by"):
    SequenceAutoencoder.load(str(a_file))
  with pytest.raises(FileNotFoundError, match="does not exist"):
    SequenceAutoencoder.load(str(tmp_path / "missing"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="empty/settings.json not found"):
    SequenceAutoencoder.load(str(tmp_path / "empty"))
  (tmp_path / "empty" / "settings.json").write_text("{")
  with pytest.raises(FileNotFoundError, match="empty/params.msgpack not found"):
    SequenceAutoencoder.load(str(tmp_path / "empty"))
  (tmp_path / "empty" / "params.msgpack").write_bytes(b"")
  with pytest.raises(ValueError, match="settings.json is not JSON"):
    SequenceAutoencoder.load(str(tmp_path / "empty"))

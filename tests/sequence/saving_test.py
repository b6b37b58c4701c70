"""Saving and loading a SequenceAutoencoder (sequence/saving.py): exact
round trips, checksums, older folders and clear errors."""

import hashlib
import json
import logging

import jax
import numpy as np
import pytest
from flax import serialization

from lstm_unsup import SequenceAutoencoder
from tests.sequence.autoencoder_test import TINY, F, _sequences


def _overwrite_8_bytes(path):
  data = bytearray(path.read_bytes())
  data[len(data) // 2 : len(data) // 2 + 8] = b"\x00" * 8
  path.write_bytes(bytes(data))


def _edit_settings(folder, **changes):
  path = folder / "settings.json"
  saved = json.loads(path.read_text())
  saved["settings"].update(changes)
  path.write_text(json.dumps(saved, indent=1))


def _save_before_checksums(model, folder):
  model.save(str(folder))
  (folder / "checksums.sha256").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def fitted():
  return SequenceAutoencoder(**TINY).fit(_sequences())


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


def _rewrite_arrays(folder, change):
  """The saved arrays, changed by `change(arrays)`, written back without
  checksums (as an older save, or a hand that rewrote them)."""
  path = folder / "params.msgpack"
  arrays = serialization.msgpack_restore(path.read_bytes())
  change(arrays)
  path.write_bytes(serialization.msgpack_serialize(arrays))
  (folder / "checksums.sha256").unlink()


def _first_param(arrays):
  node = arrays["params"]
  while isinstance(node, dict):
    key = sorted(node)[0]
    parent, node = node, node[key]
  return parent, key


@pytest.mark.parametrize(
  "change, message",
  [
    (lambda a: a.update(mean=a["mean"].astype(bool)), "mean is bool"),
    (lambda a: a.update(std=np.full_like(a["std"], 1e-45)), "std holds NaN"),
    (
      lambda a: (lambda p, k: p.__setitem__(k, p[k].astype(np.complex64)))(
        *_first_param(a)
      ),
      "is complex64 in it but float32",
    ),
    (
      lambda a: (lambda p, k: p.__setitem__(k, p[k].astype(np.float16)))(
        *_first_param(a)
      ),
      "is float16 in it but float32",
    ),
    (
      lambda a: (lambda p, k: p.__setitem__(k, p[k].astype(np.int32)))(
        *_first_param(a)
      ),
      "is int32 in it but float32",
    ),
  ],
)
def test_saved_arrays_of_another_dtype_or_a_tiny_scale_are_refused(
  fitted, tmp_path, change, message
):
  folder = tmp_path / "ae"
  fitted.save(str(folder))
  _rewrite_arrays(folder, change)
  with pytest.raises(ValueError, match=message):
    SequenceAutoencoder.load(str(folder))


def _edit_saved(folder, field, value):
  """settings.json with `field` set to `value`, written without checksums
  (as an older save, or a hand that edited it)."""
  path = folder / "settings.json"
  saved = json.loads(path.read_text())
  saved[field] = value
  path.write_text(json.dumps(saved))
  (folder / "checksums.sha256").unlink()


@pytest.mark.parametrize(
  "history, message",
  [
    ([1], "history entry 0 is 1, not an object"),
    ({"loss": 1.0}, "history is {'loss': 1.0}, not a list"),
    ([{"epoch": 1, "loss": 1.0}, "x"], "history entry 1 is 'x', not an object"),
    ([{"epoch": 1, "lr": "fast"}], "history entry 0 has lr='fast'"),
  ],
  ids=["[1]", "an object", "a string entry", "a string rate"],
)
def test_a_malformed_history_is_refused_naming_the_file(
  fitted, tmp_path, history, message
):
  folder = tmp_path / "ae"
  fitted.save(str(folder))
  _edit_saved(folder, "history", history)
  with pytest.raises(ValueError) as e:
    SequenceAutoencoder.load(str(folder))
  assert str(e.value).startswith(f"{folder / 'settings.json'}: {message}")


@pytest.mark.parametrize("name", ["settings.json", "params.msgpack"])
def test_a_folder_in_place_of_a_saved_file_is_named(fitted, tmp_path, name):
  folder = tmp_path / "ae"
  fitted.save(str(folder))
  (folder / name).unlink()
  (folder / name).mkdir()
  with pytest.raises(ValueError) as e:
    SequenceAutoencoder.load(str(folder))
  assert str(e.value).startswith(
    f"{folder / name} is a folder, not a file: {folder} is not a folder "
    "saved by SequenceAutoencoder.save"
  )

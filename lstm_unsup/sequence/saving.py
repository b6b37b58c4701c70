"""Saving and loading a fitted `SequenceAutoencoder`: plain JSON settings,
plain arrays (`flax.serialization`) and their SHA-256, each file written
atomically and every value checked on load."""

import json
import logging
import numbers
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization, traverse_util

from lstm_unsup import files as files_lib
from lstm_unsup.data import checksums
from lstm_unsup.sequence import data

FORMAT = "lstm_unsup.SequenceAutoencoder/1"  # in every saved settings.json
FITTED = ("n_features_in_", "future_steps_", "best_epoch_", "frame_")  # ints
FITTED_BEFORE_FRAMES = {"frame_": 1}  # folders saved before `frame` load so
SETTINGS, PARAMS = "settings.json", "params.msgpack"  # what save writes
CHECKSUMS = "checksums.sha256"  # their SHA-256, in sha256sum's format

logger = logging.getLogger(__name__)


def save(model, path: str) -> None:
  """Writes `path/settings.json`, `path/params.msgpack` and
  `path/checksums.sha256`, the SHA-256 of both. The checksums are written
  first and each file atomically, so a save cut short leaves files that
  fail their checksums rather than files that look whole."""
  model._need(model._decoders[0])
  settings = {
    "format": FORMAT,
    "settings": model.get_params(),
    "fitted": {name: int(getattr(model, name)) for name in FITTED},
    "history": model.history_,
  }
  arrays = {"params": model.params_, "mean": model.mean_, "std": model.scale_}
  arrays = jax.tree.map(np.asarray, arrays)
  files = {
    SETTINGS: json.dumps(settings, indent=1).encode(),
    PARAMS: serialization.msgpack_serialize(arrays),
  }
  folder = Path(path)
  folder.mkdir(parents=True, exist_ok=True)
  checksums.write(folder / CHECKSUMS, files)
  for name, blob in files.items():
    files_lib.write_atomically(folder / name, blob)


def load(cls, path: str):
  """The model `save` wrote: the same outputs, bit for bit. A ValueError
  naming the file if a file fails its checksum, a setting is one the
  constructor refuses or does not fit the parameters, or a parameter is
  not finite; a folder saved before checksums loads with a warning."""
  folder = Path(path)
  files = _read_saved(folder)
  if (folder / CHECKSUMS).exists():
    problem = checksums.mismatch(folder / CHECKSUMS, files)
    if problem:
      raise ValueError(
        f"{problem}. Save the model again, or restore the folder from a copy."
      )
  else:
    logger.warning("%s was saved before checksums; not verified.", folder)
  model = _from_settings(cls, folder / SETTINGS, files[SETTINGS])
  where = folder / PARAMS
  try:
    arrays = serialization.msgpack_restore(files[PARAMS])
    params, mean, std = arrays["params"], arrays["mean"], arrays["std"]
    if not isinstance(params, dict):
      raise TypeError(f"params is a {type(params).__name__}, not a dict")
  except (ValueError, TypeError, KeyError) as e:  # msgpack's are ValueErrors
    raise ValueError(
      f"{where} cannot be read as saved parameters ({e!r})."
    ) from e
  _check_arrays(model, where, folder / SETTINGS, params, mean, std)
  model.mean_, model.scale_ = mean, std
  model.params_ = jax.tree.map(jnp.asarray, params)
  return model


def _from_settings(cls, where: Path, blob: bytes):
  """The unfitted model that a settings.json describes, every value
  checked as by fit, with the fitted sizes and history."""
  try:
    saved = json.loads(blob)
  except ValueError as e:  # also a UnicodeDecodeError
    raise ValueError(f"{where} is not JSON ({e}).") from e
  if not isinstance(saved, dict) or saved.get("format") != FORMAT:
    found = saved.get("format") if isinstance(saved, dict) else saved
    raise ValueError(f"{where} holds {found!r}, not a saved {FORMAT}.")
  if not (
    isinstance(saved.get("settings"), dict)
    and isinstance(saved.get("fitted"), dict)
    and "history" in saved
  ):
    raise ValueError(f"{where} lacks the settings, fitted sizes or history.")
  unknown = set(saved["settings"]) - set(cls._get_param_names())
  if unknown:
    raise ValueError(f"{where} has unknown settings {sorted(unknown)}.")
  model = cls(**saved["settings"])
  try:
    model._check_settings()
    fitted = {**FITTED_BEFORE_FRAMES, **saved["fitted"]}
    for name in FITTED:
      least = 1 if name in ("n_features_in_", "frame_") else 0
      data.check_integer(name, fitted.get(name), least)
  except ValueError as e:
    raise ValueError(f"{where}: {e}") from e
  for name in FITTED:
    setattr(model, name, fitted[name])
  model.history_ = _checked_history(where, saved["history"])
  if model.history_ and "lr" in model.history_[0]:  # the rate it started at
    model.learning_rate_ = model.history_[0]["lr"]
  return model


def _checked_history(where: Path, history):
  """`history` if it is what fit records (a list of one object per epoch,
  with a positive learning rate "lr"), else a ValueError naming the file."""
  if not isinstance(history, list):
    raise ValueError(f"{where}: history is {history!r:.60}, not a list.")
  for k, entry in enumerate(history):
    if not isinstance(entry, dict):
      raise ValueError(
        f"{where}: history entry {k} is {entry!r:.60}, not an object."
      )
    rate = entry.get("lr", 1.0)
    if not (data.is_number(rate, numbers.Real) and 0 < rate < float("inf")):
      raise ValueError(
        f"{where}: history entry {k} has lr={rate!r:.60}, not a positive "
        "learning rate."
      )
  return history


def _check_arrays(model, where: Path, settings: Path, params, mean, std):
  """A ValueError naming the array unless the parameters are those of the
  network the settings describe (names, shapes and dtypes) and every array
  is finite, with a scale of at least float32's smallest normal number."""
  F = model.n_features_in_
  K = max(model.future_steps_, 1)
  shapes = jax.eval_shape(
    lambda x, mask: model._network.init(jax.random.key(0), x, mask, K),
    jnp.zeros((1, 1, F * model.frame_)),
    jnp.ones((1, 1), bool),
  )["params"]
  scaling = jax.ShapeDtypeStruct((F,), np.float32)
  want = traverse_util.flatten_dict(shapes, sep="/")
  want |= {"mean": scaling, "std": scaling}
  got = traverse_util.flatten_dict(params, sep="/")
  got |= {"mean": mean, "std": std}
  for name in sorted(want.keys() | got.keys()):
    label = name if name in ("mean", "std") else f"params/{name}"
    if name not in got:
      raise ValueError(
        f"{where}: {label} is missing from it, but the model that "
        f"{settings} describes has it."
      )
    if name not in want:
      raise ValueError(
        f"{where}: {label} is not part of the model that {settings} describes."
      )
    array = np.asarray(got[name])
    if array.shape != want[name].shape:
      raise ValueError(
        f"{where}: {label} is {array.shape} in it but "
        f"{want[name].shape} in the model that {settings} describes."
      )
    if array.dtype != want[name].dtype:
      raise ValueError(
        f"{where}: {label} is {array.dtype} in it but {want[name].dtype} in "
        f"the model that {settings} describes; refusing it."
      )
    # A scale below float32's smallest normal number divides into inf.
    tiny = np.finfo(np.float32).tiny
    if not np.isfinite(array).all() or (name == "std" and array.min() < tiny):
      raise ValueError(
        f"{where}: {label} holds NaN or infinite values"
        f"{f' or a scale below {tiny:.3g}' * (name == 'std')}; refusing a "
        "model whose outputs would be wrong."
      )


def _read_saved(folder: Path) -> dict[str, bytes]:
  """The bytes of each file `save` writes, or an error naming what is
  missing."""
  what = "a folder saved by SequenceAutoencoder.save"
  if not folder.exists():
    raise FileNotFoundError(f"{folder} does not exist.")
  if not folder.is_dir():
    raise ValueError(f"{folder} is a file, not {what}.")
  files = {}
  for name in (SETTINGS, PARAMS):
    try:
      files[name] = (folder / name).read_bytes()
    except FileNotFoundError as e:
      raise FileNotFoundError(
        f"{folder / name} not found: {folder} is not {what} (which holds "
        f"{SETTINGS} and {PARAMS})."
      ) from e
    except IsADirectoryError as e:
      raise ValueError(
        f"{folder / name} is a folder, not a file: {folder} is not {what}."
      ) from e
  return files

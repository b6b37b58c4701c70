"""Checks of a configuration, made before any compute.

Each problem raises a ConfigError (a ValueError) that names the offending
field and says what would be accepted, so a typo, a value of the wrong type
or an impossible combination fails in a second, not after compilation.
`folder.RunDir.check` refuses to resume a workdir that another config
made, with `RESUMABLE_CHANGES`.
"""

import math
import numbers
from typing import Any

import ml_collections

from lstm_unsup import checks, input_pipeline, models
from lstm_unsup.configs import default
from lstm_unsup.data import digits, moving_mnist, splits, videos
from lstm_unsup.optim import optimizers

DIGIT_SIZE = 28


class ConfigError(ValueError):
  """A bad configuration; the message names the field."""


# Fields that may change when a run is resumed (they do not change what the
# run computes up to its current step).
RESUMABLE_CHANGES = (
  "train.num_steps",
  "train.train_seconds",
  "train.log_every_steps",
  "train.eval_every_steps",
  "train.checkpoint_every_steps",
  "train.keep_checkpoints",
  "train.num_devices",
  "train.skip_nonfinite",
  "optim.native",  # the same update, rounded as XLA or the kernel rounds
  "eval.",
  "data.data_dir",
  "data.source",
)

# Fields added since runs were first saved, with the value that reproduces a
# patches run whose config.json lacks them (`fill_added_fields`).
ADDED_PATCH_FIELDS = {"data.split_at_cuts": False}


def _get(config, field: str) -> Any:
  for key in field.split("."):
    config = config[key]
  return config


def _choice(config, field: str, choices) -> None:
  value = _get(config, field)
  checks.check_choice(value, choices, f"config.{field}", ConfigError)


def _positive(config, *fields: str, allow_zero: bool = False) -> None:
  for field in fields:
    value = _get(config, field)
    if value < 0 or (value == 0 and not allow_zero):
      bound = ">= 0" if allow_zero else ">= 1"
      raise ConfigError(f"config.{field} must be {bound}; got {value}.")


def _in_range(config, field: str, low: float, high: float, *, open_high=False):
  """low <= value <= high (or < high); NaN and infinities fail."""
  value = _get(config, field)
  above = value >= high if open_high else value > high
  if not math.isfinite(value) or value < low or above:
    bracket = ")" if open_high else "]"
    raise ConfigError(
      f"config.{field} must be in [{low:g}, {high:g}{bracket}; got {value}."
    )


def check_types(values: dict[str, Any]) -> None:
  """Raises ConfigError naming a field whose value has the wrong type.

  A field has the type of its default: an int field takes an int (not a
  bool), a float field an int or a float, a bool or str field only that.
  """
  scale = values.get("scale", "quick")
  if scale not in default.SCALES:
    raise ConfigError(f"config.scale={scale!r} is not one of {default.SCALES}.")
  reference = flatten(default.get_config(scale).to_dict())
  for field, value in flatten(values).items():
    expected = type(reference[field])
    number = {int: numbers.Integral, float: numbers.Real}.get(expected)
    if number is not None:  # numpy integers too; never a bool
      ok = isinstance(value, number) and not isinstance(value, bool)
    else:
      ok = isinstance(value, expected)
    if not ok:
      raise ConfigError(
        f"config.{field} must be of type {expected.__name__}; got "
        f"{value!r} ({type(value).__name__})."
      )


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first bad field of `config`."""
  check_is_config(config)
  values = config.to_dict()
  check_known_fields(values)
  check_types(values)
  _check_choices(config)
  _check_ranges(config)
  _check_combinations(config)


def check_is_config(config) -> None:
  """Raises ConfigError unless `config` is a ConfigDict (what a config
  file's get_config() must return)."""
  if not isinstance(config, ml_collections.ConfigDict):
    kind = type(config).__name__
    article = "an" if kind[0] in "aeiou" else "a"
    raise ConfigError(
      f"--config gave {article} {kind} ({config!r:.60}), not an "
      "ml_collections.ConfigDict: its get_config() must return one."
    )


def _check_choices(config) -> None:
  for field, choices in models.CHOICES.items():
    _choice(config, f"model.{field}", choices)
  _choice(config, "data.dataset", input_pipeline.DATASETS)
  _choice(config, "data.source", digits.SOURCES)
  _choice(config, "data.bounce", moving_mnist.BOUNCES)
  _choice(config, "data.layout", videos.LAYOUTS)
  _choice(config, "data.split", splits.HOWS)
  _choice(config, "optim.name", optimizers.NAMES)


def _check_ranges(config) -> None:
  _positive(
    config,
    "model.hidden",
    "model.num_layers",
    "model.conv_kernel",
    "model.patch_size",
    "data.num_input_frames",
    "data.num_digits",
    "data.image_size",
    "train.batch_size",
    "train.num_steps",
    "train.keep_checkpoints",
    "eval.batch_size",
    "eval.num_valid_sequences",
    "eval.num_test_sequences",
  )
  _positive(
    config,
    "seed",
    "model.num_future",
    "train.log_every_steps",
    "train.eval_every_steps",
    "train.checkpoint_every_steps",
    "train.num_devices",
    "eval.num_figure_sequences",
    "optim.warmup_steps",
    allow_zero=True,
  )
  decay = config.optim.decay_steps
  if decay < -1:
    raise ConfigError(
      f"config.optim.decay_steps must be >= 0, or -1 (decay to "
      f"train.num_steps); got {decay}."
    )
  last = config.train.num_steps if decay == -1 else decay
  if last and last <= config.optim.warmup_steps:
    raise ConfigError(
      f"config.optim.warmup_steps ({config.optim.warmup_steps}) must be "
      f"fewer than the steps of the cosine decay, config.optim.decay_steps "
      f"({decay}{' = train.num_steps' if decay == -1 else ''}: {last})."
    )
  seconds = config.train.train_seconds
  if not (math.isfinite(seconds) and seconds >= 0):
    raise ConfigError(
      f"config.train.train_seconds must be >= 0 and finite; got {seconds}."
    )
  for field in ("optim.learning_rate", "optim.clip_norm", "optim.update_clip"):
    value = _get(config, field)
    if not (math.isfinite(value) and value > 0):
      raise ConfigError(f"config.{field} must be > 0 and finite; got {value}.")
  _in_range(config, "optim.momentum", 0.0, 1.0, open_high=True)
  _in_range(config, "optim.l2", 0.0, 1.0)
  _in_range(config, "data.step_length", 0.0, 1.0)
  _in_range(config, "data.valid_fraction", 0.0, 0.5)
  _in_range(config, "data.test_fraction", 0.0, 0.5)
  _positive(config, "data.split_gap_frames", allow_zero=True)
  for field in ("model.forget_bias", "model.readout_bias"):
    if not math.isfinite(_get(config, field)):
      raise ConfigError(
        f"config.{field} must be finite; got {_get(config, field)}."
      )


def _check_combinations(config) -> None:
  names = models.DECODER_SETS[config.model.decoders]
  if "future" in names and config.model.num_future < 1:
    kind = "conditional " if config.model.conditional_future else ""
    raise ConfigError(
      f"config.model.num_future is 0 but the {kind}future decoder of "
      f"config.model.decoders={config.model.decoders!r} needs >= 1 frames."
    )
  if config.model.conditional_future and "future" not in names:
    raise ConfigError(
      "config.model.conditional_future is set but config.model.decoders="
      f"{config.model.decoders!r} has no future decoder."
    )
  if config.model.conditional_reconstruct and "reconstruct" not in names:
    raise ConfigError(
      "config.model.conditional_reconstruct is set but config.model.decoders="
      f"{config.model.decoders!r} has no reconstruction decoder."
    )
  devices = config.train.num_devices
  if devices and config.train.batch_size % devices:
    raise ConfigError(
      f"config.train.batch_size={config.train.batch_size} does not split "
      f"evenly over config.train.num_devices={devices}."
    )
  patches = config.data.dataset == "patches"
  if patches and config.model.output != "real":
    raise ConfigError(
      "config.model.output must be 'real' for config.data.dataset='patches' "
      "(normalised colour values, squared loss)."
    )
  size, patch = config.data.image_size, config.model.patch_size
  if config.model.cell == "conv" and size % patch:
    raise ConfigError(
      f"config.model.patch_size={patch} does not divide "
      f"config.data.image_size={size}: a ConvLSTM reads frames as a grid of "
      "patches."
    )
  if not patches and config.data.image_size < DIGIT_SIZE:
    raise ConfigError(
      f"config.data.image_size={config.data.image_size} is smaller than the "
      f"{DIGIT_SIZE}x{DIGIT_SIZE} digits."
    )
  if config.eval.mnist_test_seq and (
    patches
    or config.data.image_size != 64
    or config.data.num_input_frames + config.model.num_future > 20
  ):
    raise ConfigError(
      "config.eval.mnist_test_seq holds 20 frames of 64x64 digits, which "
      f"does not match config.data.image_size={config.data.image_size} with "
      f"{config.data.num_input_frames} + {config.model.num_future} frames "
      f"(config.data.dataset={config.data.dataset!r})."
    )


def check_known_fields(values: dict[str, Any], scale: str = "quick") -> None:
  """Raises ConfigError naming any field that the default config lacks."""
  reference = default.get_config(scale).to_dict()

  def walk(given, known, prefix):
    for key, value in given.items():
      if key not in known:
        raise ConfigError(
          f"Unknown config field config.{prefix}{key}; known fields of "
          f"config.{prefix or ''}: {sorted(known)}."
        )
      if isinstance(known[key], dict) != isinstance(value, dict):
        kind = (
          "a group of fields" if isinstance(known[key], dict) else "a value"
        )
        raise ConfigError(f"config.{prefix}{key} must be {kind}.")
      if isinstance(known[key], dict):
        walk(value, known[key], f"{prefix}{key}.")

  walk(values, reference, "")


def from_dict(values: dict[str, Any]) -> ml_collections.ConfigDict:
  """A config from a plain dict (e.g. a run's config.json), checked."""
  if not isinstance(values, dict):
    raise ConfigError(f"A config must be a dict of fields; got {values!r}.")
  check_known_fields(values)
  check_types(values)
  config = default.get_config(values.get("scale", "cpu"))
  config.update_from_flattened_dict(fill_added_fields(flatten(values)))
  validate(config)
  return config


def fill_added_fields(flat: dict[str, Any]) -> dict[str, Any]:
  """A flattened run config with the fields it predates set as they were
  then (a patches run from before `split_at_cuts` split across cuts)."""
  if flat.get("data.dataset") != "patches":
    return flat
  return {**ADDED_PATCH_FIELDS, **flat}


def flatten(values, prefix=""):
  flat = {}
  for key, value in values.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f"{prefix}{key}."))
    else:
      flat[prefix + key] = value
  return flat

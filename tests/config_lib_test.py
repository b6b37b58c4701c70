"""Tests for the config checks (lstm_unsup/config_lib.py): every malformed
config fails with a ConfigError naming the field, and nothing else."""

import copy
import math

import ml_collections
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstm_unsup import config_lib
from lstm_unsup.configs import default

DEFAULTS = default.get_config("quick").to_dict()
DEFAULTS_FLAT = config_lib.flatten(DEFAULTS)
FIELDS = sorted(DEFAULTS_FLAT)

# Any JSON-like value: the wrong types, NaN, infinities, huge and negative
# numbers, empty and odd strings, lists and groups.
ANY_VALUE = st.recursive(
  st.none()
  | st.booleans()
  | st.integers(-(2**40), 2**40)
  | st.floats(allow_nan=True, allow_infinity=True)
  | st.sampled_from(["", "composite", "binary", "-1", "nan", "x" * 300]),
  lambda inner: (
    st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "hidden"]), inner, max_size=2)
  ),
  max_leaves=4,
)


def _set(values: dict, field: str, value) -> dict:
  values = copy.deepcopy(values)
  *groups, key = field.split(".")
  node = values
  for group in groups:
    node = node[group]
  node[key] = value
  return values


def _check(values: dict) -> str | None:
  """The ConfigError message for `values`, or None if they are accepted.
  Any other exception fails the test."""
  try:
    config_lib.from_dict(values)
  except config_lib.ConfigError as e:
    return str(e)
  return None


SETTINGS = settings(
  max_examples=300,
  deadline=None,
  suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(field=st.sampled_from(FIELDS), value=ANY_VALUE)
def test_any_bad_value_of_a_field_fails_naming_that_field(field, value):
  message = _check(_set(DEFAULTS, field, value))
  if message is not None:
    assert f"config.{field}" in message, message


@SETTINGS
@given(
  changes=st.dictionaries(st.sampled_from(FIELDS), ANY_VALUE, max_size=4),
  extra=st.sampled_from([None, "model.hiden", "train.num_step", "x"]),
)
def test_any_malformed_config_fails_with_one_config_error(changes, extra):
  values = DEFAULTS
  for field, value in changes.items():
    values = _set(values, field, value)
  if extra is not None:
    values = _set(values, extra, 1)
  message = _check(values)
  if extra is not None:
    assert message is not None
  if message is not None:  # it names one of the fields that were changed
    named = [f for f in [*changes, extra] if f and f"config.{f}" in message]
    assert named, message
  else:  # accepted: then every value is of its default's type
    flat = config_lib.flatten(config_lib.from_dict(values).to_dict())
    for field in FIELDS:
      assert _same_kind(flat[field], DEFAULTS_FLAT[field]), field


def _same_kind(value, reference) -> bool:
  if isinstance(reference, bool) or isinstance(reference, str):
    return type(value) is type(reference)
  if isinstance(reference, int):
    return isinstance(value, int) and not isinstance(value, bool)
  return isinstance(value, int | float) and math.isfinite(value)


@SETTINGS
@given(
  field=st.sampled_from(
    [f for f, v in DEFAULTS_FLAT.items() if type(v) is int]
  ),
  value=st.integers(-(2**31), 2**31),
)
def test_integer_fields_accept_exactly_their_range(field, value):
  message = _check(_set(DEFAULTS, field, value))
  if value < 0 and (field, value) != ("optim.decay_steps", -1):
    assert message is not None and f"config.{field}" in message


def test_a_cosine_can_follow_the_step_count_and_must_outlast_its_warmup():
  assert _check(_set(DEFAULTS, "optim.decay_steps", -1)) is None
  values = _set(DEFAULTS, "optim.decay_steps", -1)
  values = _set(values, "optim.warmup_steps", DEFAULTS["train"]["num_steps"])
  message = _check(values)
  assert message.startswith("config.optim.warmup_steps (8) must be fewer")
  assert "config.optim.decay_steps (-1 = train.num_steps: 8)" in message
  message = _check(_set(DEFAULTS, "optim.decay_steps", -2))
  assert "config.optim.decay_steps must be >= 0, or -1" in message


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("model.hidden", None, "config.model.hidden must be of type int"),
    ("model.peepholes", 1, "config.model.peepholes must be of type bool"),
    ("optim.learning_rate", math.nan, "learning_rate must be > 0 and finite"),
    ("model.forget_bias", math.inf, "config.model.forget_bias must be finite"),
    ("optim.momentum", 1.0, r"config.optim.momentum must be in \[0, 1\)"),
    ("seed", -1, "config.seed must be >= 0"),
    ("model", 3, "config.model must be a group of fields"),
    ("scale", "huge", "config.scale='huge' is not one of"),
    ("train.num_devices", 3, "batch_size=4 does not split evenly over"),
  ],
)
def test_bad_values_are_named(field, value, message):
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.from_dict(_set(DEFAULTS, field, value))


def test_validate_checks_types_of_a_config_built_by_hand():
  config = ml_collections.ConfigDict(_set(DEFAULTS, "train.batch_size", "4"))
  with pytest.raises(config_lib.ConfigError, match="train.batch_size must be"):
    config_lib.validate(config)


@pytest.mark.parametrize("value", [42, None, {"seed": 0}])
def test_a_config_that_is_not_a_config_dict_is_named(value):
  with pytest.raises(config_lib.ConfigError, match="not an ml_collections"):
    config_lib.validate(value)

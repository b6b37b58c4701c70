"""The one check of a value against its choices (checks.py)."""

import pytest

from lstm_unsup import checks, models
from lstm_unsup.config_lib import ConfigError
from lstm_unsup.data import digits


def test_a_choice_passes_and_anything_else_is_named_with_the_choices():
  checks.check_choice("fc", ("fc", "conv"), "model.cell")
  with pytest.raises(ValueError) as e:
    checks.check_choice("lstm", ["fc", "conv"], "model.cell")
  assert str(e.value) == "model.cell='lstm' is not one of ('fc', 'conv')."
  with pytest.raises(ConfigError, match="config.x=3 is not one of"):
    checks.check_choice(3, (1, 2), "config.x", ConfigError)


def test_the_models_and_the_digit_sources_use_it():
  with pytest.raises(ValueError, match="model.handoff='pass' is not one of"):
    models.ModelConfig(handoff="pass")
  with pytest.raises(ValueError, match="digit source='web' is not one of"):
    digits.load_digits("web")

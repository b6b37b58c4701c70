"""Each config documents itself: its command, what it cost to run and what it
reached, beside the paper (big_vision's convention)."""

import importlib
import pkgutil

import pytest

from lstm_unsup import configs

NAMES = sorted(
  m.name for m in pkgutil.iter_modules(configs.__path__) if m.name != "default"
)


def test_every_config_is_checked():
  assert {"composite", "future", "autoencoder", "classifier"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_docstring_gives_command_time_and_result(name):
  doc = importlib.import_module(f"lstm_unsup.configs.{name}").__doc__
  assert f"--config=lstm_unsup/configs/{name}.py" in doc
  assert "python -m " in doc
  assert "Measured" in doc
  assert "minutes" in doc or " s per " in doc
  assert "paper" in doc

"""The one check of a value that must be one of a few choices, shared by
the models, the data sources and the config checks, so that every such
error reads the same: `config.model.cell='lstm' is not one of ('fc', ...)`.
"""

from collections.abc import Iterable


def check_choice(
  value, choices: Iterable, name: str, error: type[Exception] = ValueError
) -> None:
  """Raises `error` naming `name`, `value` and the choices, unless `value`
  is one of them."""
  choices = tuple(choices)
  if value not in choices:
    raise error(f"{name}={value!r} is not one of {choices}.")

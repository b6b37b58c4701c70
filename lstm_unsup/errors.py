"""The errors that are the user's to fix, and how every command reports them.

A bad config, data file or array, missing data, a damaged checkpoint, a
diverged run or a file-system error ends a command (`main`, `eval`,
`features`) with one line on stderr, a label and the message, which names
what is wrong and what to do, and exit status 1; no traceback.
"""

import sys

from lstm_unsup import checkpoint, config_lib
from lstm_unsup.data import digits

REPORTED = (
  (config_lib.ConfigError, "Bad configuration"),
  (digits.DataError, "Bad data"),
  (digits.DataUnavailableError, "Data unavailable"),
  (checkpoint.CheckpointError, "Checkpoint problem"),
  (FloatingPointError, "Training diverged"),
  (OSError, "File error"),  # e.g. a full disk while writing metrics
)


def run_reporting_errors(fn, *args, **kwargs):
  """fn(*args, **kwargs); a REPORTED error exits with one line instead."""
  try:
    return fn(*args, **kwargs)
  except tuple(kind for kind, _ in REPORTED) as e:
    label = next(label for kind, label in REPORTED if isinstance(e, kind))
    sys.exit(f"{label}: {' '.join(str(e).split())}")

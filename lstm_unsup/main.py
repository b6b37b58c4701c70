"""Trains a model: the command behind every experiment.

  python -m lstm_unsup.main --config=lstm_unsup/configs/composite.py:cpu \
      --workdir=runs/composite_cpu [--config.train.num_steps=2000]

Rerunning the same command resumes from the workdir's latest checkpoint.
A bad config, flag, data file or workdir, a damaged checkpoint, a failed
save or a non-finite loss ends the run with one line on stderr saying what
is wrong and what to do, and a non-zero exit status (1; 128 + the signal
number after SIGINT or SIGTERM, which first save a checkpoint).
"""

import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from lstm_unsup import errors, evaluation, train

_CONFIG = config_flags.DEFINE_config_file(
  "config",
  None,
  "Config file, with a scale: path.py:quick|cpu|paper.",
  lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
  "workdir", None, "Where checkpoints, metrics and figures go.", required=True
)
_MULTIHOST = flags.DEFINE_bool(
  "multihost", False, "Call jax.distributed.initialize() first (multi-host)."
)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if _MULTIHOST.value:
    jax.distributed.initialize()
  logging.info("JAX devices: %s", jax.devices())
  try:
    result = errors.run_reporting_errors(
      train.train_and_evaluate, _CONFIG.value, _WORKDIR.value
    )
  except train.Interrupted as e:
    print(f"Stopped by {e}", file=sys.stderr)
    sys.exit(128 + e.signum)
  print(f"Data: {result['data']}")
  print(
    f"Results are in {_WORKDIR.value}: metrics.jsonl, figures/, "
    "checkpoints/, tensorboard/."
  )
  print("Test set:", evaluation.summary_line(result["test"]))


def parse_flags(argv):
  """absl's parser, with a one-line message for an unknown config field."""
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError) as e:
    message = str(e).replace("\\n", " ").replace("\\'", "").strip("'")
    sys.exit(f"Bad --config override: unknown field {message}")
  except flags.Error as e:  # a value of the wrong type, a missing file
    sys.exit(f"Bad flag: {' '.join(str(e).split())}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main, flags_parser=parse_flags)

"""Trains a model: the command behind every experiment.

  python -m lstm_unsup.main --config=lstm_unsup/configs/composite.py:cpu \
      --workdir=runs/composite_cpu [--config.train.num_steps=2000]

Rerunning the same command resumes from the workdir's latest checkpoint.
A bad config, flag, data file or workdir, a damaged checkpoint, a failed
save or a non-finite loss ends the run with one line on stderr saying what
is wrong and what to do, and a non-zero exit status (1; 128 + the signal
number after SIGINT or SIGTERM, which first save a checkpoint; 130 after
Ctrl-C during start-up). A second process on the same workdir is refused.
With --coordinator_address, --num_processes and --process_id (or
--multihost on a cluster) it trains on several processes as one
(lstm_unsup/distributed.py, docs/distributed.md).
"""

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from lstm_unsup import cli, distributed, evaluation, train
from lstm_unsup.run import folder

_CONFIG = config_flags.DEFINE_config_file(
  "config",
  None,
  "Config file, with a scale: path.py:quick|cpu|paper.",
  lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
  "workdir", None, "Where checkpoints, metrics and figures go.", required=True
)
distributed.define_flags()
# Ctrl-C before the training loop handles it (which saves, then stops).
STARTUP_INTERRUPTED = "Interrupted during start-up; nothing to resume"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  distributed.initialize_from_flags()
  logging.info("JAX devices: %s", jax.devices())
  result = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  if not distributed.is_writer():
    return  # process 0 reports
  print(f"Data: {result['data']}")
  print(f"Results are in {_WORKDIR.value}: {', '.join(folder.RESULTS)}.")
  if result["test"]:
    print("Test set:", evaluation.summary_line(result["test"]))
  else:
    print("Test set: left unread (--config.eval.final_test=False).")


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  cli.run_main(main, interrupted=STARTUP_INTERRUPTED)

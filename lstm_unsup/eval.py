"""Evaluates a trained run on the fixed test set (and the standard file).

  python -m lstm_unsup.eval --workdir=runs/composite_cpu \
      [--mnist_test_seq=data/mnist_test_seq.npy] [--num_sequences=10000]

Prints every metric and saves them to `<workdir>/eval_<split>.json`.
"""

import json
import os

from absl import app, flags

from lstm_unsup import checkpoint, config_lib, errors, evaluation


def evaluate_run(
  workdir: str,
  split: str = "test",
  num_sequences: int = 0,
  mnist_test_seq: str = "",
) -> dict:
  config, model, params = checkpoint.load_run(workdir)
  if num_sequences:
    config.eval.num_test_sequences = num_sequences
  if mnist_test_seq:
    config.eval.mnist_test_seq = mnist_test_seq
    config_lib.validate(config)
  result = evaluation.Evaluator(config, model, split=split).evaluate(params)
  with open(os.path.join(workdir, f"eval_{split}.json"), "w") as f:
    json.dump(result, f, indent=2)
  return result


def _print(split: str, result: dict) -> None:
  print(
    f"{split} ({result['num_sequences']} sequences), decoders: "
    f"{result['conditioning']}"
  )
  for key, value in sorted(result.items()):
    if isinstance(value, float):
      print(f"  {key:24s} {value:10.4f}")


def main(argv):
  del argv
  splits = ["test"] + (["mnist_test_seq"] if FLAGS.mnist_test_seq else [])
  for split in splits:
    result = errors.run_reporting_errors(
      evaluate_run,
      FLAGS.workdir,
      split,
      FLAGS.num_sequences,
      FLAGS.mnist_test_seq,
    )
    _print(split, result)


FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string(
    "workdir", None, "A training run's workdir.", required=True
  )
  flags.DEFINE_string(
    "mnist_test_seq", "", "Also evaluate on this mnist_test_seq.npy."
  )
  flags.DEFINE_integer(
    "num_sequences", 0, "Test sequences (0: the run's config.eval value)."
  )


if __name__ == "__main__":
  define_flags()
  app.run(main)

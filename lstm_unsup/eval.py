"""Evaluates a trained run on the fixed test set (and the standard file).

  python -m lstm_unsup.eval --workdir=runs/composite_cpu \
      [--mnist_test_seq=data/mnist_test_seq.npy] [--num_sequences=10000] \
      [--teacher_forced]

Prints every metric and saves them to `<workdir>/eval_<split>.json`.
Conditional decoders run on their own previous output, as at test time;
`--teacher_forced` feeds them the ground-truth previous frame instead (one
step ahead, as the authors' lstm_combo.py validated only from 4afe54a to
279ddfa, 30 Dec 2015 to 1 Jan 2016) and saves
`eval_<split>_teacher_forced.json`. `--mnist_test_seq` also scores the
field's test set (a path to mnist_test_seq.npy, or tfds). It holds the
run's workdir while it runs (run/folder.py): not beside a training of the same
run. It runs on several processes with the flags of `lstm_unsup.main`
(docs/distributed.md), each scoring its part of every batch.
"""

import jax
from absl import flags

from lstm_unsup import (
  cli,
  config_lib,
  distributed,
  evaluation,
  models,
  training_step,
)
from lstm_unsup.run import checkpoints, folder, opening, record


def evaluate_run(
  workdir: str,
  split: str = "test",
  num_sequences: int = 0,
  mnist_test_seq: str = "",
  teacher_forced: bool = False,
) -> dict:
  """Metrics of a run's latest checkpoint on `split` (with its `step`), saved as
  `<workdir>/eval_<split>.json` (`eval_<split>_teacher_forced.json` when
  `teacher_forced` feeds conditional decoders the ground truth)."""
  config, model, _ = opening.load_run(workdir, params=False)
  if teacher_forced:
    config.model.teacher_forced_reconstruction_at_eval = True
    config.model.teacher_forced_future_at_eval = True
    model = models.build_model(config.model)
  if num_sequences:
    config.eval.num_test_sequences = num_sequences
  if mnist_test_seq and split == "mnist_test_seq":
    config.eval.mnist_test_seq = mnist_test_seq  # "test" stays the run's own
    config_lib.validate(config)
  writes = distributed.is_writer()  # process 0 of several
  with folder.RunDir(workdir).locked():  # it writes into the run
    state = checkpoints.restore_state(workdir)
    stats = opening.patch_stats(workdir, config)  # as recorded
    B, count = config.eval.batch_size, jax.device_count()
    alone = B % count and jax.process_count() == 1  # then one device
    mesh = training_step.make_mesh(int(alone), B, "eval")
    evaluator = evaluation.Evaluator(
      config, model, split=split, stats=stats, mesh=mesh
    )
    result = evaluator.evaluate(state["params"])
    result["step"] = int(state["step"])  # the checkpoint's training step
    if writes:
      name = record.eval_name(split, teacher_forced)
      record.write_json(workdir, name, result)
  return result


def _print(split: str, result: dict) -> None:
  print(f"{split}: {result['sequences']}, decoders: {result['conditioning']}")
  for key, value in sorted(result.items()):
    if isinstance(value, float):
      print(f"  {key:24s} {value:10.4f}")
  for key, value in sorted(result.get("mean_baseline", {}).items()):
    print(f"  {key + ' of the mean':24s} {value:10.4f}")
  warning = evaluation.worse_than_baseline(result)
  if warning:
    print(warning)


def main(argv):
  del argv
  distributed.initialize_from_flags()
  splits = ["test"] + (["mnist_test_seq"] if FLAGS.mnist_test_seq else [])
  for split in splits:
    result = evaluate_run(
      FLAGS.workdir,
      split,
      FLAGS.num_sequences,
      FLAGS.mnist_test_seq,
      FLAGS.teacher_forced,
    )
    if distributed.is_writer():
      _print(split, result)


FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string(
    "workdir", None, "A training run's workdir.", required=True
  )
  flags.DEFINE_string(
    "mnist_test_seq",
    "",
    "Also evaluate on the field's test set: mnist_test_seq.npy, or tfds.",
  )
  flags.DEFINE_integer(
    "num_sequences", 0, "Test sequences (0: the run's config.eval value)."
  )
  flags.DEFINE_bool(
    "teacher_forced",
    False,
    "Feed conditional decoders the ground-truth previous frame (one step "
    "ahead), as the authors' code validated only from 4afe54a to 279ddfa, "
    "Dec 2015 to Jan 2016 (default: they run on their own output).",
  )


if __name__ == "__main__":
  define_flags()
  distributed.define_flags()
  cli.run_main(main)

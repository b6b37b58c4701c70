"""The run folder (`--workdir`): everything a training run leaves, and the
only code that names what is inside it.

  <workdir>/
    .lock                   held by the one process that writes here (folder)
    config.json             the run's whole config (folder)
    config.json.sha256      its checksum: readers refuse an edited config
    data_split.json         patch runs: source, split, statistics and the
                            source's fingerprint, written once (record)
    metrics.jsonl           one JSON record per log, evaluation and test
                            (metrics_io)
    tensorboard/            the same as TensorBoard event files (metrics_io)
    checkpoints/<step>/     orbax checkpoints with their CRC32s (checkpoints)
    corrupt_checkpoints/    damaged checkpoints moved aside (checkpoints)
    figures/step_*.png      predictions at each evaluation (folder)
    eval_<split>[_teacher_forced].json   what `eval` scored (record)
    wall_seconds.json       a Table 2 cell's training time (record)

Modules: `folder` (the lock, config.json, whose folder it is), `metrics_io`,
`checkpoints`, `record` (the data record and small JSON files) and
`opening` (a trained run opened for `eval`, `features`, the classifier and
the experiments). `tests/run/layout_test.py` checks that no module outside
this package names a file inside a run folder.
"""

from lstm_unsup.run import checkpoints, folder, metrics_io, opening, record

# Every name a run folder may hold, as the layout above lists them.
LAYOUT = (
  folder.LOCK,
  folder.CONFIG,
  folder.CONFIG + ".sha256",
  record.DATA_SPLIT,
  metrics_io.FILENAME,
  metrics_io.TENSORBOARD,
  folder.CHECKPOINTS,
  checkpoints.CORRUPT,
  folder.FIGURES,
  "eval_<split>.json",
  record.TIMING,
)

__all__ = ["LAYOUT", "checkpoints", "folder", "metrics_io", "opening", "record"]

"""Opening a trained run to use it: `eval`, `features`, the classifier, the
experiments. Everything read comes from the run's own record: its
config.json (refused if edited since it was written, see folder.py), its
latest readable checkpoint and, for a patch run, its data record."""

from typing import Any

from lstm_unsup import config_lib, models
from lstm_unsup.run import checkpoints, folder, record

PyTree = Any


def load_run(workdir: str, params: bool = True):
  """(config, model, params) of a run's latest checkpoint; params is None
  when `params` is False (the config and model alone)."""
  values = folder.RunDir(workdir).read_config()
  if values is None:
    raise FileNotFoundError(f"{workdir}/config.json not found: not a run.")
  config = config_lib.from_dict(values)
  restored = checkpoints.restore_params(workdir) if params else None
  return config, models.build_model(config.model), restored


def patch_stats(workdir: str, config):
  """The statistics a run's frames are normalised with: a patch run's
  recorded ones (None for Moving MNIST, or a patch run that predates its
  record, which then recomputes them from its source)."""
  if config.data.dataset != "patches":
    return None
  return record.patch_stats(workdir)


def encoder_of_run(workdir: str) -> tuple[Any, PyTree]:
  """(config, encoder parameters) of a training run's latest checkpoint."""
  config, _, params = load_run(workdir)
  if "encoder" not in params:
    raise ValueError(f"The checkpoint under {workdir} has no encoder.")
  if config.model.cell != "fc":
    raise config_lib.ConfigError(
      f"The run under {workdir} has a ConvLSTM encoder (config.model.cell="
      f"{config.model.cell!r}); the classifier is an LSTM over flat frames, "
      "seeded only from an FC-LSTM run (cell 'fc')."
    )
  return config, params["encoder"]

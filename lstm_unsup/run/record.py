"""A run's record of its data, and the small JSON files commands leave in
the run folder.

`data_split.json` is written once, when a patch run first trains: its
source, how the videos were split, what each split holds, the training
windows' per-channel statistics and a fingerprint of the source (each
video's name, frame count and frame shape). It is never rewritten: a
resumed run whose source no longer has that fingerprint (a video added,
removed or changed) is refused in one line, so the record keeps saying what
every step trained on. `features` and evaluation normalise with the
recorded statistics; a record that cannot be read or holds no usable
statistics is one line (RecordError), not a traceback or quiet NaNs.

Also here: `eval_<split>.json` (what `eval` scored) and `wall_seconds.json`
(the training time of a Table 2 cell).
"""

import json
import math
import os
from typing import Any

import numpy as np

from lstm_unsup import files
from lstm_unsup.data import patches, splits
from lstm_unsup.data.errors import DataError

DATA_SPLIT = "data_split.json"
TIMING = "wall_seconds.json"


class RecordError(DataError):
  """A run's record is damaged or disagrees with its data; the message says
  which file and what to do."""


def eval_name(split: str, teacher_forced: bool = False) -> str:
  return f"eval_{split}{'_teacher_forced' if teacher_forced else ''}.json"


def fingerprint(source: patches.PatchSource) -> list[list]:
  """What identifies a patch source's videos: [name, frames, H, W, C] each."""
  names = source.names or tuple(f"video {i}" for i in range(len(source.videos)))
  return [
    [str(name), int(len(video)), *(int(n) for n in video.shape[1:])]
    for name, video in zip(names, source.videos, strict=True)
  ]


def keep_data_record(workdir: str, source) -> None:
  """Writes a patch run's data_split.json the first time; later, refuses a
  source that differs from the one recorded (RecordError). Digits: none."""
  if not isinstance(source, patches.PatchSource):
    return
  path = os.path.join(workdir, DATA_SPLIT)
  now = {
    "source": source.description,
    "summary": splits.summary(source.record),
    **source.record,
    "channels": source.channels,
    "mean": source.stats.mean_C.tolist(),
    "std": source.stats.std_C.tolist(),
    "fingerprint": fingerprint(source),
  }
  if not os.path.exists(path):
    files.write_atomically(path, json.dumps(now, indent=1))
    return
  before = read_data_record(workdir)
  why = _difference(before, now)
  if why:
    raise RecordError(
      f"The data source of {workdir} is not the one it trained on: {why}. "
      f"Its {DATA_SPLIT} records what the steps so far trained on and is "
      "kept as it is; restore that source, or train in a new --workdir."
    )


def _difference(before: dict, now: dict) -> str:
  """ "" when `now` is the recorded source; else what changed, in words."""
  if "fingerprint" in before:  # since the record had one
    old = {v[0]: v[1:] for v in before["fingerprint"]}
    new = {v[0]: v[1:] for v in now["fingerprint"]}
    changes = [f"{n} added" for n in new if n not in old]
    changes += [f"{n} removed" for n in old if n not in new]
    changes += [
      f"{n} has {new[n][0]} frames of {new[n][1:]} (was {old[n][0]} of "
      f"{old[n][1:]})"
      for n in new
      if n in old and new[n] != old[n]
    ]
    return "; ".join(changes[:4])
  # An older record: its split and statistics must still be the source's.
  if before.get("summary") != now["summary"]:
    return f"the split was {before.get('summary')!r}, now {now['summary']!r}"
  for key in ("mean", "std"):
    if not np.allclose(before.get(key, []), now[key], rtol=1e-5, atol=1e-7):
      return f"the training {key} was {before.get(key)}, now {now[key]}"
  return ""


def read_data_record(workdir: str) -> dict[str, Any] | None:
  """The run's data_split.json (None when it has none); RecordError when
  it cannot be read or lacks usable statistics."""
  path = os.path.join(workdir, DATA_SPLIT)
  if not os.path.exists(path):
    return None
  try:
    with open(path, "rb") as f:
      record = json.loads(f.read().decode("utf-8"))
  except (OSError, ValueError) as e:
    raise RecordError(f"{path} cannot be read ({e}); restore it.") from e
  if not isinstance(record, dict):
    raise RecordError(f"{path} does not hold a data record; restore it.")
  _check_stats(path, record)
  return record


def _check_stats(path: str, record: dict) -> None:
  try:
    mean, std = (np.asarray(record[k], np.float64) for k in ("mean", "std"))
    channels = int(record.get("channels", len(mean)))
  except (KeyError, TypeError, ValueError) as e:
    raise RecordError(
      f"{path} holds no per-channel mean and std ({e!r}); restore it."
    ) from None
  ok = (
    mean.shape == std.shape == (channels,)
    and all(math.isfinite(v) for v in (*mean, *std))
    and bool(np.all(std > 1e-6))
    and bool(np.all((mean >= 0) & (mean <= 1)))
  )
  if not ok:
    raise RecordError(
      f"{path} records training statistics that cannot be right (mean "
      f"{record['mean']}, std {record['std']} for {channels} channel(s): "
      "each mean in [0, 1], each std above 1e-6); restore it."
    )


def patch_stats(workdir: str) -> patches.PatchStats | None:
  """The training statistics a patch run recorded (None: no record)."""
  record = read_data_record(workdir)
  if record is None:
    return None
  mean, std = (np.asarray(record[k], np.float32) for k in ("mean", "std"))
  return patches.PatchStats(mean, std)


def write_json(workdir: str, name: str, values: dict) -> None:
  """One of the run's small JSON files (eval results, a cell's timing)."""
  text = json.dumps(values, indent=2)
  files.write_atomically(os.path.join(workdir, name), text)


def read_json(workdir: str, name: str) -> dict[str, Any] | None:
  """That file's values, or None when the run has none."""
  path = os.path.join(workdir, name)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)

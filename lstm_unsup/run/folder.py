"""The run folder (`--workdir`): who holds it, what it holds, whose it is.

  run = RunDir(workdir)
  with run.locked():  # one process at a time
    run.check(config)  # this run's folder, whole, before any compute
    run.write_config(config.to_dict())
    writer, mngr = run.writer(), run.checkpoint_manager(keep)

A process that writes into a run folder (training, `eval`, `features`
writing there) holds its lock while it runs: `fcntl.flock` on
`<workdir>/.lock`, which the kernel releases however the process ends, even
by SIGKILL. The holder writes its pid, host, command and start time into
the lock file; a second process is refused with them before it reads or
writes anything else. A folder made for a run that then failed to start is
removed again. `check` refuses a folder that is not this run's: a file where
a folder belongs, a damaged config.json or one of another configuration,
checkpoints without a config, a metrics.jsonl with a damaged line. The
formats of what it holds are metrics_io.py's (metrics.jsonl) and
checkpoints.py's (the checkpoints).
"""

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any

import ml_collections
import orbax.checkpoint as ocp
from absl import logging

from lstm_unsup import config_lib, distributed, files
from lstm_unsup.data import checksums
from lstm_unsup.run import metrics_io

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
FIGURES = "figures"
LOCK = ".lock"
FOLDERS = (CHECKPOINTS, FIGURES, metrics_io.TENSORBOARD)
FILES = (CONFIG, metrics_io.FILENAME)
# What a finished training run leaves for its user, as main.py lists it.
RESULTS = (
  metrics_io.FILENAME,
  f"{FIGURES}/",
  f"{CHECKPOINTS}/",
  f"{metrics_io.TENSORBOARD}/",
)


class WorkdirBusyError(RuntimeError):
  """Another process holds the run folder; the message says which."""


class RunDir:
  """A run's folder; `locked()` holds it for the block."""

  def __init__(self, path: str):
    self.path = str(path)
    self._fd = None  # the lock file, while held
    self._made = None  # the topmost folder that lock() made

  def _join(self, name: str) -> str:
    return os.path.join(self.path, name)

  @property
  def config_path(self) -> str:
    return self._join(CONFIG)

  @property
  def metrics_path(self) -> str:
    return self._join(metrics_io.FILENAME)

  @property
  def checkpoints(self) -> str:
    return os.path.abspath(self._join(CHECKPOINTS))

  def figure(self, step: int) -> str:
    return os.path.join(self.path, FIGURES, f"step_{step:07d}.png")

  def is_run(self) -> bool:
    """Whether the folder holds a run (its config.json)."""
    return os.path.exists(self.config_path)

  def contains(self, path: str) -> bool:
    """Whether `path` lies inside this folder."""
    inside, folder = os.path.realpath(path), os.path.realpath(self.path)
    return os.path.commonpath([inside, folder]) == folder

  # --------------------------------------------------------------------------
  # The lock.

  @contextlib.contextmanager
  def locked(self):
    """Holds the folder while the block runs. Of several processes, only
    process 0, the one that writes the run's files, takes it."""
    if not distributed.is_writer():
      yield self
      return
    self.lock()
    try:
      yield self
    finally:
      self.unlock()

  def lock(self) -> None:
    """Takes the folder (making it if needed), or WorkdirBusyError naming
    the process that holds it."""
    if os.path.exists(self.path) and not os.path.isdir(self.path):
      raise config_lib.ConfigError(
        f"--workdir {self.path} is a file, not a folder."
      )
    made = _topmost_missing(self.path)
    path = self._join(LOCK)
    while True:
      os.makedirs(self.path, exist_ok=True)
      try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
      except FileNotFoundError:  # a failed start removed the folder: again
        continue
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise WorkdirBusyError(
          f"{self.path} is in use by {holder}; wait for it to end or stop "
          "it, or use another --workdir."
        ) from None
      if _same_file(fd, path):
        break
      os.close(fd)  # its last holder removed that file: lock the new one
    self._fd, self._made = fd, made
    try:
      os.ftruncate(fd, 0)
      os.write(fd, json.dumps(_this_process()).encode())
    except BaseException:
      self.unlock()
      raise

  def unlock(self) -> None:
    """Lets the folder go; removes it if lock() made it and it is empty."""
    fd, self._fd = self._fd, None
    if fd is None:
      return
    try:
      with contextlib.suppress(FileNotFoundError):
        os.unlink(self._join(LOCK))
      if self._made:  # remove what lock() made, if nothing was written
        folder = os.path.abspath(self.path)
        with contextlib.suppress(OSError):  # not empty: kept, with parents
          while True:
            os.rmdir(folder)
            if folder == self._made:
              break
            folder = os.path.dirname(folder)
    finally:
      os.close(fd)

  # --------------------------------------------------------------------------
  # What it holds.

  def check_layout(self) -> None:
    """Refuses a file where a folder belongs, and the other way round."""
    for name, wanted in [(n, True) for n in FOLDERS] + [
      (n, False) for n in FILES
    ]:
      path = self._join(name)
      if os.path.exists(path) and os.path.isdir(path) != wanted:
        kind, error = (
          ("a file, not a folder", NotADirectoryError)
          if wanted
          else ("a folder, not a file", IsADirectoryError)
        )
        raise error(
          f"{path} is {kind}; move it away, or use another --workdir."
        )

  def read_config(self, verify: bool = True) -> dict[str, Any] | None:
    """The run's config.json (None for a new run); ConfigError if it is
    damaged, holds no config, or (`verify`) was changed since the run wrote
    it: its checksum, `config.json.sha256`, no longer matches. Runs from
    before the checksum are read as they are. The trainer compares the
    config itself (`check`) and rewrites both."""
    if not os.path.exists(self.config_path):
      return None
    sums = checksums.sidecar(Path(self.config_path))
    if verify and os.path.exists(sums):
      why = checksums.mismatch(sums, {CONFIG: Path(self.config_path)})
      if why:
        raise config_lib.ConfigError(
          f"{why}. A run's config.json is the record of what it trained "
          "with; restore it (or delete it with its checksum and the "
          "checkpoints to start over), and set what a command may change "
          "with that command's flags."
        )
    try:
      with open(self.config_path, "rb") as f:
        values = json.loads(f.read().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise config_lib.ConfigError(
        f"{self.config_path} is damaged ({e}); refusing to resume from it. "
        "Use a new --workdir, or restore that file."
      ) from e
    if not isinstance(values, dict):
      raise config_lib.ConfigError(
        f"{self.config_path} does not hold a config."
      )
    return values

  def write_config(self, values: dict[str, Any]) -> None:
    """Writes config.json, then its checksum (after a crash between the
    two, readers refuse the run until the training command runs again)."""
    os.makedirs(self.path, exist_ok=True)
    text = json.dumps(values, indent=2, sort_keys=True)
    files.write_atomically(self.config_path, text)
    sums = checksums.sidecar(Path(self.config_path))
    checksums.write(sums, {CONFIG: text.encode("utf-8")})

  def check(self, config: ml_collections.ConfigDict, resume=True) -> None:
    """Refuses a folder that another configuration made, or that is not
    whole: a run resumes only its own folder, and (`resume`: it keeps the
    records before its checkpoint) not a metrics.jsonl it cannot read."""
    self.check_layout()
    before = self.read_config(verify=False)  # compared field by field
    checkpoints = self.checkpoints
    if (
      before is None and os.path.isdir(checkpoints) and os.listdir(checkpoints)
    ):
      raise config_lib.ConfigError(
        f"{self.path} holds checkpoints but no config.json, so which config "
        "made them is unknown; refusing to resume. Use a new --workdir."
      )
    if before is not None:
      self._check_same_config(before, config)
    if resume:
      metrics_io.read_metrics(self.path, damaged="refuse")

  def _check_same_config(self, before: dict, config) -> None:
    now = json.loads(json.dumps(config.to_dict()))
    old = config_lib.fill_added_fields(config_lib.flatten(before))
    new = config_lib.flatten(now)
    changed = [
      key
      for key in sorted(set(old) | set(new))
      # A field the run's config.json lacks was added to the code since.
      if key in old
      and old.get(key) != new.get(key)
      and not any(key.startswith(p) for p in config_lib.RESUMABLE_CHANGES)
    ]
    if changed:
      diffs = ", ".join(
        f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:5]
      )
      raise config_lib.ConfigError(
        f"The workdir {self.path} belongs to a run with a different config "
        f"({diffs}); refusing to resume it. Use a new --workdir, or delete "
        f"this one to start over."
      )

  def writer(self) -> metrics_io.MetricWriter:
    return metrics_io.MetricWriter(self.path)

  def checkpoint_manager(
    self, keep: int = 3, *, read_only: bool = False
  ) -> ocp.CheckpointManager:
    """The manager of the run's checkpoints. The training run's own deletes
    temporary folders that a killed save left; a `read_only` one, for a
    reader, creates and deletes nothing (it must not be used to save)."""
    self.check_layout()
    _quiet_orbax_logs()
    options = ocp.CheckpointManagerOptions(
      max_to_keep=keep,
      create=not read_only,
      cleanup_tmp_directories=not read_only,
    )
    return ocp.CheckpointManager(
      self.checkpoints,
      options=options,
      item_handlers=ocp.StandardCheckpointHandler(),
    )


def _topmost_missing(path: str) -> str | None:
  """The outermost folder of `path` that does not exist yet (None: all do)."""
  path, missing = os.path.abspath(path), None
  while not os.path.exists(path):
    missing, path = path, os.path.dirname(path)
  return missing


def _same_file(fd: int, path: str) -> bool:
  try:
    now = os.stat(path)
  except FileNotFoundError:
    return False
  held = os.fstat(fd)
  return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _this_process() -> dict[str, Any]:
  return {
    "pid": os.getpid(),
    "host": socket.gethostname(),
    "command": " ".join(shlex.join(sys.orig_argv).split()),
    "since": time.strftime("%Y-%m-%d %H:%M:%S"),
  }


def _holder(fd: int) -> str:
  """Who holds the lock, as its holder wrote it into the file."""
  for _ in range(100):  # a holder writes it just after it locks
    try:
      info = json.loads(os.pread(fd, 65536, 0))
      return (
        f"process {info['pid']} on {info['host']} since {info['since']} "
        f"({info['command']})"
      )
    except (ValueError, KeyError, TypeError):
      time.sleep(0.01)
  return "another process (which has not said which)"


def _quiet_orbax_logs() -> None:
  """Hides orbax's INFO lines, which would drown the progress lines."""
  logger = logging.get_absl_logger()
  if not any(isinstance(f, _DropOrbaxInfo) for f in logger.filters):
    logger.addFilter(_DropOrbaxInfo())


class _DropOrbaxInfo:
  def filter(self, record) -> bool:
    return record.levelno > 20 or "/orbax/" not in record.pathname

"""How every command line reports a user's error: `run_main(main)` in
place of absl's `app.run(main)`.

A user's error ends the command with one line on stderr, a label and the
message, which names what is wrong and what to do, and exit status 1; no
traceback. The user's errors are:

  * a bad flag, an unknown config field, or a config file that does not
    load (a syntax error, an unknown scale, an exception in get_config);
  * the REPORTED errors: a bad config, data file or array, missing data, a
    damaged checkpoint or metrics.jsonl, a workdir in use, a model too
    large, a diverged run, a file-system error, processes that cannot
    start together (a process lost later: distributed.py's launcher);
  * errors of the `checks` types that the script's own code raises (its
    checks of its arguments: a ValueError naming an unknown table row);
  * a JAX platform that cannot start (JAX_PLATFORMS=cuda without a GPU or
    without JAX's build for it).

A file-system error's line names the file: one whose OSError names none
(a write's or a flush's: "[Errno 27] File too large", in numba's cache, a
figure) is named after the one file object open in the code that raised
it, and "File too large" says what it means (a file-size limit).

Ctrl-C prints one line and exits with status 130 (the training loop's own
stop saves a checkpoint first and says so, with 128 + the signal number).
Anything else is a bug and keeps its traceback. The REPORTED types are
looked up when an error is raised, in the modules that define them (one
not imported cannot have been raised), so this module stays light.
"""

import functools
import io
import os
import sys
import traceback

from absl import app, flags

from lstm_unsup import files

# (module, type, label): the first type an error is an instance of names it.
REPORTED = (
  ("lstm_unsup.run.folder", "WorkdirBusyError", "Workdir in use"),
  ("lstm_unsup.sizing", "TooLargeError", "Model too large"),
  ("lstm_unsup.config_lib", "ConfigError", "Bad configuration"),
  ("lstm_unsup.data.errors", "DataError", "Bad data"),
  ("lstm_unsup.data.errors", "DataUnavailableError", "Data unavailable"),
  ("lstm_unsup.run.checkpoints", "CheckpointError", "Checkpoint problem"),
  ("lstm_unsup.run.metrics_io", "MetricsError", "Bad metrics file"),
  ("lstm_unsup.distributed", "DistributedError", "Processes cannot run"),
  ("builtins", "FloatingPointError", "Training diverged"),
  ("builtins", "OSError", "File error"),  # e.g. a full disk, a read-only one
)
# What to install for a platform named in JAX_PLATFORMS (README: Install).
JAX_BUILDS = {"cuda": "jax[cuda13]", "gpu": "jax[cuda13]", "tpu": "jax[tpu]"}


def run_main(main, *, checks=(), interrupted: str = "Interrupted.") -> None:
  """Runs `main(argv)` as absl's `app.run` does, reporting a user's error
  in one line (see above). `checks`: error types that the script's own
  code raises for bad arguments; `interrupted`: what Ctrl-C prints."""
  try:
    app.run(_reporting(main, checks), flags_parser=parse_flags)
  except KeyboardInterrupt as e:
    signum = getattr(e, "signum", None)  # guards.Interrupted: it saved
    print(f"Stopped by {e}" if signum else interrupted, file=sys.stderr)
    sys.exit(128 + signum if signum else 130)


def run_reporting_errors(fn, *args, **kwargs):
  """fn(*args, **kwargs), a user's error reported in one line: for a
  command that parses its own arguments (others use run_main)."""
  return _reporting(fn)(*args, **kwargs)


def _reporting(fn, checks=()):
  script = fn.__code__.co_filename

  @functools.wraps(fn)
  def reporting(*args, **kwargs):
    try:
      return fn(*args, **kwargs)
    except app.UsageError as e:
      sys.exit(f"Bad usage: {e}")
    except Exception as e:
      together = sys.modules.get("lstm_unsup.distributed")
      if together is not None and together.collective_failed(e):
        together.report_lost_peer(e)  # one line, then the process ends
      line = one_line(e, checks, script)
      if line is None:
        raise  # a bug: its traceback says where
      sys.exit(line)

  return reporting


def one_line(error: Exception, checks=(), script: str = "") -> str | None:
  """The one line that reports `error`, or None for a bug."""
  label = _label(error)
  if label is None and isinstance(error, checks) and _raised_in(error, script):
    label = "Bad argument"
  if label is not None:
    return f"{label}: {' '.join(_text(error).split())}"
  return _jax_platform(error)


def _text(error: Exception) -> str:
  """The error's message; an OSError's names its file and says what
  "File too large" means."""
  if not isinstance(error, OSError) or error.errno is None:
    return str(error)
  text = str(error)
  if error.filename is None and (name := _file_in_use(error)) is not None:
    text += f": {name!r}"
  return text + files.advice(error.errno)


def _file_in_use(error: BaseException) -> str | None:
  """The path of the one file object open in the frame that raised
  `error` (`f` in `with open(p) as f: f.write(data)`), or None."""
  tb = error.__traceback__
  if tb is None:
    return None
  while tb.tb_next is not None:
    tb = tb.tb_next
  names = {
    value.name
    for value in tb.tb_frame.f_locals.values()
    if isinstance(value, io.IOBase)
    and isinstance(getattr(value, "name", None), str)
  }
  return names.pop() if len(names) == 1 else None


def _label(error: Exception) -> str | None:
  for module, name, label in REPORTED:
    kind = getattr(sys.modules.get(module), name, None)
    if isinstance(kind, type) and isinstance(error, kind):
      return label
  return None


def _raised_in(error: Exception, script: str) -> bool:
  frames = traceback.extract_tb(error.__traceback__)
  return bool(frames) and frames[-1].filename == script


def _jax_platform(error: Exception) -> str | None:
  """JAX's backend failing to start, in one line; None for anything else.
  (JAX may have removed its frames from the error: asking JAX for its
  devices again tells, and says why.)"""
  jax = sys.modules.get("jax")
  if jax is None or not isinstance(error, (RuntimeError, AssertionError)):
    return None
  try:
    jax.devices()
    return None  # JAX works: the error is another one
  except (RuntimeError, AssertionError) as e:
    error = e
  asked = os.environ.get("JAX_PLATFORMS", "").split(",")[0] or "default"
  text = str(error)
  if text.startswith("Unable to initialize backend '"):
    asked, _, text = text[len("Unable to initialize backend '") :].partition(
      "': "
    )
    text = text.split(" (set JAX_PLATFORMS=")[0].split(" (you may need")[0]
  why = " ".join(text.split()) or (
    "no NVIDIA GPU is visible" if asked in ("cuda", "gpu") else "no device"
  )
  build = JAX_BUILDS.get(asked, "a JAX build for it")
  return (
    f"JAX cannot use platform '{asked}' here: {why}; install {build} "
    "(README: Install) or unset JAX_PLATFORMS"
  )


def parse_flags(argv):
  """absl's parser, with a one-line report of a bad flag, an unknown config
  field or a config file that does not load."""
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    cause = _innermost(e)
    if "Error whilst parsing config file" not in str(e):
      sys.exit(f"Bad flag: {' '.join(str(e).split())}")
    sys.exit(f"Bad config file: {_config_arg(argv)}: {_describe(cause)}")
  except Exception as e:  # noqa: BLE001 (the config file's code, or a field)
    if isinstance(e, (AttributeError, KeyError)) and not _user_frame(e):
      message = str(e).replace("\\n", " ").replace("\\'", "").strip("'")
      sys.exit(f"Bad --config override: unknown field {message}")
    sys.exit(f"Bad config file: {_config_arg(argv)}: {_describe(e)}")
  for name in list(flags.FLAGS):  # a config file that was not found
    try:  # (ml_collections raises then, from a stand-in config)
      getattr(flags.FLAGS[name].value, "to_dict", None)
    except OSError as e:
      why = str(e.__cause__ or e).strip().splitlines()[-1].strip()
      sys.exit(f"Bad config file: {_config_arg(argv, name)}: {why}")
  return rest


def _innermost(error: BaseException) -> BaseException:
  while (error.__cause__ or error.__context__) is not None:
    error = error.__cause__ or error.__context__
  return error


def _config_arg(argv, name: str = "config") -> str:
  """The value of --config (or --`name`) on the command line."""
  given = [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]
  return given[-1] if given else f"--{name}"


def _user_frame(error: BaseException):
  """The innermost frame of the error outside Python, absl, ml_collections."""
  skip = ("/absl/", "/ml_collections/", "<frozen ", "importlib", __file__)
  frames = traceback.extract_tb(error.__traceback__)
  return next(
    (f for f in reversed(frames) if not any(s in f.filename for s in skip)),
    None,
  )


def _describe(error: BaseException) -> str:
  """What went wrong in a config file, with the line when it is known."""
  if isinstance(error, (ValueError, TypeError)):
    text = str(error)  # a config's own message (an unknown scale, say)
  else:
    text = f"{type(error).__name__}: {error}"  # a SyntaxError says where
    frame = _user_frame(error)
    if frame is not None and not isinstance(error, SyntaxError):
      text += f" ({os.path.basename(frame.filename)}, line {frame.lineno})"
  return " ".join(text.split())

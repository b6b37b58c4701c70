"""Tests of how every command line reports a user's error
(lstm_unsup/cli.py): one line on stderr and exit status 1, through
`cli.run_main`; a bug keeps its traceback."""

import ast
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import jax
import pytest

from lstm_unsup import cli

ROOT = Path(__file__).resolve().parent.parent
QUICK = "--config=lstm_unsup/configs/composite.py:quick"
# Scripts whose owners wire them to run_main themselves; each must leave
# this list once it does (the test below says so).
PENDING = set()


def _run(*args, env=None, timeout=120):
  return subprocess.run(
    [sys.executable, *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=timeout,
    env=None if env is None else {**os.environ, **env},
  )


# Runs the Python command line in argv[2:] with each file it writes limited
# to argv[1] bytes: a write past it fails with EFBIG, "File too large"
# (Python ignores SIGXFSZ, which would kill it, from the start).
_LIMITED = (
  "import os, resource, sys; n = int(sys.argv[1]); "
  "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); "
  "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


def file_size_limited(max_bytes: int, *args: str) -> list[str]:
  """The command `python ARGS`, each file it writes held to `max_bytes`."""
  return [sys.executable, "-c", _LIMITED, str(max_bytes), *args]


def _one_line(proc, status=1) -> str:
  """The last line of stderr, once sure it is the only report."""
  assert proc.returncode == status, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  return proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
  "config, message",
  [
    ("{syntax}", "Bad config file: {syntax}: SyntaxError: invalid syntax"),
    ("{wrong_type}", "Bad configuration: --config gave an int (42), not"),
    (
      "lstm_unsup/configs/composite.py:quik",
      "Bad config file: lstm_unsup/configs/composite.py:quik: Unknown scale "
      "'quik'; choose one of ('quick', 'cpu', 'paper', 'paper_2015', "
      "'paper_adam').",
    ),
    ("{missing}", "Bad config file: {missing}: "),
  ],
)
def test_a_bad_config_file_is_one_line(tmp_path, config, message):
  files = {
    "syntax": tmp_path / "syntax.py",
    "wrong_type": tmp_path / "wrong_type.py",
    "missing": tmp_path / "missing.py",
  }
  files["syntax"].write_text("def get_config(:\n  pass\n")
  files["wrong_type"].write_text("def get_config():\n  return 42\n")
  workdir = tmp_path / "run"
  proc = _run(
    "-m",
    "lstm_unsup.main",
    f"--config={config.format(**files)}",
    f"--workdir={workdir}",
  )
  last = _one_line(proc)
  assert last.startswith(message.format(**files)), last
  assert len(last) < 300 and not workdir.exists()


@pytest.mark.parametrize(
  "args, message",
  [
    (["lstm_unsup.eval", "--workdir=x", "--nope"], "Bad flag: Unknown comm"),
    (["experiments.plot_curves"], "Bad flag: flag --workdir=None: Flag --wo"),
    (["benchmarks.data_generator", "--repeats=x"], "Bad flag: flag --repeat"),
  ],
)
def test_a_bad_flag_of_any_script_is_one_line(args, message):
  last = _one_line(_run("-m", *args))
  assert last.startswith(message), last


def test_a_jax_platform_that_is_not_installed_is_one_line(tmp_path):
  if any(d.platform == "gpu" for d in jax.devices()):
    pytest.skip("a GPU is installed here")
  for args in (
    ["lstm_unsup.main", QUICK, f"--workdir={tmp_path / 'run'}"],
    ["experiments.tutorial", "--steps=1"],
  ):
    proc = _run("-m", *args, env={"JAX_PLATFORMS": "cuda"})
    last = _one_line(proc)
    assert last.startswith("JAX cannot use platform 'cuda' here: "), last
    assert last.endswith(
      "; install jax[cuda13] (README: Install) or unset JAX_PLATFORMS"
    )
  assert not (tmp_path / "run").exists()


def test_ctrl_c_during_start_up_is_one_line(tmp_path):
  # The digits are a named pipe that nobody writes: start-up blocks in
  # reading them until the signal comes, however slow or fast the cores
  # (a race against a sub-second start-up failed in CI under load).
  data = tmp_path / "data"
  data.mkdir()
  os.mkfifo(data / "mnist.npz")
  workdir = tmp_path / "run"
  proc = subprocess.Popen(
    [
      sys.executable,
      "-m",
      "lstm_unsup.main",
      QUICK,
      f"--workdir={workdir}",
      "--config.data.source=files",
      f"--config.data.data_dir={data}",
    ],
    cwd=ROOT,
    stderr=subprocess.PIPE,
    text=True,
  )
  try:
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # start-up has begun: devices are up
      lines.append(proc.stderr.readline())
      if "JAX devices" in lines[-1] or not lines[-1]:
        break
    assert proc.poll() is None, "".join(lines)  # waiting on the pipe
    proc.send_signal(signal.SIGINT)
    stderr = "".join(lines) + proc.communicate(timeout=120)[1]
  finally:
    proc.kill()
    proc.wait()
  done = types.SimpleNamespace(returncode=proc.returncode, stderr=stderr)
  assert (
    _one_line(done, 130) == "Interrupted during start-up; nothing to resume"
  )
  assert not (workdir / "checkpoints").exists()


SCRIPT = """
import json
from absl import flags
from lstm_unsup import cli

def main(argv):
  if flags.FLAGS.what == "typo":  # the script's own check of its arguments
    raise ValueError("Unknown rows ['futur']; the rows are ['future'].")
  json.loads("{")  # a bug: a ValueError from elsewhere

if __name__ == "__main__":
  flags.DEFINE_string("what", "typo", "")
  cli.run_main(main, checks=(ValueError,))
"""


def test_a_scripts_own_checks_are_one_line_and_a_bug_keeps_its_traceback(
  tmp_path,
):
  script = tmp_path / "script.py"
  script.write_text(SCRIPT)
  last = _one_line(_run(str(script)))
  assert (
    last == "Bad argument: Unknown rows ['futur']; the rows are ['future']."
  )
  bug = _run(str(script), "--what=bug")
  assert bug.returncode == 1 and "Traceback" in bug.stderr
  assert "JSONDecodeError" in bug.stderr


def _main_block_calls(path: Path) -> set[str]:
  """Dotted names of what the `if __name__ == "__main__":` block calls."""
  tree = ast.parse(path.read_text())
  for node in tree.body:
    if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
      return {
        ast.unparse(call.func)
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
      }
  return set()


def test_every_command_line_reports_through_run_main():
  scripts = [ROOT / "lstm_unsup" / name for name in ("main.py", "eval.py")]
  scripts += [ROOT / "lstm_unsup" / "features.py"]
  scripts += [ROOT / "lstm_unsup" / "classifier" / "train.py"]
  for folder in ("experiments", "benchmarks"):
    scripts += sorted((ROOT / folder).glob("*.py"))
  checked = 0
  for path in scripts:
    calls = _main_block_calls(path)
    if not calls:
      continue  # a module, not a command
    name = str(path.relative_to(ROOT))
    if name in PENDING:
      assert "cli.run_main" not in calls, f"{name}: remove it from PENDING"
      continue
    assert "cli.run_main" in calls, f"{name} does not call cli.run_main"
    checked += 1
  assert checked >= 15


def test_every_reported_error_type_exists():
  for module, name, label in cli.REPORTED:
    kind = getattr(__import__(module, fromlist=[name]), name)
    assert issubclass(kind, BaseException) and label, (module, name)


def test_run_main_reports_a_user_error_in_one_line(tmp_path):
  script = tmp_path / "script.py"
  script.write_text(
    textwrap.dedent(
      """
      from lstm_unsup import cli
      from lstm_unsup.data.errors import DataError

      def main(argv):
        raise DataError("The videos have shape (2, 3); expected (B, T, H, W).")

      cli.run_main(main)
      """
    )
  )
  last = _one_line(_run(str(script)))
  assert (
    last == "Bad data: The videos have shape (2, 3); expected (B, T, H, W)."
  )


def test_an_os_error_names_the_file_it_was_writing():
  if not os.path.exists("/dev/full"):
    pytest.skip("no /dev/full here")
  with pytest.raises(OSError) as caught:  # a write's error names no file
    with open("/dev/full", "w") as f:
      f.write("x")
  assert caught.value.filename is None
  assert cli.one_line(caught.value) == (
    "File error: [Errno 28] No space left on device: '/dev/full'"
  )
  named = FileNotFoundError(2, "No such file or directory", "/no/such")
  assert cli.one_line(named) == (
    "File error: [Errno 2] No such file or directory: '/no/such'"
  )


def test_a_file_too_large_on_the_command_line_names_the_file(tmp_path):
  """A 64 kB limit on each file: the first larger write (numba's cache of
  its compiled kernels, or a cached evaluation set without numba) fails."""
  proc = subprocess.run(
    file_size_limited(
      64 * 1024,
      "-m",
      "lstm_unsup.main",
      QUICK,
      f"--workdir={tmp_path / 'run'}",
      "--config.data.source=offline",
      f"--config.data.data_dir={tmp_path / 'data'}",
      "--config.train.num_steps=1",
    ),
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
    env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")},
  )
  last = _one_line(proc)
  named = re.match(r"File error: \[Errno 27\] File too large: '([^']+)' ", last)
  assert named, last
  assert named[1].startswith(str(tmp_path)), last
  assert last.endswith(
    "(a file-size limit: `ulimit -f`, or the file system's largest file)"
  )

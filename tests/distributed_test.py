"""Training and evaluation on two real processes (lstm_unsup/distributed.py):
JAX's distributed runtime with CPU collectives over gloo, on localhost.

Each test starts its processes on free local ports and ends every one it
started, whatever happens (each command's launcher ends its own child
when it is killed).
"""

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from lstm_unsup.run import checkpoints

ROOT = Path(__file__).resolve().parent.parent
QUICK = "--config=lstm_unsup/configs/composite.py:quick"
TIMEOUT_S = 8  # --distributed_timeout_s: how long a silent process waits
# Steps with a checkpoint to resume from half way; hidden 16 keeps it quick.
RUN = [
  "--config.data.source=offline",
  "--config.model.hidden=16",
  "--config.train.num_steps=24",
  "--config.train.checkpoint_every_steps=6",
  "--config.train.eval_every_steps=12",
]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env(tmp_path, devices: int = 1) -> dict:
  flags = (
    f"--xla_force_host_platform_device_count={devices}" if devices > 1 else ""
  )
  return dict(
    os.environ,
    JAX_PLATFORMS="cpu",
    XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {flags}",
    NUMBA_CACHE_DIR=str(tmp_path / "numba"),
  )


def _alone(root, module, *args, devices=1):
  """One process of `python -m module args`, finished."""
  return subprocess.run(
    [sys.executable, "-m", module, *args],
    cwd=ROOT,
    env=_env(root, devices),
    capture_output=True,
    text=True,
    timeout=240,
  )


@contextlib.contextmanager
def _processes(tmp_path, module, args, count=2, port=None, timeout=TIMEOUT_S):
  """`count` processes of `python -m module args`, one id each; yields the
  Popen objects and kills whatever still runs at the end."""
  port = port or _free_port()
  procs = []
  try:
    for i in range(count):
      flags = [
        f"--coordinator_address=localhost:{port}",
        f"--num_processes={count}",
        f"--process_id={i}",
        f"--distributed_timeout_s={timeout}",
      ]
      procs.append(
        subprocess.Popen(
          [sys.executable, "-m", module, *args, *flags],
          cwd=ROOT,
          env=_env(tmp_path),
          stdout=subprocess.PIPE,
          stderr=subprocess.PIPE,
          text=True,
        )
      )
    yield procs
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
      proc.communicate()


def _finish(procs, timeout=240):
  outs = [p.communicate(timeout=timeout) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  return outs


def _train_two(tmp_path, workdir):
  args = ["lstm_unsup.main", QUICK, f"--workdir={workdir}", *RUN]
  with _processes(tmp_path, args[0], args[1:]) as procs:
    return _finish(procs)


def _records(workdir) -> list[dict]:
  with open(f"{workdir}/metrics.jsonl") as f:
    return [json.loads(line) for line in f]


def _assert_same_run(a, b, rtol):
  jax.tree.map(
    lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-7),
    checkpoints.restore_state(a),
    checkpoints.restore_state(b),
  )
  for x, y in zip(_records(a), _records(b), strict=True):
    assert (x["step"], x["split"]) == (y["step"], y["split"])
    for key, value in x.items():
      if isinstance(value, float) and "sec" not in key:
        np.testing.assert_allclose(value, y[key], rtol=max(rtol, 1e-6))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """The same run on one process with two devices and on two processes."""
  root = tmp_path_factory.mktemp("distributed")
  one = root / "one"
  ran = _alone(
    root, "lstm_unsup.main", QUICK, f"--workdir={one}", *RUN, devices=2
  )
  assert ran.returncode == 0, ran.stderr[-3000:]
  two = root / "two"
  outs = _train_two(root, two)
  return root, one, two, outs


def test_two_processes_train_as_one_with_two_devices(runs):
  _, one, two, outs = runs
  # The global batch is the same sequences whatever the process layout.
  _assert_same_run(one, two, rtol=1e-6)
  # Process 0 reports; process 1 prints nothing of its own.
  (out_0, _), (out_1, _) = outs
  assert "Test set:" in out_0 and out_1 == ""


def test_only_process_0_writes_the_runs_files(runs):
  """A second writer would leave a second TensorBoard file, twice the
  metrics lines, or a lock of its own; the files are those of one process."""
  _, one, two, _ = runs

  def files(workdir):
    names = set()
    for path in glob.glob(f"{workdir}/**", recursive=True):
      rel = os.path.relpath(path, workdir)
      if os.path.isfile(path) and not rel.startswith("checkpoints"):
        names.add(rel.split(".out.tfevents.")[0])
    return names

  assert files(two) == files(one)
  assert len(glob.glob(f"{two}/tensorboard/*tfevents*")) == 1
  assert len(_records(two)) == len(_records(one))


def test_a_killed_process_stops_the_other_and_the_rerun_resumes_exactly(
  runs,
):
  root, _, two, _ = runs
  workdir = root / "killed"
  args = [QUICK, f"--workdir={workdir}", *RUN]
  with _processes(root, "lstm_unsup.main", args) as procs:
    deadline = time.monotonic() + 240
    while not glob.glob(f"{workdir}/checkpoints/6"):  # one to resume from
      assert time.monotonic() < deadline and procs[0].poll() is None
      time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    _, err = procs[0].communicate(timeout=TIMEOUT_S + 60)
    took = time.monotonic() - killed
  assert procs[0].returncode == 1, err[-3000:]
  last = err.strip().splitlines()[-1]
  assert last == (
    "Process lost: process 1 stopped answering; this process stops too. "
    "Rerun the same command on every process to resume from the last "
    "checkpoint."
  ), err[-3000:]
  assert took < TIMEOUT_S + 30
  assert "Traceback" not in err and "Check failure" not in err
  # The rerun on two processes resumes and ends as the run never stopped.
  _train_two(root, workdir)
  _assert_same_run(workdir, two, rtol=0)


def test_a_signal_to_one_process_stops_both_at_the_same_saved_step(tmp_path):
  """SIGTERM to process 1 stopped it; process 0 then failed (IndexError)."""
  workdir = tmp_path / "run"
  args = [QUICK, f"--workdir={workdir}", *RUN, "--config.train.num_steps=5000"]
  with _processes(tmp_path, "lstm_unsup.main", args) as procs:
    deadline = time.monotonic() + 240
    while not glob.glob(f"{workdir}/checkpoints/6"):
      assert time.monotonic() < deadline and procs[0].poll() is None
      time.sleep(0.05)
    procs[1].send_signal(signal.SIGTERM)
    errs = [p.communicate(timeout=120)[1] for p in procs]
  lines = [err.strip().splitlines()[-1] for err in errs]
  assert [p.returncode for p in procs] == [143, 143], errs[0][-3000:]
  assert lines[0] == lines[1] and lines[0].startswith("Stopped by SIGTERM at")
  step = lines[0].split("saved checkpoint ")[1].split(";")[0]
  assert os.path.isdir(workdir / "checkpoints" / step)


def test_eval_on_two_processes_gives_one_process_numbers(runs):
  root, one, _, _ = runs
  alone = _alone(root, "lstm_unsup.eval", f"--workdir={one}")
  assert alone.returncode == 0, alone.stderr[-3000:]
  single = json.loads((one / "eval_test.json").read_text())
  (one / "eval_test.json").unlink()
  with _processes(root, "lstm_unsup.eval", [f"--workdir={one}"]) as procs:
    (out_0, _), (out_1, _) = _finish(procs)
  # The same report from process 0 (to float rounding); none from 1.
  assert out_0.splitlines()[0] == alone.stdout.splitlines()[0] and out_1 == ""
  together = json.loads((one / "eval_test.json").read_text())
  assert together.keys() == single.keys()
  for key, value in single.items():
    if isinstance(value, float):
      np.testing.assert_allclose(together[key], value, rtol=1e-6)


@pytest.mark.slow  # 35 s: one more run of each command on two processes
def test_features_and_the_classifier_on_two_processes(runs):
  """Each process computes the whole; process 0 writes what one would."""
  root, one, _, _ = runs
  out = [root / "features_1.npy", root / "features_2.npy"]
  export = [f"--workdir={one}", "--split=test"]
  alone = _alone(root, "lstm_unsup.features", *export, f"--output={out[0]}")
  assert alone.returncode == 0, alone.stderr[-3000:]
  args = [*export, f"--output={out[1]}"]
  with _processes(root, "lstm_unsup.features", args) as procs:
    (said, _), (silent, _) = _finish(procs)
  assert said == alone.stdout.replace(str(out[0]), str(out[1])) and not silent
  np.testing.assert_array_equal(np.load(out[1]), np.load(out[0]))
  classifier = ["--config=lstm_unsup/configs/classifier.py:quick"]
  runs_of = {n: root / f"classifier_{n}" for n in (1, 2)}
  alone = _alone(
    root, "lstm_unsup.classifier.train", *classifier,
    f"--workdir={runs_of[1]}",
  )  # fmt: skip
  assert alone.returncode == 0, alone.stderr[-3000:]
  args = [*classifier, f"--workdir={runs_of[2]}"]
  with _processes(root, "lstm_unsup.classifier.train", args) as procs:
    _finish(procs)
  for x, y in zip(_records(runs_of[1]), _records(runs_of[2]), strict=True):
    assert x.keys() == y.keys()
    assert x.get("accuracy") == y.get("accuracy")


def test_a_run_of_two_processes_goes_on_on_one(runs):
  root, _, two, _ = runs
  onwards = root / "onwards"
  shutil.copytree(two, onwards)
  steps = [a for a in RUN if "num_steps" not in a]
  done = _alone(
    root, "lstm_unsup.main", QUICK, f"--workdir={onwards}", *steps,
    "--config.train.num_steps=30",
  )  # fmt: skip
  assert done.returncode == 0, done.stderr[-3000:]
  assert "Resumed from the checkpoint of step 24." in done.stderr
  assert _records(onwards)[-1]["step"] == 30


def test_an_id_outside_the_processes_is_one_line(tmp_path):
  done = _alone(
    tmp_path, "lstm_unsup.main", QUICK, f"--workdir={tmp_path / 'run'}",
    "--num_processes=2", "--process_id=2", "--coordinator_address=localhost:1",
  )  # fmt: skip
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1] == (
    "Processes cannot run: --process_id=2 with --num_processes=2: each "
    "process needs its own id from 0 to 1."
  )


@pytest.mark.parametrize("fault", ["no coordinator", "port in use"])
def test_a_coordinator_that_cannot_be_reached_or_served_is_one_line(
  tmp_path, fault
):
  args = [QUICK, f"--workdir={tmp_path / 'run'}"]
  with socket.socket() as taken:
    taken.bind(("", 0))
    taken.listen()
    port = taken.getsockname()[1] if fault == "port in use" else _free_port()
    with _processes(
      tmp_path, "lstm_unsup.main", args, port=port, timeout=3
    ) as procs:
      proc = procs[0 if fault == "port in use" else 1]
      procs[1 - procs.index(proc)].kill()  # alone: the peer never comes
      _, err = proc.communicate(timeout=TIMEOUT_S + 60)
  assert proc.returncode == 1
  want = "its port is in use" if fault == "port in use" else "no coordinator"
  assert len(err.strip().splitlines()) <= 3, err[-3000:]  # info lines at most
  last = err.strip().splitlines()[-1]
  assert last.startswith("Processes cannot run: ") and want in last, last
  assert not (tmp_path / "run").exists()

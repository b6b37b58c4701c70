"""Several processes through JAX's distributed runtime (one per host or GPU).

Each process runs the same command with its own id; together they form one
global mesh over every process's devices (docs/distributed.md):

  python -m lstm_unsup.main --config=... --workdir=W \
      --coordinator_address=HOST0:PORT --num_processes=N --process_id=I

The flags fall back to the environment (`JAX_COORDINATOR_ADDRESS`,
`LSTM_UNSUP_NUM_PROCESSES`, `LSTM_UNSUP_PROCESS_ID`); `--multihost` lets
`jax.distributed.initialize()` read them from the cluster (SLURM, Cloud
TPU, Open MPI, Kubernetes). One process needs none of them. On the CPU the
collectives go over gloo (TCP).

Process 0 is the writer (`is_writer`): it holds the workdir and writes
every file but the checkpoints, which every process saves and restores
through orbax. If a process dies, the others stop within
`--distributed_timeout_s` with one line naming it (`_supervise`): JAX
would otherwise abort them with a C++ stack trace.
"""

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
import numpy as np
from absl import flags, logging

ENV_NUM_PROCESSES = "LSTM_UNSUP_NUM_PROCESSES"
ENV_PROCESS_ID = "LSTM_UNSUP_PROCESS_ID"


class DistributedError(RuntimeError):
  """The processes cannot start or go on together; the message says why."""


def define_flags() -> None:
  """The launch flags, for every command that can run on several processes."""
  flags.DEFINE_string(
    "coordinator_address",
    None,
    "HOST:PORT of process 0's coordinator (env JAX_COORDINATOR_ADDRESS).",
  )
  flags.DEFINE_integer(
    "num_processes", None, f"Processes in all (env {ENV_NUM_PROCESSES})."
  )
  flags.DEFINE_integer(
    "process_id", None, f"This process's id, 0..N-1 (env {ENV_PROCESS_ID})."
  )
  flags.DEFINE_bool(
    "multihost",
    False,
    "Let jax.distributed.initialize() read the cluster (SLURM, Cloud TPU).",
  )
  flags.DEFINE_integer(
    "distributed_timeout_s",
    60,
    "Seconds to wait for the other processes to connect, and for a silent "
    "process before the others stop.",
  )


def initialize_from_flags() -> None:
  """Joins the processes the flags or the environment name, if any."""
  FLAGS = flags.FLAGS
  env = os.environ
  address = FLAGS.coordinator_address or env.get("JAX_COORDINATOR_ADDRESS")
  count = FLAGS.num_processes or _int_env(ENV_NUM_PROCESSES)
  index = FLAGS.process_id
  index = _int_env(ENV_PROCESS_ID) if index is None else index
  timeout = FLAGS.distributed_timeout_s
  several = FLAGS.multihost or (count is not None and count > 1)
  if not several:
    return
  if not FLAGS.multihost:
    _check_arguments(address, count, index)
    if index == 0 and SUPERVISED not in os.environ:
      _check_port_free(address)
  if SUPERVISED not in os.environ:
    sys.exit(_supervise())  # runs the command again, as its child
  _watch_launcher(int(os.environ[SUPERVISED]))
  initialize(address, count, index, timeout_s=timeout, detect=FLAGS.multihost)


def _int_env(name: str) -> int | None:
  text = os.environ.get(name)
  if text is None:
    return None
  if not text.strip().isdigit():
    raise DistributedError(f"{name}={text!r} is not a whole number.")
  return int(text)


_state = {"processes": 1, "timeout_s": 60}


def initialize(
  coordinator_address: str | None,
  num_processes: int | None,
  process_id: int | None,
  *,
  timeout_s: int = 60,
  detect: bool = False,
) -> None:
  """jax.distributed.initialize, checked first and reported in one line
  (a process lost later is reported by `_supervise`, the launcher)."""
  if not detect:
    _check_arguments(coordinator_address, num_processes, process_id)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  _state["timeout_s"] = timeout_s
  try:
    jax.distributed.initialize(
      coordinator_address,
      num_processes,
      process_id,
      initialization_timeout=timeout_s,
      heartbeat_timeout_seconds=timeout_s,
    )
  except Exception as e:  # JAX raises bare RuntimeErrors and ValueErrors
    raise DistributedError(_why_not_started(e, coordinator_address)) from e
  _state["processes"] = jax.process_count()
  logging.info(
    "Process %d of %d, devices %s of %d in all.",
    jax.process_index(),
    jax.process_count(),
    [d.id for d in jax.local_devices()],
    jax.device_count(),
  )
  if jax.process_index() != 0:  # process 0 logs the run's progress
    logging.set_verbosity(logging.WARNING)


def _check_arguments(address, count, index) -> None:
  if address is None or not re.fullmatch(r"\[?[\w.:-]+\]?:\d+", address):
    raise DistributedError(
      f"--coordinator_address={address!r}: give process 0's HOST:PORT "
      "(the same on every process), e.g. node0:12355."
    )
  if index is None or not 0 <= index < count:
    raise DistributedError(
      f"--process_id={index} with --num_processes={count}: each process "
      f"needs its own id from 0 to {count - 1}."
    )


def _why_not_started(error: Exception, address: str | None) -> str:
  text = " ".join(str(error).split())
  if "address already in use" in text.lower() or "bind" in text.lower():
    return (
      f"Process 0 cannot serve the coordinator at {address}: the port is in "
      "use. Choose a free port, the same on every process."
    )
  if "deadline" in text.lower() or "timed out" in text.lower():
    return (
      f"No coordinator answered at {address} within "
      f"{_state['timeout_s']} s: start process 0 there, check the address "
      "and port, or raise --distributed_timeout_s."
    )
  return f"jax.distributed.initialize failed: {text[:400]}"


# ----------------------------------------------------------------------------
# A process that dies.
#
# When a process dies, JAX's runtime aborts the others from a C++ thread,
# with a stack trace, once the coordinator misses its heartbeats (or at
# once when the coordinator itself is gone). Nothing in Python can catch
# that, so each process runs the command in a child and watches it: JAX's
# report of a lost process becomes one line, and anything else the child
# prints passes through.

SUPERVISED = "LSTM_UNSUP_SUPERVISED"  # set in the child
_RUNTIME_REPORT = re.compile(r"^([EWF]\d{4} |RPC: /xla|\*\*\* Check failure)")


def _supervise() -> int:
  """Runs this command again as a child and returns its exit status,
  turning JAX's abort on a lost process into one line."""
  env = dict(os.environ, **{SUPERVISED: str(os.getpid())})
  child = subprocess.Popen(
    [sys.executable, *sys.orig_argv[1:]],
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    errors="replace",
    start_new_session=True,  # signals reach it once, from here
  )
  for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(signum, lambda s, _: child.send_signal(s))
  output = threading.Thread(target=_forward_output, args=(child.stdout,))
  output.start()
  held = []  # from the runtime's first report on: shown if unexplained
  for line in child.stderr:
    if held or _RUNTIME_REPORT.match(line):
      held.append(line)
    else:
      sys.stderr.write(line)
      sys.stderr.flush()
  status = child.wait()
  output.join()
  line = _explained(" ".join(held)) if status else None
  if line is not None:
    print(line, file=sys.stderr)
    return 1
  sys.stderr.writelines(held)
  return 128 - status if status < 0 else status


def _forward_output(stream) -> None:
  """The child's standard output, without gloo's "connected" notices."""
  for line in stream:
    if not line.startswith("[Gloo] Rank "):
      sys.stdout.write(line)
      sys.stdout.flush()


def _explained(text: str) -> str | None:
  """One line for what JAX's runtime reported, or None if it is not a lost
  process or a coordinator that cannot be reached or served."""
  if "Failed to add port to server" in text:
    return _PORT_IN_USE
  if "RegisterTask" in text:
    return (
      "Processes cannot run: no coordinator answered at "
      "--coordinator_address in time. Start process 0, check the address "
      "and port, or raise --distributed_timeout_s."
    )
  unhealthy = re.search(r"heartbeats\):\s*([\d,\s]+)", text)
  if unhealthy:
    who = f"process {', '.join(re.findall(r'[0-9]+', unhealthy[1]))}"
  elif "Polled an error from coordination service" in text:
    who = "process 0 (the coordinator)"
  else:
    return None
  return (
    f"Process lost: {who} stopped answering; this process stops too. Rerun "
    "the same command on every process to resume from the last checkpoint."
  )


_PORT_IN_USE = (
  "Processes cannot run: process 0 cannot serve the coordinator at "
  "--coordinator_address: its port is in use. Choose a free port, the "
  "same on every process."
)


def _check_port_free(address: str) -> None:
  """Process 0 serves on the port of `address`; JAX crashes if it is taken."""
  port = int(address.rsplit(":", 1)[1])
  for family, host in ((socket.AF_INET6, "::"), (socket.AF_INET, "")):
    try:
      probe = socket.socket(family, socket.SOCK_STREAM)
    except OSError:  # no IPv6 here
      continue
    with probe:
      probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
      try:
        probe.bind((host, port))
      except OSError as e:
        if e.errno == errno.EADDRINUSE:
          raise DistributedError(_PORT_IN_USE.split(": ", 1)[1]) from e
      return


def _watch_launcher(parent: int) -> None:
  """Ends this child if the process that launched it is gone (killed)."""

  def watch():
    while os.getppid() == parent:
      time.sleep(0.5)
    os._exit(1)

  threading.Thread(target=watch, daemon=True).start()


def collective_failed(error: BaseException) -> bool:
  """Whether `error` is a collective that failed because a peer is gone."""
  text = str(error)
  return is_multiprocess() and any(
    mark in text
    for mark in ("Gloo", "Connection closed by peer", "Connection reset")
  )


def report_lost_peer(error: BaseException) -> None:
  """Waits for JAX's runtime to name the lost process (it aborts this one
  within the heartbeat time, and the launcher says it in one line); ends
  this process itself if it never does."""
  time.sleep(_state["timeout_s"] + 5)
  text = " ".join(str(error).split())[:300]
  print(f"Process lost: a collective failed ({text}).", file=sys.stderr)
  sys.stderr.flush()
  os._exit(1)


# ----------------------------------------------------------------------------
# Working together.


def is_multiprocess() -> bool:
  return _state["processes"] > 1


def is_writer() -> bool:
  """Whether this process writes the run's files (process 0)."""
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Waits until every process gets here (nothing with one process)."""
  if is_multiprocess():
    from jax.experimental import multihost_utils  # noqa: PLC0415

    multihost_utils.sync_global_devices(name)


def agree(*values: int) -> tuple[int, ...]:
  """Each value's largest over every process, on every process: a time
  budget or a signal that one process saw must stop them all at the same
  step (one small all-gather)."""
  if not is_multiprocess():
    return values
  from jax.experimental import multihost_utils  # noqa: PLC0415

  mine = np.array(values, np.int64)
  every_PxV = np.asarray(multihost_utils.process_allgather(mine))
  return tuple(int(v) for v in every_PxV.reshape(-1, len(values)).max(0))


def local_rows(sharding, global_shape) -> slice:
  """The rows (leading axis) of a batch that this process's devices hold
  under `sharding`: one contiguous block."""
  indices = sharding.addressable_devices_indices_map(tuple(global_shape))
  rows = [i[0].indices(global_shape[0]) for i in indices.values()]
  return slice(min(r[0] for r in rows), max(r[1] for r in rows))

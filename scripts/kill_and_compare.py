"""Kill-and-compare: a run killed with SIGKILL at random steps, then resumed
by rerunning the same command, ends bit-identical to an uninterrupted run.

  python scripts/kill_and_compare.py --kills=5 [--seed=0] [--num_steps=40]

It trains an uninterrupted reference run at the quick scale (every step
logged, evaluations and checkpoints at other periods, so kills land while
training, evaluating, logging or saving). Then, for each kill point, it
starts the same command in a fresh workdir, sends SIGKILL once
metrics.jsonl reaches a random step, reruns the command to the end and
compares every metrics.jsonl value (all but the timing `steps_per_sec`)
and every array of the final checkpoint (step, parameters, optimiser state)
with the reference's, bit for bit. Exit status 0 when every kill passes.
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from lstm_unsup.run import checkpoints, metrics_io  # noqa: E402


def command(workdir: Path, data_dir: Path, num_steps: int) -> list[str]:
  """The training command: quick scale, every step logged."""
  return [
    sys.executable,
    "-m",
    "lstm_unsup.main",
    "--config=lstm_unsup/configs/composite.py:quick",
    f"--workdir={workdir}",
    "--config.data.source=offline",
    f"--config.data.data_dir={data_dir}",
    f"--config.train.num_steps={num_steps}",
    "--config.train.log_every_steps=1",
    "--config.train.eval_every_steps=5",
    "--config.train.checkpoint_every_steps=3",
    "--config.train.keep_checkpoints=2",
  ]


def run_to_end(cmd: list[str]) -> None:
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
  if proc.returncode:
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")


def last_step(workdir: Path) -> int:
  """The last step in metrics.jsonl (0 if none yet; a torn line is 0)."""
  path = Path(metrics_io.path(str(workdir)))
  if not path.exists():
    return 0
  lines = path.read_text().splitlines()
  try:
    return int(lines[-1].split('"step": ')[1].split(",")[0]) if lines else 0
  except (IndexError, ValueError):
    return 0


def on_disk(workdir: Path) -> tuple[list[int], list[str]]:
  """Finished checkpoint steps, and the temporary folders of a save."""
  folder = workdir / "checkpoints"
  names = os.listdir(folder) if folder.exists() else []
  steps = sorted(int(n) for n in names if n.isdigit())
  return steps, sorted(n for n in names if not n.isdigit())


def kill_at(cmd: list[str], workdir: Path, step: int, delay: float) -> dict:
  """Starts `cmd`, SIGKILLs it `delay` seconds after metrics.jsonl reaches
  `step` (so the kill lands anywhere in what follows: training, an
  evaluation, a figure, a checkpoint)."""
  proc = subprocess.Popen(
    cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
  )
  while proc.poll() is None and last_step(workdir) < step:
    time.sleep(0.002)
  time.sleep(delay)
  if proc.poll() is not None:
    raise RuntimeError(f"The run ended (status {proc.returncode}) first.")
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  steps, partial = on_disk(workdir)
  return {"reached": last_step(workdir), "saved": steps, "partial": partial}


def records(workdir: Path) -> list[dict]:
  return [
    {k: v for k, v in r.items() if k != "steps_per_sec"}
    for r in metrics_io.read_metrics(str(workdir), damaged="refuse")
  ]


def compare(reference: Path, other: Path) -> tuple[int, int]:
  """(records, arrays) compared; raises AssertionError on any difference."""
  ref_records, new_records = records(reference), records(other)
  if ref_records != new_records:
    for i, (a, b) in enumerate(zip(ref_records, new_records)):
      assert a == b, f"metrics record {i} differs:\n{a}\n{b}"
    raise AssertionError(
      f"{len(ref_records)} metrics records vs {len(new_records)}"
    )
  a = checkpoints.restore_state(str(reference))
  b = checkpoints.restore_state(str(other))
  paths_a = jax.tree_util.tree_leaves_with_path(a)
  paths_b = jax.tree_util.tree_leaves_with_path(b)
  assert [p for p, _ in paths_a] == [p for p, _ in paths_b], "tree differs"
  for (path, x), (_, y) in zip(paths_a, paths_b):
    x, y = np.asarray(x), np.asarray(y)
    same = x.dtype == y.dtype and x.shape == y.shape
    assert same and x.tobytes() == y.tobytes(), f"{path} differs"
  return len(ref_records), len(paths_a)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--kills", type=int, default=5)
  parser.add_argument("--num_steps", type=int, default=40)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--workdir", default="", help="default: a temp dir")
  parser.add_argument(
    "--jax_cache",
    action="store_true",
    help="share JAX's compilation cache between the runs (faster; then the "
    "runs after the reference reuse its compiled code)",
  )
  args = parser.parse_args(argv)
  root = Path(args.workdir or tempfile.mkdtemp(prefix="kill_and_compare_"))
  data_dir = root / "data"
  if args.jax_cache:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(root / "jax_cache")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
  rng = random.Random(args.seed)
  start = time.perf_counter()
  reference = root / "reference"
  run_to_end(command(reference, data_dir, args.num_steps))
  print(f"reference: {args.num_steps} steps in {root}", flush=True)
  failures = 0
  for k in range(args.kills):
    workdir = root / f"killed_{k}"
    cmd = command(workdir, data_dir, args.num_steps)
    target = rng.randint(1, args.num_steps - 1)
    delay = rng.uniform(0.0, 0.05)
    kill = kill_at(cmd, workdir, target, delay)
    run_to_end(cmd)
    try:
      n_records, n_arrays = compare(reference, workdir)
      verdict = f"{n_records} records and {n_arrays} arrays bit-identical  PASS"
    except AssertionError as e:
      failures += 1
      verdict = f"FAIL: {e}"
    print(
      f"kill {k + 1}/{args.kills}: SIGKILL at step {kill['reached']} "
      f"(target {target} + {delay * 1000:.0f} ms); checkpoints on disk "
      f"{kill['saved']}"
      f"{', a save in progress' if kill['partial'] else ''}; resumed from "
      f"step {max(kill['saved'], default=0)} -> {verdict}",
      flush=True,
    )
  passed = args.kills - failures
  print(
    f"{passed}/{args.kills} kill points passed "
    f"({time.perf_counter() - start:.0f} s)."
  )
  return 1 if failures else 0


if __name__ == "__main__":
  sys.exit(main())

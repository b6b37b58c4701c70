"""Clipped Adam in one pass over memory: a compiled kernel for the CPU.

On the CPU the Adam update is bound by memory speed, and XLA makes about
ten passes over the parameters, moments and gradients for it (each
single-output fusion rereads what it needs). `fused_adam.cc` reads each
array once and writes the parameter and moments in place: the training
step at H=1024, batch 16 ran 7.5% faster (README, "Training speed against
Flax and PyTorch").

The kernel is an XLA FFI handler. It is compiled on first use with the
system's C++ compiler (`$CXX`, else g++, c++ or clang++) against the FFI
headers that jaxlib ships, for the CPU it runs on (`-march=native`), and
cached under `$LSTM_UNSUP_CACHE_DIR` (default `$XDG_CACHE_HOME/lstm_unsup`
or `~/.cache/lstm_unsup`), keyed by the source, the compiler, jax's version
and this CPU. Without a compiler, or off the CPU, or with
`LSTM_UNSUP_NATIVE_ADAM=0`, `optimizers.clipped_adam` runs the same maths
through XLA; `available()` and `unavailable_reason()` say which.

Loading the library runs its code, so the cache is trusted only as far as
it is private and whole:

  * the cache folder is created with mode 0o700; the library is compiled
    beside its name, made 0o700, flushed to the disk and renamed into
    place, then its SHA-256 is written beside it (`<name>.so.sha256`,
    in `sha256sum`'s format, mode 0o600), atomically;
  * before every load the library must match that record: a damaged one
    (a truncated file used to kill the process with a bus error) or one
    without a record is rebuilt, with a warning naming it;
  * a library, record or cache folder that another user owns, or that the
    group or others may write, is not loaded: the kernel is off, and the
    reason names the file and the fix (`chmod go-w PATH`, or set
    `LSTM_UNSUP_CACHE_DIR` to a folder of your own).

Builds of the same library by several processes take turns (a lock on the
cache folder), so none reads another's half-written files.
"""

import contextlib
import ctypes
import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import jax
import numpy as np
from absl import logging

from lstm_unsup import files, hardware
from lstm_unsup.data import checksums

SOURCE = Path(__file__).with_name("fused_adam.cc")
TARGET = "lstm_unsup_clipped_adam"  # the FFI target's registered name
_SYMBOL = "LstmUnsupClippedAdam"  # the handler's symbol in fused_adam.cc
_FLAGS = (
  "-O3",
  "-march=native",
  "-fno-math-errno",  # lets sqrt vectorise
  "-fopenmp-simd",
  "-std=c++17",
  "-shared",
  "-fPIC",
  "-w",
)


class UnsafeCacheError(Exception):
  """The cache could hold another user's code: nothing in it is loaded."""


def cache_dir() -> Path:
  if "LSTM_UNSUP_CACHE_DIR" in os.environ:
    return Path(os.environ["LSTM_UNSUP_CACHE_DIR"])
  base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
  return Path(base) / "lstm_unsup"


def _compiler() -> str | None:
  if os.environ.get("CXX"):
    return shutil.which(os.environ["CXX"])
  for name in ("g++", "c++", "clang++"):
    if shutil.which(name):
      return shutil.which(name)
  return None


def _library_path(compiler: str) -> Path:
  version = subprocess.run(
    [compiler, "--version"], capture_output=True, text=True, check=False
  ).stdout
  key = hashlib.sha256()
  for part in (
    SOURCE.read_bytes(),
    compiler.encode(),
    version.encode(),
    " ".join(_FLAGS).encode(),
    jax.__version__.encode(),
    hardware.cpu().identity.encode(),
  ):
    key.update(part)
  return cache_dir() / f"fused_adam-{key.hexdigest()[:16]}.so"


def build(compiler: str) -> Path:
  """The kernel's library in the cache, compiled unless the cache holds it
  whole (matching its SHA-256 record). Raises UnsafeCacheError, building
  and loading nothing, if someone else could have written the cache."""
  path = _library_path(compiler)
  record = checksums.sidecar(path)
  path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
  _check_private(path.parent)
  with _locked(path.parent):
    for existing in (path, record):
      if existing.exists():
        _check_private(existing)
    if not path.exists():
      why = None  # first use: nothing to say
    elif not record.exists():
      why = (
        f"{path} has no checksum beside it (built before checksums, or its "
        "building was cut short), so it is unverified"
      )
    else:
      why = checksums.mismatch(record, {path.name: path})
      if why is None:
        return path
    if why is not None:
      logging.warning("%s; rebuilding it.", why)
    _compile(compiler, path)
    checksums.write(record, {path.name: path}, mode=0o600)
  return path


def _compile(compiler: str, path: Path) -> None:
  """Compiles the kernel beside `path`, then renames it to `path`: a
  crash or a failed build never leaves part of a library there."""
  fd, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
  os.close(fd)
  cmd = [compiler, *_FLAGS, f"-I{jax.ffi.include_dir()}", str(SOURCE)]
  try:
    done = subprocess.run(
      [*cmd, "-o", tmp], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
      raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    os.chmod(tmp, 0o700)  # the linker's mode follows the umask
    files.rename_durably(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


def _check_private(path: Path) -> None:
  """Raises UnsafeCacheError if another user owns `path`, or the group or
  others may write it: they could put their code where training loads it."""
  info = path.stat()
  fix = "set LSTM_UNSUP_CACHE_DIR to a folder of your own"
  if info.st_uid != os.geteuid():
    raise UnsafeCacheError(
      f"{path} belongs to user id {info.st_uid}, not to you "
      f"({os.geteuid()}), so it may hold their code; not loading the kernel "
      f"from the cache; {fix}."
    )
  if info.st_mode & 0o022:
    who = {0o020: "the group", 0o002: "others"}.get(
      info.st_mode & 0o022, "the group and others"
    )
    raise UnsafeCacheError(
      f"{path} is writable by {who} (mode {info.st_mode & 0o777:o}), so "
      "they could put their code in what training loads; not loading the "
      f"kernel from the cache. Run `chmod go-w {path}`, or {fix}."
    )


@contextlib.contextmanager
def _locked(folder: Path):
  """Holds an exclusive lock on `folder` (the system releases it if the
  process dies)."""
  fd = os.open(folder, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)


@functools.cache
def _load() -> str | None:
  """Builds and registers the kernel once; returns why not, or None."""
  if os.environ.get("LSTM_UNSUP_NATIVE_ADAM", "1") == "0":
    return "LSTM_UNSUP_NATIVE_ADAM=0"
  if not hasattr(jax, "ffi") or not hasattr(jax.ffi, "include_dir"):
    return f"jax {jax.__version__} has no jax.ffi"
  compiler = _compiler()
  if compiler is None:
    return "no C++ compiler found (set $CXX)"
  try:
    path = build(compiler)  # checks the cache first
    library = ctypes.CDLL(str(path))
    capsule = jax.ffi.pycapsule(getattr(library, _SYMBOL))
    jax.ffi.register_ffi_target(TARGET, capsule, platform="cpu")
  except UnsafeCacheError as e:
    return str(e)
  except (OSError, RuntimeError, AttributeError) as e:
    return f"building the kernel failed: {e}"
  logging.info("clipped Adam: one pass, kernel %s", path)
  return None


def unavailable_reason() -> str | None:
  """None when the kernel can run here; otherwise why it cannot."""
  if jax.default_backend() != "cpu":
    return f"the kernel is for the CPU; the backend is {jax.default_backend()}"
  return _load()


@functools.cache
def available() -> bool:
  """Whether the kernel runs here; says once why not (a warning on the CPU,
  where it was expected)."""
  reason = unavailable_reason()
  if reason is not None:
    log = logging.warning if jax.default_backend() == "cpu" else logging.info
    log("clipped Adam runs through XLA: %s", reason)
  return reason is None


def clipped_adam_leaf(p, m, v, g, coefficients, *, b1, b2, eps):
  """One float32 parameter's Adam step: returns (p, m, v), written in place.

  `coefficients` is float32 [scale, lr, c1, c2]: the clipping scale, the
  learning rate and the two bias corrections of this step.
  """
  shape = jax.ShapeDtypeStruct(p.shape, p.dtype)
  call = jax.ffi.ffi_call(
    TARGET, (shape, shape, shape), input_output_aliases={0: 0, 1: 1, 2: 2}
  )
  return call(
    p,
    m,
    v,
    g,
    coefficients,
    b1=np.float32(b1),
    b2=np.float32(b2),
    # Rounded from Python floats, as the XLA path's constants are.
    one_minus_b1=np.float32(1 - b1),
    one_minus_b2=np.float32(1 - b2),
    eps=np.float32(eps),
  )

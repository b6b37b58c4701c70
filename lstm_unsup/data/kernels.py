"""Compiled (numba) kernels of the Moving MNIST generator.

Two loops that numpy can only run as many small array operations:

  * `paste_frames`: build a range of frames, one at a time in a scratch
    frame that stays in cache, and write each out once, by non-temporal
    stores where the layout allows (the output is not read into cache
    first: at batch 80 this takes a third off the paste);
  * `authors_steps`: the authors' step-then-clamp-and-flip trajectories,
    one digit coordinate at a time.

Each has a numpy twin that gives identical results (paste.paste_max_numpy,
moving_mnist.trajectories with backend="numpy"), used when numba is missing
and as the oracle in the tests. `compiled()` returns the kernels, or None
when numba does not import, and `for_backend` picks by the generator's
"auto", "numba" or "numpy" argument. They compile on first use (a second or
two) and are cached beside `numba_kernels.py`, which defines them, so later
processes load them at once.
Both release the GIL.
"""

import functools
from typing import NamedTuple


class Kernels(NamedTuple):
  paste_frames: object
  authors_steps: object


BACKENDS = ("auto", "numba", "numpy")
VECTOR = 16  # float32 values per streaming store (64 bytes, a cache line)


def for_backend(backend: str) -> Kernels | None:
  """The kernels that `backend` asks for: the compiled ones for "numba", or
  for "auto" when numba imports; None means "use the numpy twins"."""
  if backend not in BACKENDS:
    raise ValueError(f"Unknown backend {backend!r}; choose one of {BACKENDS}.")
  kernels = compiled() if backend != "numpy" else None
  if kernels is None and backend == "numba":
    raise ImportError("backend='numba' needs numba: pip install numba")
  return kernels


@functools.cache
def compiled() -> Kernels | None:
  """The numba kernels (`numba_kernels.py`), or None when numba is not
  installed."""
  try:
    from lstm_unsup.data import numba_kernels  # noqa: PLC0415
  except ImportError:
    return None
  return Kernels(numba_kernels.paste_frames, numba_kernels.authors_steps)

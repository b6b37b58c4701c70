"""The CPU a process runs on, read once from /proc/cpuinfo.

Three places ask: the benchmarks record the model and whether it has
AVX-512 beside every speed ratio, `experiments.time_to_quality` says
whether bfloat16 is native, and the Adam kernel (optim/fused_adam.py)
keys its compiled library by what `-march=native` compiled for. This is
their one reader; it imports nothing heavy, so a script can call it
before JAX starts.

Where there is no /proc/cpuinfo (macOS, Windows), the model is
`platform.processor()` and the flags are empty: "unknown", never a guess.
"""

import dataclasses
import functools
import os
import platform

CPUINFO = "/proc/cpuinfo"
# Instruction sets with bfloat16 arithmetic: x86 (AVX-512, AMX) and Arm.
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@dataclasses.dataclass(frozen=True)
class Cpu:
  model: str  # "AMD EPYC", "Intel(R) Xeon(R) ...", or "unknown"
  flags: frozenset  # x86 "flags" or Arm "Features" of the first core
  parts: tuple  # Arm "CPU part" ids, one per kind of core ((): x86)
  cores: int  # the cores this process may run on

  @property
  def avx512(self) -> bool:
    return "avx512f" in self.flags

  @property
  def native_bf16(self) -> list[str]:
    """The bfloat16 instruction sets this CPU has (empty: none)."""
    return [f for f in BF16_FLAGS if f in self.flags]

  @property
  def identity(self) -> str:
    """Everything `-march=native` depends on, as one string."""
    return "\n".join(
      [platform.machine(), self.model, " ".join(sorted(self.flags))]
      + list(self.parts)
    )


def parse(text: str, cores: int) -> Cpu:
  """A `Cpu` from the text of /proc/cpuinfo."""
  model, flags, parts = None, None, []
  for line in text.splitlines():
    key, _, value = (part.strip() for part in line.partition(":"))
    if key == "model name" and model is None:
      model = value
    elif key in ("flags", "Features") and flags is None:
      flags = frozenset(value.split())
    elif key == "CPU part" and value not in parts:
      parts.append(value)
  return Cpu(
    model=model or platform.processor() or "unknown",
    flags=flags or frozenset(),
    parts=tuple(parts),
    cores=cores,
  )


def _cores() -> int:
  affinity = getattr(os, "sched_getaffinity", None)
  return len(affinity(0)) if affinity else os.cpu_count() or 1


@functools.cache
def cpu() -> Cpu:
  """This machine's CPU (read once per process)."""
  try:
    with open(CPUINFO) as f:
      text = f.read()
  except OSError:
    text = ""
  return parse(text, _cores())

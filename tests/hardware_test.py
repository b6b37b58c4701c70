"""Tests of lstm_unsup/hardware.py: what /proc/cpuinfo says, read once."""

import os
import platform

import pytest

from lstm_unsup import hardware

X86 = """\
processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16
processor\t: 1
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16
"""
AVX2_ONLY = "model name\t: AMD EPYC 7B12\nflags\t\t: fpu sse2 avx2 fma\n"
ARM = """\
processor\t: 0
Features\t: fp asimd sve bf16
CPU part\t: 0xd40
processor\t: 1
Features\t: fp asimd sve bf16
CPU part\t: 0xd40
processor\t: 2
CPU part\t: 0xd4f
"""


def test_an_x86_cpu_with_avx512_and_native_bfloat16():
  cpu = hardware.parse(X86, cores=2)
  assert cpu.model == "AMD EPYC 9R14"
  assert cpu.avx512 and cpu.native_bf16 == ["avx512_bf16"]
  assert cpu.parts == () and cpu.cores == 2


def test_an_avx2_cpu_has_neither():
  cpu = hardware.parse(AVX2_ONLY, cores=4)
  assert not cpu.avx512 and cpu.native_bf16 == []


def test_an_arm_cpu_reads_features_and_each_kind_of_core():
  cpu = hardware.parse(ARM, cores=3)
  assert cpu.native_bf16 == ["bf16"] and not cpu.avx512
  assert cpu.parts == ("0xd40", "0xd4f")
  assert cpu.model == (platform.processor() or "unknown")  # no model name


def test_the_identity_follows_what_native_code_was_compiled_for():
  one, other = hardware.parse(X86, 2), hardware.parse(AVX2_ONLY, 2)
  assert one.identity != other.identity
  assert one.identity == hardware.parse(X86, 64).identity  # cores: no
  arm = hardware.parse(ARM, 3)
  assert (
    arm.identity != hardware.parse(ARM.replace("0xd4f", "0xd41"), 3).identity
  )


def test_no_cpuinfo_is_unknown_not_a_guess(monkeypatch, tmp_path):
  monkeypatch.setattr(hardware, "CPUINFO", str(tmp_path / "absent"))
  hardware.cpu.cache_clear()
  try:
    cpu = hardware.cpu()
  finally:
    hardware.cpu.cache_clear()
  assert cpu.flags == frozenset() and not cpu.avx512
  assert cpu.model == (platform.processor() or "unknown")
  assert cpu.cores >= 1


@pytest.mark.skipif(
  not os.path.exists("/proc/cpuinfo"), reason="no /proc/cpuinfo here"
)
def test_this_machine():
  with open("/proc/cpuinfo") as f:
    text = f.read()
  cpu = hardware.cpu()
  assert cpu == hardware.parse(text, cpu.cores)
  assert ("avx512f" in text.split()) == cpu.avx512
  assert 1 <= cpu.cores <= (os.cpu_count() or 1)

"""The training-step benchmark runs, and its implementations agree."""

import importlib.util
import types

import numpy as np
import pytest

from benchmarks import gpu_paper_scale, memory, paper_cpu, train_step


def test_benchmark_at_tiny_size_checks_equal_losses():
  # bench() raises if Flax (and torch, when installed) compute another loss
  # than ours from the same weights and batch.
  result = train_step.bench(H=8, B=2, steps=1, peak=100.0, use_torch=False)
  ours, flax = result["ours"], result["flax"]
  # Both computed the same first loss from the same weights and batch.
  np.testing.assert_allclose(flax["first_loss"], ours["first_loss"], 1e-5)
  # The reported ratio and throughput follow from the measured rates.
  speedup = ours["steps_per_s"] / flax["steps_per_s"]
  np.testing.assert_allclose(flax["ours_speedup"], speedup, rtol=1e-9)
  assert result["gflop_per_step"] == train_step.flops_per_step(8, 2) / 1e9
  for impl in (ours, flax):
    gflops = impl["steps_per_s"] * result["gflop_per_step"]
    np.testing.assert_allclose(impl["gflops"], gflops, rtol=1e-9)
    np.testing.assert_allclose(impl["fraction_of_peak"], gflops / 100.0)


def test_stacked_layers_compute_the_same_loss_as_flax():
  # Two layers in every stack: Flax's RNNs hand each layer's carry to the
  # decoder layer above it, as ours; bench() raises if the losses differ.
  result = train_step.bench(
    H=8, B=2, steps=1, peak=100.0, use_torch=False, num_layers=2
  )
  assert result["layers"] == 2
  np.testing.assert_allclose(
    result["flax"]["first_loss"], result["ours"]["first_loss"], 1e-5
  )
  one, two = (train_step.flops_per_step(8, 2, L) for L in (1, 2))
  assert two - one == 3 * 2 * 2 * 2 * 30 * 8 * 32  # 3 x 2B x 2 x 30 x H x 4H
  assert result["gflop_per_step"] == two / 1e9
  markdown = train_step.to_markdown(
    {"results": [result], "peak_gflops": 100.0, "ours_adam": "in one pass"}
  )
  assert "| H | layers | batch |" in markdown and "| 8 | 2 | 2 |" in markdown


def test_benchmark_times_one_implementation_alone():
  result = train_step.bench(
    H=8, B=2, steps=1, peak=100.0, use_torch=False, impls=("flax",)
  )
  assert "ours" not in result and result["flax"]["steps_per_s"] > 0
  assert "ours_speedup" not in result["flax"]
  with pytest.raises(ValueError, match="jax"):
    train_step.bench(
      H=8, B=2, steps=1, peak=1.0, use_torch=False, impls=("jax",)
    )


def _tiny_gpu_args(**overrides):
  fields = dict(
    hidden=8,
    layers=2,
    batch=2,
    steps=1,
    train_seconds=0.5,
    eval_seconds=0.25,
    valid_sequences=4,
    target=10_000.0,
    source="offline",
  )
  return types.SimpleNamespace(**dict(fields, **overrides))


def test_gpu_script_runs_on_cpu_at_tiny_size():
  args = _tiny_gpu_args()
  plain = gpu_paper_scale.speed(args, "ours")
  bf16 = gpu_paper_scale.speed(args, "ours_bf16")
  assert plain["steps_per_s"] > 0 and plain["first_step_s"] > 0
  # The same weights and batch: bfloat16 matmuls change the loss a little.
  np.testing.assert_allclose(bf16["first_loss"], plain["first_loss"], 1e-3)
  assert bf16["first_loss"] != plain["first_loss"]
  quality = gpu_paper_scale.time_to_quality(args, "ours")
  curve = quality["curve"]
  assert curve[-1]["seconds"] >= args.train_seconds
  assert [p["step"] for p in curve] == sorted(p["step"] for p in curve)
  # Any loss is below the (huge) target: reached at the first evaluation.
  assert quality["seconds_to_target"] == curve[0]["seconds"]


@pytest.mark.skipif(
  importlib.util.find_spec("torch") is None, reason="torch not installed"
)
def test_gpu_script_torch_peer_computes_our_loss():
  args = _tiny_gpu_args()
  ours = gpu_paper_scale.speed(args, "ours")
  theirs = gpu_paper_scale.speed(args, "torch")
  np.testing.assert_allclose(theirs["first_loss"], ours["first_loss"], 1e-5)


def test_memory_script_sees_the_donated_state_reused():
  result = memory.measure("ours", H=8, B=2, layers=2, steps=1)
  xla = result["xla"]
  # Donation: the new parameters and optimiser state overwrite the old ones,
  # so nearly all output bytes alias argument bytes.
  assert xla["aliased"] > 0.95 * xla["outputs"]
  assert result["peak_bytes"] >= result["baseline_bytes"] > 0
  assert np.isfinite(result["losses"]).all()


def test_the_paper_recipe_benchmark_trains_resumes_and_reports(tmp_path):
  # The same two trainer commands as at the paper's size, at 8 units.
  data = paper_cpu.measure(str(tmp_path), steps=6, sequences=8, hidden=8)
  assert data["resumed_bit_exact"] is True
  assert "authors 2016 recipe" in data["recipe_line"]
  assert data["loss_last"] < data["loss_first"]
  assert data["seconds_per_step"] > 0 and data["peak_rss_gib"] > 0
  table = paper_cpu.to_markdown(data)
  assert "composite.py:paper" in table and "| yes |" in table


@pytest.mark.slow
def test_the_authors_recipe_at_the_papers_size_resumes_bit_exact(tmp_path):
  # 2 x 2048 units, batch 80, 6 steps twice over: minutes and 6 GiB on 2
  # cores, so kept out of CI (pytest -m slow).
  data = paper_cpu.measure(str(tmp_path), steps=6, sequences=8, hidden=2048)
  assert data["resumed_bit_exact"] is True
  assert data["loss_last"] < data["loss_first"]

"""The training-step benchmark runs, and its implementations agree."""

from benchmarks import train_step


def test_benchmark_at_tiny_size_checks_equal_losses():
  # bench() raises if Flax (and torch, when installed) compute another loss
  # than ours from the same weights and batch.
  result = train_step.bench(H=8, B=2, steps=1, peak=100.0, use_torch=False)
  assert result["ours"]["ours_speedup"] == 1.0
  assert result["flax"]["steps_per_s"] > 0
  assert result["gflop_per_step"] == train_step.flops_per_step(8, 2) / 1e9

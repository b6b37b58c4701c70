"""The ConvLSTM benchmark runs, and what it compares computes the same."""

from benchmarks import convlstm_step


def test_conv_benchmark_at_tiny_size_checks_equal_losses():
  # bench() raises if Flax's ConvLSTMCell model computes another loss than
  # ours from the same weights and batch, or autodiff another than ours.
  result = convlstm_step.bench(F=4, B=2, num_layers=2, kernel=3, steps=1)
  step, stack = result["step"], result["stack"]
  assert step["ours"]["first_loss"] == step["flax"]["first_loss"]
  assert step["flax"]["ours_speedup"] > 0 and stack["custom_speedup"] > 0
  markdown = convlstm_step.to_markdown({"steps": 1, "results": [result]})
  assert "| 4 | 2 | 3x3 | 2 |" in markdown

"""The experiments' shared table pieces (experiments/tables.py)."""

from experiments import tables


def test_spread_skips_missing_values_and_has_no_std_for_one():
  assert tables.spread([None, None]) is None
  assert tables.spread([3, None]) == {"mean": 3.0, "std": None, "seeds": [3.0]}
  two = tables.spread([1.0, 3.0])
  assert two["mean"] == 2.0 and abs(two["std"] - 2**0.5) < 1e-12


def test_markdown_keeps_or_drops_columns_without_values():
  header, rows = ["a", "b", "c"], [["x", "-", "1"], ["y", "-", "-"]]
  assert tables.markdown(header, rows) == [
    "| a | b | c |",
    "|---|---|---|",
    "| x | - | 1 |",
    "| y | - | - |",
  ]
  assert tables.markdown(header, rows, drop_empty=True) == [
    "| a | c |",
    "|---|---|",
    "| x | 1 |",
    "| y | - |",
  ]

"""What every experiment's table is made of: a value's mean and spread over
seeds, and a Markdown table."""

import numpy as np


def spread(values) -> dict | None:
  """{"mean", "std" (None for one value), "seeds"} of the values that are
  not None; None when there are none."""
  values = [float(v) for v in values if v is not None]
  if not values:
    return None
  return {
    "mean": float(np.mean(values)),
    "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
    "seeds": values,
  }


def markdown(
  header: list[str], rows: list[list[str]], drop_empty: bool = False
) -> list[str]:
  """The lines of a Markdown table; with `drop_empty`, without the columns
  (but the first) that hold "-" in every row."""
  keep = range(len(header))
  if drop_empty:
    keep = [0] + [
      i for i in range(1, len(header)) if any(row[i] != "-" for row in rows)
    ]
  lines = ["| " + " | ".join(header[i] for i in keep) + " |"]
  lines.append("|" + "---|" * len(keep))
  lines += ["| " + " | ".join(row[i] for i in keep) + " |" for row in rows]
  return lines

"""The run package is the one owner of the run folder: no module outside
it names a file that lives inside a run folder."""

import ast
import pathlib

import lstm_unsup
from lstm_unsup import run

ROOT = pathlib.Path(lstm_unsup.__file__).resolve().parent.parent
# The code that a user runs: the package, experiments, benchmarks, scripts.
CODE = ("lstm_unsup", "experiments", "benchmarks", "scripts")
NAMES = (
  "config.json",
  "metrics.jsonl",
  "data_split.json",
  "wall_seconds.json",
  "corrupt_checkpoints",
  "eval_test",
  ".lock",
)


def _strings(path: pathlib.Path):
  """(line, text) of each string the code uses, f-string pieces included;
  not docstrings (prose that tells a reader where things are) or comments."""
  tree = ast.parse(path.read_text())
  docstrings = {
    id(node.body[0].value)
    for node in ast.walk(tree)
    if isinstance(
      node,
      (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef),
    )
    and node.body
    and isinstance(node.body[0], ast.Expr)
    and isinstance(node.body[0].value, ast.Constant)
  }
  for node in ast.walk(tree):
    if (
      isinstance(node, ast.Constant)
      and isinstance(node.value, str)
      and id(node) not in docstrings
    ):
      yield node.lineno, node.value


def test_the_layout_lists_what_the_package_writes():
  assert len(set(run.LAYOUT)) == len(run.LAYOUT) == 11
  doc = run.__doc__
  for name in run.LAYOUT:
    assert name.split("<")[0] in doc, name


def test_nothing_outside_the_run_package_names_a_file_of_a_run():
  found = []
  for top in CODE:
    for path in sorted((ROOT / top).rglob("*.py")):
      if (ROOT / "lstm_unsup" / "run") in path.parents:
        continue
      for line, text in _strings(path):
        for name in NAMES:
          if name in text:
            found.append(f"{path.relative_to(ROOT)}:{line} names {name}")
  assert not found, "\n".join(found)

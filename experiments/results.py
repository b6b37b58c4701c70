"""Results as files: what each experiment writes, and the copies the docs show.

Every experiment and benchmark script writes its results as JSON and the
Markdown made from that JSON, by one function (`write`). The JSON names the
function that renders it (`"renderer"`: the module whose `to_markdown` makes
the table), the command that produced it (`"command"`) and the code that ran
(`"commit"`: `git rev-parse HEAD` of the repository, read once, when this
module is first imported; `"dirty"`: whether tracked files then differed
from that commit). The experiments import it as they start, so a commit made
while one runs does not relabel its results; the benchmarks import it when
they write. Without git or outside the repository's work tree, `"commit"` is
`"unknown"` and `"commit_error"` says why.

Published results are such JSON files committed under `docs/results/`. In
README.md and `docs/*.md` each results table sits between two markers:

  <!-- results: docs/results/table2_cpu.json -->
  ...exactly the Markdown that the JSON renders to...
  <!-- /results -->

  python -m experiments.results            # fails if any block differs
  python -m experiments.results --update   # rewrites the blocks

The check also fails for a JSON under `docs/results/` that does not say what
produced its numbers: it needs a `"command"`, and a `"commit"` (a hex sha) or,
for numbers typed in by hand from an older page, a `"transcribed_from"`.

To publish a new measurement: copy the JSON a script wrote over the one in
`docs/results/`, run `--update`, and add a dated line to docs/changelog.md.
"""

import importlib
import json
import os
import re
import shlex
import subprocess
import sys

from absl import flags

from lstm_unsup import cli, files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The pages whose results blocks are checked, relative to ROOT.
PAGES = ("README.md", "docs")
_BLOCK = re.compile(
  r"(<!-- results: (?P<path>[^ ]+) -->\n)(?P<body>.*?)(<!-- /results -->)",
  re.DOTALL,
)
_SHA = re.compile(r"[0-9a-f]{7,40}")


def _git(root: str, *args: str) -> str:
  """The output of `git -C root ARGS`; raises OSError (no git) or
  subprocess.SubprocessError (git failed)."""
  done = subprocess.run(
    ["git", "-C", root, *args],
    capture_output=True,
    text=True,
    check=True,
    timeout=30,
  )
  return done.stdout.strip()


def code_version(root: str) -> dict:
  """The commit of the code under `root`, the top of a git work tree:
  {"commit": sha, "dirty": whether tracked files differ from it}, or
  {"commit": "unknown", "commit_error": why} without git or such a tree."""
  try:
    top = _git(root, "rev-parse", "--show-toplevel")
    if os.path.realpath(top) != os.path.realpath(root):
      return {
        "commit": "unknown",
        "commit_error": f"{root} is not the top of a git work tree ({top} is)",
      }
    sha = _git(root, "rev-parse", "HEAD")
    changed = _git(root, "status", "--porcelain", "--untracked-files=no")
  except (OSError, subprocess.SubprocessError) as e:
    why = getattr(e, "stderr", None) or ""
    if isinstance(why, bytes):
      why = why.decode(errors="replace")
    why = why.strip().splitlines()[0] if why.strip() else str(e)
    return {"commit": "unknown", "commit_error": f"git: {why}"}
  return {"commit": sha, "dirty": bool(changed)}


# Read once, when this module is first imported (see the docstring).
CODE = code_version(ROOT)


def command_line(module: str) -> str:
  """This process's command line, as a user would type it."""
  args = " ".join(shlex.quote(a) for a in sys.argv[1:])
  return f"python -m {module} {args}".strip()


def write(workdir: str, stem: str, data: dict, renderer: str) -> str:
  """Writes `data` as `<workdir>/<stem>.json` and its Markdown as `.md`,
  prints the Markdown and returns it. `renderer` is the module whose
  `to_markdown(data)` renders it (for example "experiments.table2"). Adds
  the command and, unless `data` names one, the commit of the code (`CODE`);
  says so on stderr when that commit is unknown."""
  data = dict(data, renderer=renderer)
  data.setdefault("command", command_line(renderer))
  if "commit" not in data:
    data.update(CODE)
  if data["commit"] == "unknown":
    print(
      "The commit of the code that ran is unknown "
      f"({data.get('commit_error', 'not recorded')}); {stem}.json says "
      '"commit": "unknown" and needs one before it is published.',
      file=sys.stderr,
    )
  markdown = render(data)
  os.makedirs(workdir, exist_ok=True)
  paths = [os.path.join(workdir, f"{stem}.{ext}") for ext in ("md", "json")]
  files.write_atomically(paths[1], json.dumps(data, indent=2) + "\n")
  files.write_atomically(paths[0], markdown)
  print(markdown, end="")
  print(f"Wrote {paths[0]} and {paths[1]}.", file=sys.stderr)
  return markdown


def render(data: dict) -> str:
  """The Markdown of a results JSON, by the module that wrote it, with the
  training recipe it names (`"recipe"`, see docs/recipe.md) under it."""
  renderer = data.get("renderer")
  if not renderer:
    raise ValueError("The results JSON has no 'renderer' field.")
  markdown = importlib.import_module(renderer).to_markdown(data)
  if data.get("recipe"):
    markdown += f"\nRecipe: {data['recipe']} (docs/recipe.md).\n"
  return markdown


def load(path: str) -> dict:
  """A results JSON, by a path relative to the repository root or not."""
  full = path if os.path.isabs(path) else os.path.join(ROOT, path)
  with open(full) as f:
    return json.load(f)


def pages(root: str = ROOT) -> list[str]:
  """README.md and every Markdown page under docs/, as paths under root."""
  found = []
  for page in PAGES:
    full = os.path.join(root, page)
    if os.path.isdir(full):
      found += sorted(
        os.path.join(full, name)
        for name in os.listdir(full)
        if name.endswith(".md")
      )
    elif os.path.exists(full):
      found.append(full)
  return found


def blocks(text: str) -> list[tuple[str, str]]:
  """The (JSON path, Markdown body) of every results block in a page."""
  return [(m["path"], m["body"]) for m in _BLOCK.finditer(text)]


def refresh(text: str, root: str = ROOT) -> str:
  """The page with every results block rendered afresh from its JSON."""

  def body(match):
    path = os.path.join(root, match["path"])
    if not os.path.exists(path):  # left as it is; `stale` reports it
      return match[0]
    return match[1] + render(load(path)) + match[4]

  return _BLOCK.sub(body, text)


def stale(root: str = ROOT) -> list[str]:
  """One line per results block that differs from its JSON's Markdown, and
  per JSON under docs/results/ that no page shows."""
  problems, shown = [], set()
  for page in pages(root):
    with open(page) as f:
      text = f.read()
    name = os.path.relpath(page, root)
    for path, body in blocks(text):
      shown.add(os.path.normpath(path))
      if not os.path.exists(os.path.join(root, path)):
        problems.append(f"{name}: {path} does not exist.")
      elif body != render(load(os.path.join(root, path))):
        problems.append(
          f"{name}: the table from {path} differs from what it renders to."
        )
  results_dir = os.path.join(root, "docs", "results")
  if os.path.isdir(results_dir):
    for json_name in sorted(os.listdir(results_dir)):
      path = os.path.join("docs", "results", json_name)
      if json_name.endswith(".json") and path not in shown:
        problems.append(f"{path} is shown by no page.")
  return problems


def unsourced(root: str = ROOT) -> list[str]:
  """One line per JSON under docs/results/ that does not say what produced
  its numbers: it needs a "command", and a "commit" (a hex sha, not
  "unknown") or a "transcribed_from" (where numbers typed by hand came
  from)."""
  problems = []
  results_dir = os.path.join(root, "docs", "results")
  if not os.path.isdir(results_dir):
    return problems
  for json_name in sorted(os.listdir(results_dir)):
    if not json_name.endswith(".json"):
      continue
    path = os.path.join("docs", "results", json_name)
    data = load(os.path.join(root, path))
    if not isinstance(data, dict):
      problems.append(f"{path} is not a JSON object.")
      continue
    missing = []
    if not str(data.get("command") or "").strip():
      missing.append('no "command"')
    commit = str(data.get("commit") or "")
    if not _SHA.fullmatch(commit) and not data.get("transcribed_from"):
      said = f" (it says {json.dumps(commit)})" if commit else ""
      missing.append(f'no "commit" sha{said} and no "transcribed_from"')
    if missing:
      problems.append(
        f"{path} does not say what produced its numbers: "
        + "; ".join(missing)
        + "."
      )
  return problems


def check(root: str) -> list[str]:
  """Every problem the check reports: stale tables, then JSON without its
  command and commit."""
  return stale(root) + unsourced(root)


def main(argv):
  del argv
  if flags.FLAGS.update:
    for page in pages(ROOT):
      with open(page) as f:
        text = f.read()
      new = refresh(text, ROOT)
      if new != text:
        with open(page, "w") as f:
          f.write(new)
        print("Updated", os.path.relpath(page, ROOT))
  problems = check(ROOT)
  for line in problems:
    print(line, file=sys.stderr)
  if problems:
    sys.exit(1)
  print(
    "Every results table matches its JSON, and every JSON names its command "
    "and the commit (or the page) its numbers came from."
  )


if __name__ == "__main__":
  flags.DEFINE_bool("update", False, "Rewrite the blocks from their JSON.")
  cli.run_main(main)

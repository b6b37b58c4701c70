"""Results as files: every published table is what its JSON renders to,
every published JSON names its command and commit, and the README's
commands and layout match the repository."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from experiments import results, table2
from lstm_unsup.configs import classifier, default, patches

ROOT = results.ROOT


def _read(path: str) -> str:
  with open(os.path.join(ROOT, path)) as f:
    return f.read()


def test_every_published_table_matches_its_json():
  assert results.stale() == []


def test_every_page_shows_some_results_and_all_json_is_shown():
  shown = {path for page in results.pages() for path, _ in blocks_of(page)}
  published = {
    f"docs/results/{name}"
    for name in os.listdir(os.path.join(ROOT, "docs", "results"))
    if name.endswith(".json")
  }
  assert published and published == shown


def blocks_of(page: str):
  with open(page) as f:
    return results.blocks(f.read())


def _copy_pages(tmp_path):
  shutil.copy(os.path.join(ROOT, "README.md"), tmp_path / "README.md")
  shutil.copytree(os.path.join(ROOT, "docs"), tmp_path / "docs")


def test_a_number_edited_by_hand_is_caught(tmp_path):
  _copy_pages(tmp_path)
  assert results.stale(str(tmp_path)) == []
  readme = tmp_path / "README.md"
  text = readme.read_text()
  path, body = results.blocks(text)[0]
  number = re.search(r"\| (\d+\.\d) \|", body)[1]  # the first number cell
  edited = body.replace(f"| {number} |", f"| {float(number) + 0.1:.1f} |", 1)
  readme.write_text(text.replace(body, edited))
  problems = results.stale(str(tmp_path))
  assert (
    len(problems) == 1 and "README.md" in problems[0] and path in problems[0]
  )
  # --update's refresh puts the JSON's numbers back.
  readme.write_text(results.refresh(readme.read_text(), str(tmp_path)))
  assert results.stale(str(tmp_path)) == []


def test_an_edited_json_or_a_missing_one_is_caught(tmp_path):
  _copy_pages(tmp_path)
  path = tmp_path / "docs" / "results" / "table2_cpu.json"
  data = json.loads(path.read_text())
  data["rows"][0]["mnist"]["ce"]["mean"] += 1.0
  path.write_text(json.dumps(data))
  assert any("table2_cpu.json" in p for p in results.stale(str(tmp_path)))
  path.unlink()
  assert any("does not exist" in p for p in results.stale(str(tmp_path)))


PROVENANCE = (
  "renderer",
  "command",
  "commit",
  "dirty",
  "commit_error",
  "commit_basis",
  "transcribed_from",
  "first_published",
  "provenance",
)


def _measured(path: str = "docs/results/table2_cpu.json") -> dict:
  """A published JSON's numbers without what says where they came from."""
  data = json.loads(_read(path))
  return {k: v for k, v in data.items() if k not in PROVENANCE}


def test_write_records_the_renderer_and_the_markdown_it_makes(tmp_path):
  data = _measured()
  markdown = results.write(str(tmp_path), "table", data, "experiments.table2")
  saved = json.loads((tmp_path / "table.json").read_text())
  assert saved["renderer"] == "experiments.table2"
  assert saved["command"].startswith("python -m experiments.table2")
  assert (tmp_path / "table.md").read_text() == markdown
  assert results.render(saved) == markdown


def test_write_says_where_it_wrote(tmp_path, capsys):
  """Issue 35: table2 did not say where table.md and table.json went."""
  results.write(str(tmp_path), "table", _measured(), "experiments.table2")
  err = capsys.readouterr().err
  assert f"Wrote {tmp_path}/table.md and {tmp_path}/table.json." in err


def test_a_results_file_that_names_its_recipe_shows_it():
  data = dict(_measured(), renderer="experiments.table2")
  plain = results.render(data)
  assert "Recipe:" not in plain
  named = results.render(dict(data, recipe="authors 2016"))
  assert named == plain + "\nRecipe: authors 2016 (docs/recipe.md).\n"


def test_write_records_the_commit_of_the_code_that_ran(tmp_path):
  results.write(str(tmp_path), "table", _measured(), "experiments.table2")
  saved = json.loads((tmp_path / "table.json").read_text())
  assert saved["commit"] == results.CODE["commit"]
  if shutil.which("git") and os.path.isdir(os.path.join(ROOT, ".git")):
    head = subprocess.run(
      ["git", "-C", ROOT, "rev-parse", "HEAD"],
      capture_output=True,
      text=True,
      check=True,
    ).stdout.strip()
    assert saved["commit"] == head and isinstance(saved["dirty"], bool)


def test_write_says_when_the_commit_is_unknown(tmp_path, monkeypatch, capsys):
  unknown = {"commit": "unknown", "commit_error": "git: not found"}
  monkeypatch.setattr(results, "CODE", unknown)
  results.write(str(tmp_path), "table", _measured(), "experiments.table2")
  saved = json.loads((tmp_path / "table.json").read_text())
  assert saved["commit"] == "unknown" and "dirty" not in saved
  assert saved["commit_error"] == "git: not found"
  assert "commit of the code that ran is unknown" in capsys.readouterr().err


def _git(repo, *args: str) -> str:
  identity = ("-c", "user.name=t", "-c", "user.email=t@t")
  done = subprocess.run(
    ["git", *identity, "-c", "commit.gpgsign=false", "-C", str(repo), *args],
    capture_output=True,
    text=True,
    check=True,
  )
  return done.stdout.strip()


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
def test_code_version_names_head_and_uncommitted_changes(tmp_path):
  _git(tmp_path, "init", "-q")
  (tmp_path / "code.py").write_text("x = 1\n")
  _git(tmp_path, "add", "code.py")
  _git(tmp_path, "commit", "-q", "-m", "code")
  head = _git(tmp_path, "rev-parse", "HEAD")
  assert results.code_version(str(tmp_path)) == {"commit": head, "dirty": False}
  (tmp_path / "new.py").write_text("y = 2\n")  # untracked: still clean
  assert results.code_version(str(tmp_path))["dirty"] is False
  (tmp_path / "code.py").write_text("x = 2\n")
  assert results.code_version(str(tmp_path)) == {"commit": head, "dirty": True}
  # A folder inside the work tree is not the repository's root.
  (tmp_path / "sub").mkdir()
  inside = results.code_version(str(tmp_path / "sub"))
  assert (
    inside["commit"] == "unknown" and "not the top" in inside["commit_error"]
  )


def test_code_version_outside_a_repository_is_unknown(tmp_path):
  version = results.code_version(str(tmp_path))
  assert version["commit"] == "unknown" and version["commit_error"]


def test_every_published_json_names_its_command_and_commit():
  assert results.unsourced() == []


def test_a_json_that_does_not_say_what_produced_it_fails_the_check(tmp_path):
  _copy_pages(tmp_path)
  assert results.unsourced(str(tmp_path)) == []
  path = tmp_path / "docs" / "results" / "table2_cpu.json"
  complete = json.loads(path.read_text())

  def problems_with(**fields) -> list[str]:
    data = {k: v for k, v in complete.items() if k not in PROVENANCE}
    path.write_text(
      json.dumps(dict(data, renderer="experiments.table2", **fields))
    )
    return results.unsourced(str(tmp_path))

  command = complete["command"]
  sha = "0123456789abcdef0123456789abcdef01234567"
  for fields in (
    {},  # neither the command nor a commit
    {"command": command},
    {"command": command, "commit": "unknown"},
    {"command": command, "commit": "HEAD"},
    {"commit": sha},
    {"transcribed_from": "README.md at 486ac44"},
  ):
    problems = problems_with(**fields)
    assert len(problems) == 1, fields
    assert problems[0].startswith("docs/results/table2_cpu.json ")
    assert "\n" not in problems[0]
    assert problems[0] in results.check(str(tmp_path))
  assert 'no "command"' in problems_with(commit=sha)[0]
  assert '"unknown"' in problems_with(command=command, commit="unknown")[0]
  for fields in (
    {"command": command, "commit": sha},
    {"command": command, "commit": sha[:7], "dirty": True},
    {"command": command, "transcribed_from": "README.md at 486ac44"},
    {
      "command": command,
      "commit": "unknown",
      "transcribed_from": "README.md at 486ac44",
    },
  ):
    assert problems_with(**fields) == [], fields


def _table(scale: str, column: str = "mnist") -> dict:
  row = table2.ROWS[1]  # the composite
  config = table2.row_config(row, column, scale, seed=0)
  stat = {"mean": 400.0, "std": None, "seeds": [400.0]}
  cell = {"ce" if column == "mnist" else "se": stat, "paper": 344.9}
  return {
    "scale": scale,
    "seeds": [0],
    "setup": {column: table2._setup(config)},
    "rows": [{"name": row.name, "title": row.title, column: cell}],
  }


def test_a_quick_table_says_it_is_not_comparable_and_names_its_frames():
  markdown = table2.to_markdown(_table("quick"))
  assert "Not comparable with the paper's numbers" in markdown
  assert "32x32 pixels" in markdown and "64x64" in markdown
  assert "ours - paper" not in markdown  # no difference across units
  # Issue 35: quick 8x8 patches beat the paper's by having 192 values.
  patches = table2.to_markdown(_table("quick", "patches"))
  assert "sums 192 values, not 3,072, so it is about 16 times" in patches


def test_a_cpu_table_has_the_paper_ours_and_the_difference():
  markdown = table2.to_markdown(_table("cpu"))
  assert "Not comparable" not in markdown
  assert "2 x 512 units, batch 16, 4,000 steps" in markdown
  assert "| paper CE | ours CE | ours - paper |" in markdown
  assert "| 344.9 | 400.0 | +55.1 |" in markdown


def test_the_shipped_clips_and_the_stand_in_are_not_comparable():
  table = _table("cpu", "patches")  # the default source: the real clips
  markdown = table2.to_markdown(table)
  assert "Not comparable" in markdown and "not on UCF-101's 13,320" in markdown
  table["setup"]["patches"]["source"] = "standin"
  markdown = table2.to_markdown(table)
  assert "Not comparable" in markdown and "stand-in" in markdown
  table["setup"]["patches"]["source"] = "data/ucf101"  # the paper's data
  assert "Not comparable" not in table2.to_markdown(table)


def test_readme_table2_has_the_paper_beside_ours_in_every_row():
  text = _read("README.md")
  body = dict(results.blocks(text))["docs/results/table2_cpu.json"]
  rows = [line for line in body.splitlines() if line.startswith("| ")][1:]
  assert len(rows) >= 4
  for line in rows:
    paper, ours, difference = line.split(" | ")[1:4]
    assert float(ours.split(" ")[0]) - float(paper) == pytest.approx(
      float(difference), abs=0.051
    )


def test_readme_is_at_most_300_lines():
  assert len(_read("README.md").splitlines()) <= 300


def _readme_modules() -> list[str]:
  code = re.findall(r"```bash\n(.*?)```", _read("README.md"), re.DOTALL)
  found = re.findall(r"python -m ([\w.]+)", "\n".join(code))
  return sorted(set(found) - {"pytest"})


def test_readme_names_commands():
  assert "lstm_unsup.main" in _readme_modules()


@pytest.mark.parametrize("module", _readme_modules())
def test_every_readme_command_runs(module):
  done = subprocess.run(
    [sys.executable, "-m", module, "--help"],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  output = done.stdout + done.stderr
  assert "Traceback" not in output and "No module named" not in output, output
  assert "--helpfull" in output or "usage:" in output, output


def _layout_block() -> str:
  return re.search(
    r"## Layout\n\n```\n(.*?)```", _read("README.md"), re.DOTALL
  )[1]


def test_readme_layout_matches_the_package():
  layout = _layout_block()
  package = os.path.join(ROOT, "lstm_unsup")
  named = set(re.findall(r"([\w]+(?:\.py|\.cc|/))", layout))
  parts = {
    name + "/" if os.path.isdir(os.path.join(package, name)) else name
    for name in os.listdir(package)
    if not name.startswith("__") and not name.endswith(".egg-info")
  }
  assert parts <= named, f"not in the README's layout: {parts - named}"
  for sub in (p for p in parts if p.endswith("/")):
    for name in os.listdir(os.path.join(package, sub)):
      if name.endswith(".py") and not name.startswith("__"):
        if sub in ("configs/", "data/"):
          continue  # listed by what they hold, not file by file
        assert name in named, f"lstm_unsup/{sub}{name} is not in the layout"
  files = {
    name
    for top in ("lstm_unsup", "experiments", "benchmarks", "scripts")
    for _, _, names in os.walk(os.path.join(ROOT, top))
    for name in names
  }
  missing = {n for n in named if n.endswith((".py", ".cc"))} - files
  assert not missing, f"the layout names files that do not exist: {missing}"


def test_every_test_the_docs_cite_exists():
  cited = 0
  for page in results.pages():
    with open(page) as f:
      lines = f.read().splitlines()
    for line in lines:
      current = None
      for m in re.finditer(r"(tests/[\w/]+\.py)?(?:::(\w+))?", line):
        if m[1]:
          current = m[1]
          assert os.path.exists(os.path.join(ROOT, current)), (page, current)
        if m[2]:
          assert current, f"{page}: ::{m[2]} without a file before it"
          source = _read(current)
          assert f"def {m[2]}(" in source, f"{page}: {current}::{m[2]}"
          cited += 1
  assert cited > 20


def test_readme_says_how_to_choose_devices_with_fields_that_exist():
  """Issue 35: the install section said only that training uses every
  device. Every --config field the README names must exist."""
  text = _read("README.md")
  install = text.split("## Install")[1].split("\n## ")[0]
  assert "--config.train.num_devices=N" in install
  assert "CUDA_VISIBLE_DEVICES" in install
  configs = [m.get_config("quick") for m in (default, classifier, patches)]

  def has(config, field):
    for part in field.split("."):
      if part not in config:
        return False
      config = config[part]
    return True

  for field in set(re.findall(r"--config\.([\w.]+)=", text)):
    assert any(has(c, field) for c in configs), f"no field --config.{field}"

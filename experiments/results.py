"""Where an experiment's results go: `<workdir>/<stem>.json` and `.md`."""

import json
import os


def write(workdir: str, stem: str, data: dict, markdown: str) -> None:
  """Writes the results as JSON and Markdown under `workdir` and prints the
  Markdown."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, f"{stem}.json"), "w") as f:
    json.dump(data, f, indent=2)
  with open(os.path.join(workdir, f"{stem}.md"), "w") as f:
    f.write(markdown)
  print(markdown, end="")

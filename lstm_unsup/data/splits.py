"""Held-out splits of videos: training, validation and test never share a
video, or, for a few long videos, never share a stretch of time.

  by video  (config.data.split="video", or "auto" when each split gets at
            least one video): the videos, shuffled with a fixed seed, go
            whole to one split: round(valid_fraction * N) to validation and
            round(test_fraction * N) to test (at least one each), the rest
            to training. Clips of one UCF-101 group (v_X_g08_c01.avi,
            v_X_g08_c02.avi, ...) count as one video and stay together.
  by time   ("time", or "auto" with fewer videos): every video is cut into
            train | gap | validation | gap | test, the validation and test
            stretches each the fraction of its frames and at least one
            sequence long, with `gap_frames` unused frames between them.

`split` returns the windows (video, start, stop) that each split crops from
and a record of how the split was made (for the log and data_split.json).
"""

import dataclasses
import re

import numpy as np

from lstm_unsup.data.videos import DataError, Videos

SPLITS = ("train", "valid", "test")
HOWS = ("auto", "video", "time")
SEED = 42  # the shuffle of videos, the same for every training seed


@dataclasses.dataclass(frozen=True)
class Rule:
  """How to split: config.data.split and its fractions and gap."""

  how: str = "auto"
  valid_fraction: float = 0.1
  test_fraction: float = 0.1
  gap_frames: int = 8


@dataclasses.dataclass(frozen=True)
class Window:
  """Frames [start, stop) of video `video` (stop None: to its end)."""

  video: int
  start: int = 0
  stop: int | None = None


def _group(name: str) -> str:
  """UCF-101's clips of one group (..._g08_c01) share a group name."""
  stem = re.sub(r"\.\w+$", "", name)  # a file's suffix
  return re.sub(r"(_g\d+)_c\d+$", r"\1", stem)


def _count(fraction: float, total: int) -> int:
  return int(fraction * total + 0.5)


def _by_video(videos: Videos, rule: Rule) -> dict[str, list[Window]]:
  groups: dict[str, list[int]] = {}
  for k, name in enumerate(videos.names):
    groups.setdefault(_group(name), []).append(k)
  G = len(groups)
  n_valid = max(1, _count(rule.valid_fraction, G))
  n_test = max(1, _count(rule.test_fraction, G))
  if G - n_valid - n_test < 1:
    raise DataError(
      f"Splitting by video needs at least 3 videos (or groups); "
      f"{videos.description} has {G}. Split by time "
      "(config.data.split='time') or give more videos."
    )
  order = np.random.default_rng(SEED).permutation(G)
  keys = list(groups)
  parts = {
    "test": order[:n_test],
    "valid": order[n_test : n_test + n_valid],
    "train": order[n_test + n_valid :],
  }
  return {
    split: [Window(k) for g in sorted(chosen) for k in groups[keys[g]]]
    for split, chosen in parts.items()
  }


def _by_time(videos: Videos, rule: Rule, need: int) -> dict[str, list]:
  windows = {split: [] for split in SPLITS}
  gap = rule.gap_frames
  for k, (name, video) in enumerate(zip(videos.names, videos.frames)):
    L = len(video)
    valid = max(int(np.ceil(rule.valid_fraction * L)), need)
    test = max(int(np.ceil(rule.test_fraction * L)), need)
    train = L - valid - test - 2 * gap
    if train < need:
      raise DataError(
        f"{name} has {L} frames, too few to cut into training, validation "
        f"and test stretches of at least {need} frames with {gap} between "
        f"(needs {3 * need + 2 * gap}); give longer videos, set "
        "config.data.split_gap_frames lower, or split by video "
        "(config.data.split='video', 3 or more videos)."
      )
    windows["train"].append(Window(k, 0, train))
    windows["valid"].append(Window(k, train + gap, train + gap + valid))
    windows["test"].append(Window(k, L - test, L))
  return windows


def _frames(videos: Videos, windows: list[Window]) -> int | None:
  if videos.lazy:
    return None
  return sum(
    (len(videos.frames[w.video]) if w.stop is None else w.stop) - w.start
    for w in windows
  )


def split(videos: Videos, rule: Rule, need: int):
  """(windows per split, record) for sequences of `need` frames."""
  if rule.how not in HOWS:
    raise DataError(f"split={rule.how!r} is not one of {HOWS}.")
  groups = len({_group(name) for name in videos.names})
  held = (
    _count(rule.valid_fraction, groups),
    _count(rule.test_fraction, groups),
  )
  by_video = rule.how == "video" or (
    rule.how == "auto" and min(held) >= 1 and groups > sum(held)
  )
  windows = (
    _by_video(videos, rule) if by_video else _by_time(videos, rule, need)
  )
  record = {
    "how": "video" if by_video else "time",
    "rule": (
      f"whole videos, shuffled with seed {SEED}, to training, validation "
      "and test; clips of one UCF-101 group together"
      if by_video
      else "each video cut in time: training | gap | validation | gap | "
      f"test, {rule.gap_frames} frames in each gap"
    ),
    "valid_fraction": rule.valid_fraction,
    "test_fraction": rule.test_fraction,
    "gap_frames": rule.gap_frames,
  }
  for name in SPLITS:
    chosen = windows[name]
    record[name] = {
      "videos": len({w.video for w in chosen}),
      "frames": _frames(videos, chosen),
      "windows": [
        [videos.names[w.video], w.start, w.stop]
        if not by_video
        else videos.names[w.video]
        for w in chosen
      ],
    }
  return {k: tuple(v) for k, v in windows.items()}, record


def summary(record: dict) -> str:
  """One line: how the split was made and what each split holds."""
  if record.get("how") == "none":
    return record["rule"]
  parts = []
  for name, label in zip(SPLITS, ("training", "validation", "test")):
    part = record[name]
    frames = "" if part["frames"] is None else f", {part['frames']:,} frames"
    parts.append(f"{label} {part['videos']} video(s){frames}")
  return f"split by {record['how']} ({record['rule']}): " + "; ".join(parts)

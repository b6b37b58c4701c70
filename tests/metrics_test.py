"""Tests for lstm_unsup.metrics against hand values, numpy and skimage."""

import jax
import numpy as np
import pytest

from lstm_unsup import metrics


def _np_ssim(x, y, win=7, c1=0.01**2, c2=0.03**2):
  """Slow float64 SSIM from the formula: every valid window, sample stats."""
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  h, w = x.shape
  vals = []
  for i in range(h - win + 1):
    for j in range(w - win + 1):
      a = x[i : i + win, j : j + win].ravel()
      b = y[i : i + win, j : j + win].ravel()
      ma, mb = a.mean(), b.mean()
      va, vb = a.var(ddof=1), b.var(ddof=1)
      cov = np.sum((a - ma) * (b - mb)) / (a.size - 1)
      vals.append(
        (2 * ma * mb + c1)
        * (2 * cov + c2)
        / ((ma**2 + mb**2 + c1) * (va + vb + c2))
      )
  return float(np.mean(vals))


def _random_pair(rng, shape):
  targets = rng.uniform(size=shape).astype(np.float32)
  preds = np.clip(targets + rng.normal(scale=0.2, size=shape), 0, 1).astype(
    np.float32
  )
  return preds, targets


def test_sse_and_mae_are_summed_per_frame_before_clipping():
  preds = np.zeros((1, 2, 2, 2), np.float32)
  preds[0, 0] = [[1.5, 1.0], [0.0, 0.0]]  # 1.5 is out of range
  preds[0, 1] = [[-0.5, 0.5], [0.5, 0.5]]
  targets = np.zeros_like(preds)
  targets[0, 0, 0, 0] = 1.0
  targets[0, 1] = 0.5
  np.testing.assert_allclose(
    metrics.sse_per_frame(preds, targets), [[0.25 + 1.0, 1.0]], rtol=1e-6
  )
  np.testing.assert_allclose(
    metrics.mae_per_frame(preds, targets), [[0.5 + 1.0, 1.0]], rtol=1e-6
  )


def test_psnr_hand_values_clipping_and_cap():
  targets = np.full((1, 3, 8, 8), 0.5, np.float32)
  preds = targets.copy()
  preds[0, 0] += 0.1  # mse 0.01 -> 20 dB
  preds[0, 1] = 1.5  # clipped to 1: mse 0.25 -> 6.0206 dB
  got = metrics.psnr_per_frame(preds, targets)
  np.testing.assert_allclose(
    got, [[20.0, -10 * np.log10(0.25), 100.0]], rtol=1e-5
  )


def test_ssim_matches_numpy_formula():
  rng = np.random.default_rng(0)
  preds, targets = _random_pair(rng, (2, 2, 12, 10))
  got = np.asarray(metrics.ssim_per_frame(preds, targets))
  want = [
    [_np_ssim(preds[b, k], targets[b, k]) for k in range(2)] for b in range(2)
  ]
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_ssim_identical_frames_is_one_and_clips_predictions():
  rng = np.random.default_rng(1)
  targets = rng.uniform(size=(1, 1, 9, 9)).astype(np.float32)
  np.testing.assert_allclose(
    metrics.ssim_per_frame(targets, targets), [[1.0]], atol=1e-6
  )
  # Out-of-range predictions are clipped first, so 1.7 scores as 1.0.
  ones = np.ones((1, 1, 9, 9), np.float32)
  np.testing.assert_allclose(
    metrics.ssim_per_frame(ones * 1.7, ones), [[1.0]], atol=1e-6
  )
  with pytest.raises(ValueError, match="smaller than window"):
    metrics.ssim_per_frame(targets[..., :6], targets[..., :6])


def test_ssim_matches_skimage_grey_and_colour():
  skm = pytest.importorskip("skimage.metrics")
  rng = np.random.default_rng(2)
  preds, targets = _random_pair(rng, (2, 2, 16, 16))
  got = np.asarray(metrics.ssim_per_frame(preds, targets))
  for b in range(2):
    for k in range(2):
      want = skm.structural_similarity(
        preds[b, k].astype(np.float64),
        targets[b, k].astype(np.float64),
        data_range=1.0,
      )
      np.testing.assert_allclose(got[b, k], want, atol=1e-5)
  preds, targets = _random_pair(rng, (1, 2, 12, 12, 3))
  got = np.asarray(metrics.ssim_per_frame(preds, targets))
  for k in range(2):
    want = skm.structural_similarity(
      preds[0, k].astype(np.float64),
      targets[0, k].astype(np.float64),
      data_range=1.0,
      channel_axis=-1,
    )
    np.testing.assert_allclose(got[0, k], want, atol=1e-5)


def test_colour_ssim_is_mean_over_channels():
  rng = np.random.default_rng(3)
  preds, targets = _random_pair(rng, (1, 1, 8, 8, 2))
  got = float(metrics.ssim_per_frame(preds, targets)[0, 0])
  want = np.mean(
    [_np_ssim(preds[0, 0, ..., c], targets[0, 0, ..., c]) for c in range(2)]
  )
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_frame_metrics_per_lead_time_and_summary():
  rng = np.random.default_rng(4)
  preds, targets = _random_pair(rng, (3, 2, 8, 8))
  per_lead = metrics.frame_metrics(preds, targets)
  assert set(per_lead) == set(metrics.METRIC_NAMES)
  for v in per_lead.values():
    assert v.shape == (2,)
  sse_BxK = ((preds - targets) ** 2).sum(axis=(2, 3))
  np.testing.assert_allclose(per_lead["sse"], sse_BxK.mean(0), rtol=1e-5)
  np.testing.assert_allclose(
    per_lead["ssim"][1],
    np.mean([_np_ssim(preds[b, 1], targets[b, 1]) for b in range(3)]),
    atol=1e-5,
  )
  summary = metrics.summarize(per_lead)
  np.testing.assert_allclose(summary["sse"], sse_BxK.mean(), rtol=1e-5)
  assert isinstance(summary["psnr"], float)


def test_frame_metrics_accepts_flat_frames_with_frame_shape():
  rng = np.random.default_rng(5)
  preds, targets = _random_pair(rng, (2, 2, 8, 8))
  flat = metrics.frame_metrics(
    preds.reshape(2, 2, 64), targets.reshape(2, 2, 64), frame_shape=(8, 8)
  )
  full = metrics.frame_metrics(preds, targets)
  for name in metrics.METRIC_NAMES:
    np.testing.assert_allclose(flat[name], full[name], rtol=1e-6)
  with pytest.raises(ValueError, match="frame_shape"):
    metrics.frame_metrics(preds.reshape(2, 2, 64), targets.reshape(2, 2, 64))


def test_accumulator_matches_whole_set_and_skips_padding():
  rng = np.random.default_rng(6)
  preds, targets = _random_pair(rng, (5, 2, 8, 8))
  acc = metrics.MetricAccumulator()
  acc.add_batch(preds[:3], targets[:3])
  # Second batch padded to 3 with a garbage sequence, masked out.
  pad_p = np.concatenate([preds[3:], np.full((1, 2, 8, 8), 9.0, np.float32)])
  pad_t = np.concatenate([targets[3:], np.zeros((1, 2, 8, 8), np.float32)])
  acc.add_batch(pad_p, pad_t, mask_B=np.array([1, 1, 0]))
  assert acc.count == 5
  whole = metrics.frame_metrics(preds, targets)
  for name, v in acc.means().items():
    np.testing.assert_allclose(v, whole[name], rtol=1e-5)
  np.testing.assert_allclose(
    acc.summary()["mae"], float(np.mean(whole["mae"])), rtol=1e-5
  )


def test_accumulator_takes_extra_per_frame_values():
  acc = metrics.MetricAccumulator()
  acc.add({"ce": np.array([[1.0, 2.0], [3.0, 4.0]])})
  acc.add({"ce": np.array([[5.0, 6.0]])})
  np.testing.assert_allclose(acc.means()["ce"], [3.0, 4.0])
  assert acc.summary() == {"ce": 3.5}
  with pytest.raises(ValueError, match="no sequences"):
    metrics.MetricAccumulator().means()


def test_per_frame_metrics_is_jitted_and_vmappable_shapes():
  rng = np.random.default_rng(7)
  preds, targets = _random_pair(rng, (2, 3, 8, 8, 1))
  out = jax.jit(metrics.ssim_per_frame)(preds, targets)
  assert out.shape == (2, 3)
  np.testing.assert_allclose(
    out, metrics.ssim_per_frame(preds[..., 0], targets[..., 0]), atol=1e-6
  )

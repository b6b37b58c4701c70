"""Variable-length sequences for `SequenceAutoencoder`: checks, scaling,
padding and the reversal inside each sequence's own length.

Sequences arrive as an array [N, T, F] (with optional `lengths`, the valid
steps of each row) or as a list of [T_i, F] arrays. Inside, they become one
zero-padded float32 array [N, T_max, F] and lengths [N]; what lies past a
length is overwritten with zeros, so padding values never matter.
"""

import numbers

import jax
import jax.numpy as jnp
import numpy as np

SHAPE_HELP = (
  "Give an array [samples, timesteps, features] (with lengths= for padded "
  "rows) or a list of [timesteps, features] arrays."
)


def _as_float(x, what: str) -> np.ndarray:
  """x as float32; values beyond float32's range become infinite here, and
  `check_sequences` names them."""
  try:
    a = np.asarray(x)
    if a.dtype.kind != "c":
      with np.errstate(over="ignore"):
        return a.astype(np.float32, copy=False)
  except (TypeError, ValueError) as e:
    raise ValueError(f"{what} is not numeric ({e}). {SHAPE_HELP}") from e
  raise ValueError(  # casting would drop the imaginary part
    f"{what} is complex ({a.dtype}); SequenceAutoencoder takes real values. "
    "Give the real and imaginary parts as features "
    "(np.concatenate([x.real, x.imag], axis=-1)) or the magnitude (np.abs(x))."
  )


def _from_list(X) -> list[np.ndarray]:
  if len(X) == 0:
    raise ValueError(f"X holds no sequences. {SHAPE_HELP}")
  values = []
  for i, item in enumerate(X):
    a = _as_float(item, f"Sequence {i}")
    if a.ndim != 2:
      hint = " (reshape a univariate series with x[:, None])" * (a.ndim == 1)
      raise ValueError(
        f"Sequence {i} has shape {a.shape}; each must be 2-D [timesteps, "
        f"features]{hint}."
      )
    if a.shape[0] == 0:
      raise ValueError(f"Sequence {i} is empty (0 time steps).")
    if values and a.shape[1] != values[0].shape[1]:
      raise ValueError(
        f"Sequence {i} has {a.shape[1]} features but sequence 0 has "
        f"{values[0].shape[1]}; every sequence needs the same features."
      )
    values.append(a)
  return values


def _from_array(X, lengths) -> tuple[list[np.ndarray], np.ndarray]:
  x = _as_float(X, "X")
  if x.ndim != 3:
    raise ValueError(
      f"X has rank {x.ndim} (shape {x.shape}); expected rank 3. {SHAPE_HELP}"
    )
  N, T, _ = x.shape
  if N == 0 or T == 0:
    raise ValueError(f"X of shape {x.shape} holds no sequences or no steps.")
  if lengths is None:
    return list(x), np.full(N, T, np.int32)
  lengths = np.asarray(lengths)
  if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
    raise ValueError(
      f"lengths must be {N} integers, one per sequence; got shape "
      f"{lengths.shape} of dtype {lengths.dtype}."
    )
  if lengths.min() < 1 or lengths.max() > T:
    i = int(np.argmin(lengths) if lengths.min() < 1 else np.argmax(lengths))
    raise ValueError(
      f"lengths must lie in [1, {T}] (no empty sequences); sequence {i} has "
      f"length {lengths[i]}."
    )
  return [x[i, :n] for i, n in enumerate(lengths)], lengths.astype(np.int32)


def check_sequences(
  X, lengths=None, num_features: int | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
  """The valid steps of each sequence ([L_i, F] float32) and lengths [N];
  a clear ValueError for anything else."""
  if isinstance(X, list | tuple):
    if lengths is not None:
      raise ValueError("lengths= is for arrays; a list carries its lengths.")
    values = _from_list(X)
    lengths_N = np.array([len(a) for a in values], np.int32)
  else:
    values, lengths_N = _from_array(X, lengths)
  F = values[0].shape[1]
  if F == 0:
    raise ValueError("The sequences have no features (F = 0).")
  if num_features is not None and F != num_features:
    raise ValueError(
      f"X has {F} features per step but the model was fitted on {num_features}."
    )
  for i, a in enumerate(values):
    bad = ~np.isfinite(a)
    if bad.any():
      t, f = map(int, np.argwhere(bad)[0])
      given = (X[i] if isinstance(X, list | tuple) else np.asarray(X)[i])[t]
      value = np.asarray(given, np.float64)[f]
      if np.isfinite(value):
        raise ValueError(
          f"Sequence {i}'s value {value:.4g} at step {t}, feature {f} "
          "exceeds float32's range (±3.4e38), in which the model computes; "
          "rescale that feature (e.g. divide it by a power of 10)."
        )
      raise ValueError(
        f"Sequence {i} has a NaN or infinite value at step {t}. Missing "
        f"values are not supported; for sequences of different lengths pass "
        f"lengths= or a list of arrays."
      )
  return values, lengths_N


def fit_scaling(
  values: list[np.ndarray], scale: bool
) -> tuple[np.ndarray, np.ndarray]:
  """Per-feature mean and std [F] over every valid step (0 and 1 if not
  `scale`); a constant feature keeps std 1. Constant means a std below 1e-8
  of the feature's largest magnitude (below float32's resolution; an exact
  constant's std is float64 rounding, about 1e-17 of it), so the unit does
  not matter: a feature in units of 1e-9 is standardised as in units of 1."""
  F = values[0].shape[1]
  if not scale:
    return np.zeros(F, np.float32), np.ones(F, np.float32)
  steps = np.concatenate(values).astype(np.float64)
  std = steps.std(axis=0)
  std = np.where(std > 1e-8 * np.abs(steps).max(axis=0), std, 1.0)
  return steps.mean(axis=0).astype(np.float32), std.astype(np.float32)


def pad(
  values: list[np.ndarray], lengths_N: np.ndarray, mean_F, std_F, multiple=1
) -> np.ndarray:
  """Scaled sequences in one zero-padded array [N, T, F], T the longest
  length rounded up to a `multiple` (fewer shapes to compile)."""
  N, F = len(values), values[0].shape[1]
  T = -(-int(lengths_N.max()) // multiple) * multiple
  x_NxTxF = np.zeros((N, T, F), np.float32)
  for i, a in enumerate(values):
    x_NxTxF[i, : len(a)] = (a - mean_F) / std_F
  return x_NxTxF


def unpad(out_NxT, lengths_N: np.ndarray, as_list: bool):
  """Per-step outputs [N, T, ...] as a list of [L_i, ...] arrays, or as an
  array with NaN past each length."""
  out_NxT = np.asarray(out_NxT)
  if as_list:
    return [out_NxT[i, :n] for i, n in enumerate(lengths_N)]
  out = np.array(out_NxT, dtype=np.float32)
  past_NxT = np.arange(out.shape[1])[None, :] >= lengths_N[:, None]
  out[past_NxT] = np.nan
  return out


def split(
  n: int, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
  """Shuffled indices of the training and validation sequences; at least
  one of each when `fraction` > 0 and n >= 2."""
  order = rng.permutation(n)
  n_valid = int(round(n * fraction))
  if fraction > 0 and n >= 2:
    n_valid = min(max(n_valid, 1), n - 1)
  return np.sort(order[n_valid:]), np.sort(order[:n_valid])


def reverse_within(x_BxTxF: jax.Array, lengths_B: jax.Array) -> jax.Array:
  """Each sequence's first lengths[b] steps reversed; padding stays put.
  Its own inverse on the valid steps."""
  T = x_BxTxF.shape[1]
  t_1xT = jnp.arange(T)[None, :]
  n_Bx1 = lengths_B[:, None]
  at_BxT = jnp.where(t_1xT < n_Bx1, n_Bx1 - 1 - t_1xT, t_1xT)
  return jnp.take_along_axis(x_BxTxF, at_BxT[:, :, None], axis=1)


def frame_size(lengths_N: np.ndarray, most_steps: int) -> int:
  """k, the fewest consecutive steps per frame that keep the longest
  sequence within `most_steps` frames."""
  return max(1, -(-int(np.max(lengths_N)) // most_steps))


def to_frames(values: list[np.ndarray], k: int) -> list[np.ndarray]:
  """Each [L, F] sequence as [ceil(L / k), k * F] frames of k consecutive
  steps, the last frame completed by repeating the last step (a repeat,
  unlike zeros, adds no jump for the model to learn)."""
  if k == 1:
    return values
  out = []
  for a in values:
    n = -(-len(a) // k)
    a = np.concatenate([a, np.repeat(a[-1:], n * k - len(a), axis=0)])
    out.append(a.reshape(n, k * a.shape[1]))
  return out


def framed(values, lengths_N, k: int, mean_F, std_F, multiple: int = 1):
  """Scaled sequences in frames of k steps, padded into one array
  [N, T, k * F] (`pad`), and their lengths in frames [N]."""
  frames_N = -(-lengths_N // k)
  x_NxTxG = pad(
    to_frames(values, k),
    frames_N,
    np.tile(mean_F, k),
    np.tile(std_F, k),
    multiple,
  )
  return x_NxTxG, frames_N


def from_frames(out_NxTxG: np.ndarray, k: int) -> np.ndarray:
  """Per-frame outputs [N, T, k * F] as per-step outputs [N, T * k, F]."""
  N, T, G = out_NxTxG.shape
  return np.asarray(out_NxTxG).reshape(N, T * k, G // k)


def check_integer(name: str, value, least: int) -> None:
  """A ValueError naming `name` unless `value` is an integer (not a bool,
  not a float such as 2.0) >= `least`."""
  if not is_number(value, numbers.Integral) or value < least:
    raise ValueError(f"{name} must be an integer >= {least}; got {value!r}.")


def is_number(value, kind) -> bool:
  return isinstance(value, kind) and not isinstance(value, bool | np.bool_)

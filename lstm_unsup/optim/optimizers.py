"""Optimisers: the authors' clipped momentum updates and a modern Adam.

- `paper`: the official update (mansimov/unsupervised-videos util.py
  Param.Update, anchors 1.5). Per step, for every parameter w with
  gradient g and velocity v:

      v <- momentum * v - lr * (g + l2 * w)   (no l2 on biases)
      v <- clip(v, -clip, +clip)              (elementwise; stored clipped)
      w <- w + v

  with momentum 0.9, lr 1e-4, l2 1e-4, clip 1e-4 and no learning-rate decay
  (the official decay is computed but never used). The clip acts on the
  velocity, so no weight moves more than `clip` in one step. The official
  gradients are *summed* over the batch and frames, so this optimiser expects
  the summed loss (`losses.sum_per_frame`), not the per-frame mean.
- `rmsprop_momentum`: the authors' older 2015 update, the same with each
  gradient divided by its running RMS (rate 1e-3, clip 1e-3).
- `adam`: Adam with global-norm gradient clipping and an optional warmup /
  cosine schedule, for the mean per-frame loss. By default the clip and Adam
  run as one hand-written transformation (`clipped_adam`) so the clip costs
  no extra pass over the gradients; `fused=False` builds the plain
  `optax.chain(clip_by_global_norm, adam)`, which it matches numerically.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lstm_unsup.optim import fused_adam

PyTree = Any
DecayMask = PyTree | Callable[[PyTree], PyTree]


def _check_positive(**values: float | None) -> None:
  for name, value in values.items():
    if value is not None and not value > 0:
      raise ValueError(f"{name} must be positive, got {value!r}")


def make_schedule(
  learning_rate: float,
  warmup_steps: int = 0,
  decay_steps: int = 0,
  final_lr_fraction: float = 0.0,
) -> optax.Schedule:
  """Constant, linear-warmup, or warmup + cosine-decay learning rate.

  With `decay_steps` > 0 the rate warms up linearly from 0 over
  `warmup_steps`, then follows a cosine down to
  `learning_rate * final_lr_fraction` at step `decay_steps` (counted from
  step 0, warmup included, as in optax.warmup_cosine_decay_schedule).
  """
  _check_positive(learning_rate=learning_rate)
  if warmup_steps < 0 or decay_steps < 0:
    raise ValueError("warmup_steps and decay_steps must be >= 0")
  if decay_steps > 0:
    if decay_steps <= warmup_steps:
      raise ValueError(
        f"decay_steps ({decay_steps}) must exceed warmup_steps ({warmup_steps})"
      )
    return optax.warmup_cosine_decay_schedule(
      init_value=0.0,
      peak_value=learning_rate,
      warmup_steps=warmup_steps,
      decay_steps=decay_steps,
      end_value=learning_rate * final_lr_fraction,
    )
  if warmup_steps > 0:
    return optax.warmup_constant_schedule(0.0, learning_rate, warmup_steps)
  return optax.constant_schedule(learning_rate)


class ClippedAdamState(NamedTuple):
  """Step count and Adam's first and second moments."""

  count: jax.Array
  mu: PyTree
  nu: PyTree


class FusedGradientTransformation(NamedTuple):
  """An optax transformation that can also apply itself in one step.

  `init` and `update` are optax's. `apply(grads, state, params)` returns
  `(new_params, new_state)`, equal to `update` followed by
  `optax.apply_updates`, but free to update the parameters in place
  (`apply_gradients` below uses it when it is there).
  """

  init: optax.TransformInitFn
  update: optax.TransformUpdateFn
  apply: Callable[[PyTree, Any, PyTree], tuple[PyTree, Any]]


def apply_gradients(tx, grads, opt_state, params):
  """`(new_params, new_opt_state)`: `tx.apply` if `tx` has one, else
  `tx.update` followed by `optax.apply_updates`."""
  if isinstance(tx, FusedGradientTransformation):
    return tx.apply(grads, opt_state, params)
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def clipped_adam(
  learning_rate: float | optax.Schedule,
  clip_norm: float | None = 1.0,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  native: bool = True,
) -> FusedGradientTransformation:
  """Global-norm clipping followed by Adam, as one transformation.

  Equal to optax.chain(optax.clip_by_global_norm(clip_norm),
  optax.adam(learning_rate, b1, b2, eps)): gradients whose global norm
  exceeds `clip_norm` are scaled by clip_norm / norm. The scale is folded
  into the moment updates instead of materialising clipped gradients.
  With `native` (and a C++ compiler, on the CPU), `apply` updates each
  float32 parameter and its moments in one pass of a compiled kernel
  (`fused_adam.py`); otherwise it is the same maths through XLA.
  """
  schedule = (
    learning_rate
    if callable(learning_rate)
    else optax.constant_schedule(learning_rate)
  )

  def init_fn(params: PyTree) -> ClippedAdamState:
    # Two trees of zeros, not one twice: `apply` may write both in place.
    mu, nu = (jax.tree.map(jnp.zeros_like, params) for _ in range(2))
    return ClippedAdamState(count=jnp.zeros([], jnp.int32), mu=mu, nu=nu)

  def coefficients(grads, state):
    """The step's clipping scale, learning rate, bias corrections, count."""
    if clip_norm is None:
      scale = jnp.ones([], jnp.float32)
    else:
      g_norm = optax.tree.norm(grads)
      scale = jnp.where(g_norm < clip_norm, 1.0, clip_norm / g_norm)
    count = optax.safe_increment(state.count)
    lr = schedule(state.count)  # optax evaluates the schedule pre-increment
    return scale, lr, 1 - b1**count, 1 - b2**count, count

  def first(g, m, scale):
    return (1 - b1) * (g * scale.astype(g.dtype)) + b1 * m

  def second(g, v, scale):
    return (1 - b2) * jnp.square(g * scale.astype(g.dtype)) + b2 * v

  def step(m, v, lr, c1, c2):
    m_hat = m / c1.astype(m.dtype)
    v_hat = v / c2.astype(v.dtype)
    return -lr * m_hat / (jnp.sqrt(v_hat) + eps)

  def update_fn(grads, state, params=None):
    del params
    scale, lr, c1, c2, count = coefficients(grads, state)
    # Two maps rather than one returning pairs, so tuples inside the params
    # tree stay unambiguous; under jit XLA fuses them into one pass.
    mu = jax.tree.map(lambda g, m: first(g, m, scale), grads, state.mu)
    nu = jax.tree.map(lambda g, v: second(g, v, scale), grads, state.nu)
    updates = jax.tree.map(lambda m, v: step(m, v, lr, c1, c2), mu, nu)
    return updates, ClippedAdamState(count=count, mu=mu, nu=nu)

  def apply_fn(grads, state, params):
    if not (native and fused_adam.available()):
      updates, state = update_fn(grads, state)
      return optax.apply_updates(params, updates), state
    scale, lr, c1, c2, count = coefficients(grads, state)
    k = jnp.stack([scale, lr, c1, c2]).astype(jnp.float32)
    treedef = jax.tree.structure(params)
    trees = (params, state.mu, state.nu, grads)
    new_p, new_m, new_v = [], [], []
    for p, m, v, g in zip(*(treedef.flatten_up_to(t) for t in trees)):
      if all(x.dtype == jnp.float32 for x in (p, m, v, g)):
        p, m, v = fused_adam.clipped_adam_leaf(
          p, m, v, g, k, b1=b1, b2=b2, eps=eps
        )
      else:  # the kernel is float32 only: XLA for this leaf
        m, v = first(g, m, scale), second(g, v, scale)
        p = optax.apply_updates(p, step(m, v, lr, c1, c2))
      new_p.append(p)
      new_m.append(m)
      new_v.append(v)
    unflatten = treedef.unflatten
    new_state = ClippedAdamState(count, unflatten(new_m), unflatten(new_v))
    return unflatten(new_p), new_state

  return FusedGradientTransformation(init_fn, update_fn, apply_fn)


def adam(
  learning_rate: float = 1e-3,
  clip_norm: float | None = 1.0,
  warmup_steps: int = 0,
  decay_steps: int = 0,
  final_lr_fraction: float = 0.0,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  fused: bool = True,
  native: bool = True,
) -> optax.GradientTransformation:
  """Adam with global-norm clipping (`clip_norm=None` disables it).

  The schedule is `make_schedule(learning_rate, warmup_steps, decay_steps,
  final_lr_fraction)`: constant by default. `fused=False` uses the optax
  chain instead of `clipped_adam`; `native=False` keeps `clipped_adam` off
  its compiled CPU kernel.
  """
  _check_positive(clip_norm=clip_norm, eps=eps)
  if not (0 <= b1 < 1 and 0 <= b2 < 1):
    raise ValueError(f"b1 and b2 must be in [0, 1), got {b1}, {b2}")
  schedule = make_schedule(
    learning_rate, warmup_steps, decay_steps, final_lr_fraction
  )
  if fused:
    return clipped_adam(schedule, clip_norm, b1, b2, eps, native)
  adam_tx = optax.adam(schedule, b1=b1, b2=b2, eps=eps)
  if clip_norm is None:
    return adam_tx
  return optax.chain(optax.clip_by_global_norm(clip_norm), adam_tx)


def _key_name(key: Any) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def default_decay_mask(params: PyTree) -> PyTree:
  """True for leaves that get L2 decay: all but those named like a bias.

  A leaf is a bias when the last key of its path contains "bias"
  (case-insensitive), as Flax names them. A model that names biases
  otherwise (the official code's "b") must pass its own mask.
  """

  def is_weight(path, _):
    return not (path and "bias" in _key_name(path[-1]).lower())

  return jax.tree_util.tree_map_with_path(is_weight, params)


class PaperMomentumState(NamedTuple):
  """The (clipped) velocity, one leaf per parameter."""

  velocity: PyTree


class RMSPropMomentumState(NamedTuple):
  """The (clipped) velocity and the running RMS of the gradient."""

  velocity: PyTree
  rms: PyTree


def _check_velocity_args(learning_rate, momentum, l2, clip) -> None:
  _check_positive(learning_rate=learning_rate, clip=clip)
  if not 0 <= momentum < 1:
    raise ValueError(f"momentum must be in [0, 1), got {momentum}")
  if l2 < 0:
    raise ValueError(f"l2 must be >= 0, got {l2}")


def _with_l2(grads, params, l2: float, decay_mask: DecayMask | None):
  """g + l2 * w on the leaves the mask selects (default: all but biases)."""
  if params is None:
    raise ValueError("the authors' update needs params for its L2 term")
  mask_fn = default_decay_mask if decay_mask is None else decay_mask
  mask = mask_fn(params) if callable(mask_fn) else mask_fn
  return jax.tree.map(
    lambda g, w, decay: g + (l2 * jnp.asarray(decay, w.dtype)) * w,
    grads,
    params,
    mask,
  )


def paper_momentum(
  learning_rate: float = 1e-4,
  momentum: float = 0.9,
  l2: float = 1e-4,
  clip: float = 1e-4,
  decay_mask: DecayMask | None = None,
) -> optax.GradientTransformation:
  """The authors' momentum update with L2 and an elementwise velocity clip.

  `decay_mask` selects the leaves that get L2: a pytree of bools shaped like
  the params, or a function params -> such a pytree. Default:
  `default_decay_mask` (everything but biases). `update` needs `params`.
  The loss behind the gradients should be summed over batch and frames.
  """
  _check_velocity_args(learning_rate, momentum, l2, clip)

  def init_fn(params: PyTree) -> PaperMomentumState:
    return PaperMomentumState(jax.tree.map(jnp.zeros_like, params))

  def update_fn(grads, state, params=None):
    grads = _with_l2(grads, params, l2, decay_mask)
    new_v = jax.tree.map(
      lambda g, v: jnp.clip(momentum * v - learning_rate * g, -clip, clip),
      grads,
      state.velocity,
    )
    return new_v, PaperMomentumState(new_v)

  return optax.GradientTransformation(init_fn, update_fn)


def rmsprop_momentum(
  learning_rate: float = 1e-3,
  momentum: float = 0.9,
  l2: float = 1e-4,
  clip: float = 1e-3,
  rms_decay: float = 0.95,
  decay_mask: DecayMask | None = None,
) -> optax.GradientTransformation:
  """The authors' 2015 update (udibr/unsup_video_lstm util.py Param.Update):
  the momentum update above with each gradient divided by its running RMS.

      g <- g + l2 * w                          (no l2 on biases)
      r <- sqrt(rms_decay * r^2 + (1 - rms_decay) * g^2)   (r starts at 1)
      v <- clip(momentum * v - lr * g / r, -clip, +clip)
      w <- w + v

  The 2015 code averages its gradients over the batch and sums them over
  frames (`losses.sum_over_frames`); its defaults are rate 1e-3, clip 1e-3,
  rms_decay 0.95 (config.proto's `rms_prop_factor`).
  """
  _check_velocity_args(learning_rate, momentum, l2, clip)
  if not 0 <= rms_decay < 1:
    raise ValueError(f"rms_decay must be in [0, 1), got {rms_decay}")

  def init_fn(params: PyTree) -> RMSPropMomentumState:
    velocity = jax.tree.map(jnp.zeros_like, params)
    return RMSPropMomentumState(velocity, jax.tree.map(jnp.ones_like, params))

  def update_fn(grads, state, params=None):
    grads = _with_l2(grads, params, l2, decay_mask)
    rms = jax.tree.map(
      lambda g, r: jnp.sqrt(rms_decay * r * r + (1 - rms_decay) * g * g),
      grads,
      state.rms,
    )
    new_v = jax.tree.map(
      lambda g, r, v: jnp.clip(
        momentum * v - learning_rate * g / r, -clip, clip
      ),
      grads,
      rms,
      state.velocity,
    )
    return new_v, RMSPropMomentumState(new_v, rms)

  return optax.GradientTransformation(init_fn, update_fn)


_BUILDERS: dict[str, Callable[..., optax.GradientTransformation]] = {
  "adam": adam,
  "paper": paper_momentum,
  "rmsprop_momentum": rmsprop_momentum,
}
NAMES = tuple(_BUILDERS)  # what config.optim.name may be
# How each optimiser's loss adds up the per-frame losses of a batch: the
# mean over sequences and frames (Adam), the authors' sum over both (their
# 2016 code), or the 2015 code's mean over sequences of the sum over frames.
LOSS_REDUCTIONS = {
  "adam": "mean",
  "paper": "sum",
  "rmsprop_momentum": "sum_over_frames",
}


def build_optimizer(name: str, **kwargs: Any) -> optax.GradientTransformation:
  """Builds "adam" (`adam`), "paper" (`paper_momentum`) or
  "rmsprop_momentum" (`rmsprop_momentum`) from keywords."""
  if name not in _BUILDERS:
    raise ValueError(f"unknown optimizer {name!r}; expected one of {NAMES}")
  try:
    return _BUILDERS[name](**kwargs)
  except TypeError as e:  # unknown keyword
    raise ValueError(f"bad arguments for optimizer {name!r}: {e}") from e


def from_config(optim: Any) -> optax.GradientTransformation:
  """The optimiser that a `config.optim` (a ConfigDict or a dict) names,
  with its fields: the one reading of those fields, for the trainer and the
  classifier. Fields a config lacks take their defaults here."""
  optim = dict(optim)
  name = optim["name"]
  if name == "adam":
    return build_optimizer(
      "adam",
      learning_rate=optim["learning_rate"],
      clip_norm=optim["clip_norm"],
      warmup_steps=optim.get("warmup_steps", 0),
      decay_steps=optim.get("decay_steps", 0),
      native=optim.get("native", True),
    )
  extra = {}
  if name == "rmsprop_momentum":
    extra["rms_decay"] = optim.get("rms_decay", 0.95)
  return build_optimizer(
    name,
    learning_rate=optim["learning_rate"],
    momentum=optim["momentum"],
    l2=optim["l2"],
    clip=optim["update_clip"],
    **extra,
  )

"""One training update: the state, the loss, the optimiser from the config,
the device mesh and the jitted, sharded step that `train.py`'s loop calls.

  state = create_train_state(config, model, inputs, future, mesh)
  step = make_train_step(config, model, mesh)
  state, metrics = step(state, *shard_batch(mesh, inputs, future))

The loss is each decoder's per-frame loss in the paper's unit, reduced as
the optimiser expects (`optimizers.LOSS_REDUCTIONS`: Adam's mean, the
authors' sums); the metrics always report it per frame.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from lstm_unsup import config_lib, distributed, losses, models
from lstm_unsup.configs import default
from lstm_unsup.optim import optimizers

Array = jax.Array


class TrainState(train_state.TrainState):
  def apply_gradients(self, *, grads, **kwargs):
    """Flax's, through `optimizers.apply_gradients`: an optimiser that can
    update the parameters in place (clipped Adam on the CPU) does so."""
    params, opt_state = optimizers.apply_gradients(
      self.tx, grads, self.opt_state, self.params
    )
    return self.replace(
      step=self.step + 1, params=params, opt_state=opt_state, **kwargs
    )


# ----------------------------------------------------------------------------
# Model, loss and the train step.


def per_frame_losses(config, outputs, targets) -> dict[str, Array]:
  """(B, K) loss of each decoder in the paper's unit."""
  kind = config.model.output
  return {
    name: losses.frame_loss(outputs[name], targets[name], kind)
    for name in outputs
  }


def make_loss_fn(config, model):
  # Adam's mean, or the batch sum the authors' updates were tuned for.
  reduce = losses.REDUCTIONS[optimizers.LOSS_REDUCTIONS[config.optim.name]]
  mcfg = models.model_config(config.model)

  def loss_fn(params, inputs_BxTxD, future_BxKxD):
    outputs, _ = model.apply(
      {"params": params}, inputs_BxTxD, future_BxKxD, train=True
    )
    targets = models.make_targets(mcfg, inputs_BxTxD, future_BxKxD)
    per_frame = per_frame_losses(config, outputs, targets)
    loss = sum(reduce(v) for v in per_frame.values())
    # Always report the paper's unit per frame, whatever is optimised.
    return loss, {k: losses.mean_per_frame(v) for k, v in per_frame.items()}

  return loss_fn


def build_optimizer(config) -> optax.GradientTransformation:
  """The optimiser of `config`; `optim.decay_steps=-1` decays to the last
  training step."""
  optim = dict(config.optim, decay_steps=default.decay_steps(config))
  return optimizers.from_config(optim)


def create_train_state(config, model, example_BxTxD, example_BxKxD, mesh):
  """Fresh parameters and optimiser state, replicated over the mesh."""
  tx = build_optimizer(config)
  replicated = NamedSharding(mesh, P())
  # Two calls, so the random-number temporaries are gone before the moments
  # exist (the peak stays below a step's); every returned leaf has its own
  # buffer, as the train step donates them all.
  params = jax.jit(
    lambda key: model.init(key, example_BxTxD, example_BxKxD)["params"],
    out_shardings=replicated,
  )(jax.random.key(config.seed))
  state = jax.jit(
    lambda params: TrainState.create(
      apply_fn=model.apply, params=params, tx=tx
    ),
    out_shardings=replicated,
    donate_argnums=0,
  )(params)
  return state


def make_mesh(
  num_devices: int = 0, batch_size: int = 0, field: str = "train"
) -> Mesh:
  """A 1-D mesh named "data" over the first `num_devices` devices (0: all),
  checked to split `batch_size` (config.`field`.batch_size) evenly."""
  devices = jax.devices()
  if num_devices > len(devices):
    raise config_lib.ConfigError(
      f"config.train.num_devices={num_devices} but only {len(devices)} "
      f"devices are visible."
    )
  devices = devices[:num_devices] if num_devices else devices
  if batch_size % len(devices):
    raise config_lib.ConfigError(
      f"config.{field}.batch_size={batch_size} does not split evenly over "
      f"{len(devices)} devices; set config.train.num_devices."
    )
  return Mesh(np.asarray(devices), ("data",))


def make_train_step(config, model, mesh: Mesh) -> "TrainStep":
  """The jitted step: batch sharded over "data", state replicated."""
  loss_fn = make_loss_fn(config, model)

  def train_step(state, grads_buffer, inputs_BxTxD, future_BxKxD):
    del grads_buffer  # donated: the new gradients are written over it
    (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params, inputs_BxTxD, future_BxKxD
    )
    grad_norm = optax.tree.norm(grads)
    new = state.apply_gradients(grads=grads)
    if config.train.skip_nonfinite:  # keep the state of a non-finite step
      ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
      keep = functools.partial(jax.tree.map, lambda a, b: jnp.where(ok, a, b))
      new = new.replace(
        params=keep(new.params, state.params),
        opt_state=keep(new.opt_state, state.opt_state),
      )
    return new, {"loss": loss, **parts, "grad_norm": grad_norm}, grads

  replicated = NamedSharding(mesh, P())
  batch = NamedSharding(mesh, P("data"))
  jitted = jax.jit(
    train_step,
    in_shardings=(replicated, replicated, batch, batch),
    out_shardings=(replicated, replicated, replicated),
    donate_argnums=(0, 1),
    keep_unused=True,  # an unused argument is otherwise dropped, not reused
  )
  return TrainStep(jitted, replicated)


class TrainStep:
  """`state, metrics = step(state, inputs_BxTxD, future_BxKxD)`.

  The gradients are written over a buffer that every call donates back to
  the next: after the first step they land in memory the process already
  holds. As fresh temporaries they were a new mapping every step on the CPU
  (one page fault per 4 KiB, about 150 MB a step at H=1024), and XLA's
  temporaries shrink by as much as the buffer holds, so the peak stays the
  same. The buffer is not part of the train state or of checkpoints.
  """

  def __init__(self, jitted, sharding):
    self._step = jitted
    self._zeros = jax.jit(
      lambda params: jax.tree.map(jnp.zeros_like, params),
      out_shardings=sharding,
    )
    self._grads = None

  def _take_buffer(self, params):
    grads, self._grads = self._grads, None  # gone if the call is cut short
    return self._zeros(params) if grads is None else grads

  def __call__(self, state, inputs_BxTxD, future_BxKxD):
    grads = self._take_buffer(state.params)
    state, metrics, self._grads = self._step(
      state, grads, inputs_BxTxD, future_BxKxD
    )
    return state, metrics

  def compile(self, state, inputs_BxTxD, future_BxKxD):
    """Compiles ahead of time for these shapes; later calls run the
    compiled step, whose `memory_analysis()` is XLA's account of it."""
    grads = self._take_buffer(state.params)
    compiled = self._step.lower(
      state, grads, inputs_BxTxD, future_BxKxD
    ).compile()
    self._grads, self._step = grads, compiled
    return compiled


def batch_rows(mesh: Mesh, batch_size: int) -> slice:
  """The rows of each global batch that this process makes: all of them
  on one process; on several, those its devices hold."""
  if jax.process_count() == 1:
    return slice(0, batch_size)
  sharding = NamedSharding(mesh, P("data"))
  return distributed.local_rows(sharding, (batch_size,))


def shard_batch(mesh: Mesh, *arrays: np.ndarray, batch_size: int = 0):
  """Places a batch on the mesh, split along the batch axis: the whole
  host batch on one process; on several, each process's `batch_rows` of
  a global batch of `batch_size`."""
  sharding = NamedSharding(mesh, P("data"))
  if jax.process_count() > 1:
    return tuple(
      jax.make_array_from_process_local_data(
        sharding, a, (batch_size, *a.shape[1:])
      )
      for a in arrays
    )
  return tuple(
    jax.make_array_from_callback(
      a.shape, sharding, functools.partial(lambda a, idx: a[idx], a)
    )
    for a in arrays
  )

"""Will the model fit? The memory a training run needs, checked before
anything is written or allocated.

A model too large for the machine used to block in its first transfer to
the device and never end, printing nothing. `check_fits` refuses it first,
with the estimate:

  parameters   counted from `jax.eval_shape` of the real init (exact);
  optimiser    the optimiser's state, from `jax.eval_shape` of its init
               (Adam: two moments, the size of the parameters each);
  gradients    the buffer of gradients each step donates to the next;
  activations  what the forward pass keeps for the backward one: each LSTM
               layer's gate pre-activations (4H) and its c and h (H values,
               or F channels per grid cell for a ConvLSTM), at every time
               step of the encoder and the decoders; and the frames:
               the batch, and each decoded frame's output and gradient.

The state is replicated on every device and the batch split over them. On
the tests' models the estimate is what XLA compiles, to the byte for the
state and within a factor of two for the activations (tests/sizing_test.py;
XLA's update of the authors' optimiser, `optim.name="paper"`, takes
temporaries of about half the parameters' size more, not counted). A GPU
or TPU says how much memory it has (`device.memory_stats()`); on the CPU
it is the host's available memory.
"""

import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from lstm_unsup import config_lib, input_pipeline, models


class TooLargeError(config_lib.ConfigError):
  """The model cannot fit in the devices' memory; the message says why."""


@dataclasses.dataclass(frozen=True)
class Estimate:
  """Bytes a training step needs on each device."""

  parameters: int
  optimiser: int
  gradients: int
  activations: int

  @property
  def total(self) -> int:
    return self.parameters + self.optimiser + self.gradients + self.activations


def frame_size(config) -> int:
  """D: values per frame (patches: three colour channels at most)."""
  channels = 3 if config.data.dataset == "patches" else 1
  return config.data.image_size**2 * channels


def state_size(config) -> int:
  """Values in one layer's c (or h): H units, or F channels per cell of the
  ConvLSTM's grid."""
  m = config.model
  if m.get("cell", "fc") == "conv":
    return m.hidden * (config.data.image_size // m.patch_size) ** 2
  return m.hidden


def estimate(config, model, tx, num_devices: int = 1) -> Estimate:
  """What training `model` with optimiser `tx` needs per device."""
  B, T = config.train.batch_size, config.data.num_input_frames
  K, D = input_pipeline.num_frames(config) - T, frame_size(config)
  inputs = jax.ShapeDtypeStruct((B, T, D), jnp.float32)
  future = jax.ShapeDtypeStruct((B, K, D), jnp.float32)
  params = jax.eval_shape(
    lambda key, x, y: model.init(key, x, y)["params"],
    jax.random.key(0),
    inputs,
    future,
  )
  opt_state = jax.eval_shape(tx.init, params)
  decoded = sum(
    {"reconstruct": T, "future": K}[name]
    for name in models.DECODER_SETS[config.model.decoders]
  )
  per_step = 6 * state_size(config) * config.model.num_layers  # 4H, c, h
  values = B * ((T + decoded) * per_step + (T + K + 2 * decoded) * D)
  return Estimate(
    parameters=_bytes(params),
    optimiser=_bytes(opt_state),
    gradients=_bytes(params),
    activations=4 * math.ceil(values / num_devices),
  )


def _bytes(tree) -> int:
  return sum(
    math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize
    for leaf in jax.tree.leaves(tree)
  )


def available_memory(devices) -> tuple[int, str]:
  """(bytes, where) of the memory the least free of `devices` has left."""
  stats = [d.memory_stats() or {} for d in devices]
  if all("bytes_limit" in s for s in stats):
    free = min(s["bytes_limit"] - s.get("bytes_in_use", 0) for s in stats)
    kind = devices[0].device_kind
    return free, f"each {kind} ({devices[0].platform.upper()})"
  return _host_available(), "the host (CPU)"


def _host_available() -> int:
  """MemAvailable of /proc/meminfo (or free pages), within a cgroup's
  limit when the process has one."""
  available = None
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          available = int(line.split()[1]) * 1024
  except OSError:
    pass
  if available is None:
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  try:  # cgroup v2: a container's own limit
    with open("/sys/fs/cgroup/memory.max") as f:
      limit = f.read().strip()
    with open("/sys/fs/cgroup/memory.current") as f:
      used = int(f.read())
    if limit != "max":
      available = min(available, int(limit) - used)
  except (OSError, ValueError):
    pass
  return available


def check_fits(config, model, tx, devices) -> Estimate:
  """The estimate; TooLargeError if it exceeds the memory `devices` have."""
  need = estimate(config, model, tx, len(devices))
  have, where = available_memory(devices)
  if need.total > have:
    m = config.model
    raise TooLargeError(
      f"config.model.hidden={m.hidden} ({m.num_layers} "
      f"layer{'s' if m.num_layers > 1 else ''}, batch "
      f"{config.train.batch_size}) needs about {_size(need.total)} per "
      f"device: parameters {_size(need.parameters)}, optimiser state "
      f"{_size(need.optimiser)}, gradients {_size(need.gradients)}, "
      f"activations {_size(need.activations)}; {where} has "
      f"{_size(have)} available. Lower config.model.hidden, "
      "config.model.num_layers or config.train.batch_size."
    )
  return need


def _size(count: int) -> str:
  """Bytes in binary units: 3.2 GiB, 16.0 PiB."""
  units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
  power = min(int(math.log(max(count, 1), 1024)), len(units) - 1)
  return f"{count / 1024**power:.1f} {units[power]}"

"""The network behind `SequenceAutoencoder`, its masked loss and inference.

`Network` is the paper's model for variable-length sequences: an
`lstm.LSTM` encoder that reads each sequence up to its own length (`mask`),
and `models.Decoder`s started from the encoder's final state of every layer.
Decoders are causal, so a decoder step never sees a later one: running
every row for the batch's T steps and masking the loss past each length is
exact.
"""

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lstm_unsup import losses, lstm, models
from lstm_unsup.sequence.data import reverse_within

Array = jax.Array


class Network(nn.Module):
  """An encoder and the named decoders ("reconstruct", "future")."""

  units: int
  num_layers: int
  decoders: tuple[str, ...]
  conditional: tuple[bool, ...]  # one per decoder
  activation: str = "tanh"
  initializer: str = "authors"  # lstm.INITIALIZERS; the paper's by default

  def setup(self):
    kwargs = dict(activation_fn=self.activation, initializer=self.initializer)
    self.encoder = lstm.LSTM(
      features=self.units, num_layers=self.num_layers, name="encoder", **kwargs
    )
    self.decoder_modules = {
      name: models.Decoder(
        features=self.units,
        num_layers=self.num_layers,
        conditional=conditional,
        handoff="transition",  # the authors' default
        output="real",
        lstm_kwargs=kwargs,
        name=f"decoder_{name}",
      )
      for name, conditional in zip(self.decoders, self.conditional)
    }

  def encode(self, x_BxTxF: Array, mask_BxT: Array) -> tuple[lstm.Carry, ...]:
    """Every layer's (c, h) at each sequence's own last step."""
    return self.encoder(x_BxTxF, mask=mask_BxT)[1]

  def outputs(self, x_BxTxF: Array, mask_BxT: Array) -> Array:
    """The top layer's h at every step [B, T, H], 0 past each length."""
    return self.encoder(x_BxTxF, mask=mask_BxT)[0]

  def decode(
    self, name, carries, teacher_BxKxF, num_steps, num_features, *, free_running
  ):
    """Decoder `name`'s outputs [B, K, F]; `teacher_BxKxF` are its targets
    in order (used by a conditional decoder when not free-running)."""
    return self.decoder_modules[name](
      carries, teacher_BxKxF, num_steps, num_features, free_running=free_running
    )

  def __call__(self, x_BxTxF: Array, mask_BxT: Array, num_future: int):
    """Runs every part once; used to create the parameters."""
    carries = self.encode(x_BxTxF, mask_BxT)
    T, F = x_BxTxF.shape[1:]
    steps = {"reconstruct": T, "future": num_future}
    return {
      name: self.decode(name, carries, None, steps[name], F, free_running=False)
      for name in self.decoders
    }


def loss_terms(
  net: Network,
  params,
  x_BxTxF: Array,
  lengths_B: Array,
  future_steps: int,
  *,
  train: bool,
) -> dict[str, tuple[Array, Array]]:
  """Per decoder, (sum, count) of the per-step squared error (the mean over
  features) over the steps that count. With a future decoder each sequence
  is read for its first L - K steps and the last K are its targets."""
  B, T, F = x_BxTxF.shape
  K = future_steps
  read_B = lengths_B - K
  mask_BxT = jnp.arange(T)[None, :] < read_B[:, None]
  v = {"params": params}
  carries = net.apply(v, x_BxTxF, mask_BxT, method=Network.encode)
  terms = {}
  for name, conditional in zip(net.decoders, net.conditional):
    if name == "reconstruct":
      target = reverse_within(x_BxTxF, read_B)
      mask = mask_BxT
    else:
      at_BxK = jnp.clip(read_B[:, None] + jnp.arange(K)[None, :], 0, T - 1)
      target = jnp.take_along_axis(x_BxTxF, at_BxK[:, :, None], axis=1)
      mask = jnp.broadcast_to(read_B[:, None] > 0, (B, K))
    free = conditional and not train
    out = net.apply(
      v,
      name,
      carries,
      target,
      target.shape[1],
      F,
      free_running=free,
      method=Network.decode,
    )
    per_step_BxK = 2.0 / F * losses.squared_error(out, target)
    terms[name] = (losses.sum_per_frame(per_step_BxK, mask), jnp.sum(mask))
  return terms


def step_errors(net: Network, v, x_BxTxF: Array, lengths_B: Array, K: int):
  """Each step's squared error [B, T, F] in time order, as training scores
  it, and whether the model outputs that step [B, T]: the first L - K steps
  are read and, with a reconstruct decoder, reconstructed; with a future
  decoder, the last K are predicted. Conditional decoders run free."""
  B, T, F = x_BxTxF.shape
  read_B = lengths_B - K
  t_1xT = jnp.arange(T)[None, :]
  read_BxT = t_1xT < read_B[:, None]
  carries = net.apply(v, x_BxTxF, read_BxT, method=Network.encode)
  free = dict(zip(net.decoders, net.conditional))
  out_BxTxF = jnp.zeros_like(x_BxTxF)
  scored_BxT = jnp.zeros((B, T), bool)
  if "reconstruct" in free:
    out_rev = net.apply(
      v, "reconstruct", carries, None, T, F,
      free_running=free["reconstruct"], method=Network.decode,
    )  # fmt: skip
    recon = reverse_within(out_rev, read_B)
    out_BxTxF = jnp.where(read_BxT[..., None], recon, out_BxTxF)
    scored_BxT = read_BxT
  if "future" in free and K:
    out_BxKxF = net.apply(
      v, "future", carries, None, K, F,
      free_running=free["future"], method=Network.decode,
    )  # fmt: skip
    at_BxT = jnp.clip(t_1xT - read_B[:, None], 0, K - 1)
    future = jnp.take_along_axis(out_BxKxF, at_BxT[..., None], axis=1)
    ahead_BxT = ~read_BxT & (t_1xT < lengths_B[:, None])
    out_BxTxF = jnp.where(ahead_BxT[..., None], future, out_BxTxF)
    scored_BxT = scored_BxT | ahead_BxT
  return jnp.square(out_BxTxF - x_BxTxF), scored_BxT


@functools.lru_cache(maxsize=64)
def inference_fn(
  net: Network, what: str, which: str = "h", steps: int = 0
) -> Callable:
  """A jitted fn(params, x_BxTxF, lengths_B): the encoding ([B, E]), the
  reconstruction in time order ([B, T, F]), `steps` future steps, or
  ("score") the squared error of each step (`step_errors` with K = `steps`,
  NaN at the steps it does not score)."""

  def run(params, x_BxTxF, lengths_B):
    v = {"params": params}
    T, F = x_BxTxF.shape[1:]
    mask_BxT = jnp.arange(T)[None, :] < lengths_B[:, None]
    if what == "score":  # NaN where the model outputs nothing
      error_BxTxF, scored_BxT = step_errors(net, v, x_BxTxF, lengths_B, steps)
      return jnp.where(scored_BxT[..., None], error_BxTxF, jnp.nan)
    carries = net.apply(v, x_BxTxF, mask_BxT, method=Network.encode)
    if what == "encode":
      return _features(net, v, x_BxTxF, mask_BxT, lengths_B, carries, which)
    free = dict(zip(net.decoders, net.conditional))[what]
    if what == "reconstruct":
      out_rev = net.apply(
        v, what, carries, None, T, F, free_running=free, method=Network.decode
      )
      return reverse_within(out_rev, lengths_B)
    return net.apply(
      v, what, carries, None, steps, F, free_running=free, method=Network.decode
    )

  return jax.jit(run)


def _features(net, v, x_BxTxF, mask_BxT, lengths_B, carries, which):
  """Every layer's final h, c or both, bottom first; "mean" adds the mean of
  the top layer's h over each sequence's steps to the final state."""
  pick = {"h": (1,), "c": (0,), "state": (0, 1), "mean": (0, 1)}[which]
  parts = [carry[i] for carry in carries for i in pick]
  if which == "mean":
    h_BxTxH = net.apply(v, x_BxTxF, mask_BxT, method=Network.outputs)
    n_Bx1 = jnp.maximum(lengths_B, 1)[:, None].astype(h_BxTxH.dtype)
    parts.append(h_BxTxH.sum(1) / n_Bx1)  # past the end h is 0
  return jnp.concatenate(parts, -1)


def in_chunks(fn, params, x_NxTxF: np.ndarray, lengths_N: np.ndarray, size=256):
  """fn over chunks of `size` rows (the last one padded with empty rows,
  so every chunk has one shape and compiles once), concatenated."""
  N = len(x_NxTxF)
  size = min(size, 1 << (N - 1).bit_length())  # few shapes: powers of 2
  outs = []
  for start in range(0, N, size):
    x, n = x_NxTxF[start : start + size], lengths_N[start : start + size]
    missing = size - len(x)
    if missing:
      x = np.concatenate([x, np.zeros((missing, *x.shape[1:]), x.dtype)])
      n = np.concatenate([n, np.zeros(missing, n.dtype)])
    outs.append(np.asarray(fn(params, x, n))[: size - missing])
  return np.concatenate(outs)

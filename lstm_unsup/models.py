"""The paper's models as configurations of one module (section 2.2-2.4).

An encoder LSTM stack reads the input frames; zero, one or two decoders,
each with its own weights, start from the encoder's final state of every
layer:

  reconstruct  outputs the input frames in reverse order (the autoencoder);
  future       outputs the K frames that follow the input (future predictor).

Both decoders make the composite model. A decoder is *conditional* (fed the
previous frame) or *unconditioned* (fed nothing). By default a conditional
decoder is fed the ground truth while training and its own previous output at
evaluation, as the authors' slides describe; `conditioning_in_training=
"generated"` feeds it its own previous output while training too (the
paper's text: "the last generated frame"), so that training and test run it
the same way.

The hand-off from encoder to decoder follows the authors' code: with
`handoff="transition"` (their default) the encoder state is the decoder's
previous state and its first output comes after one transition with no
input; with `handoff="copy"` the first decoder state is the encoder state.

With `cell="conv"` every LSTM stack is a ConvLSTM (Shi et al. 2015,
arXiv:1506.04214): frames enter as grids of p x p patches (`grids.py`),
encoder and decoders convolve, and each decoder's readout, a Dense layer
over the top layer's features (a 1x1 convolution), gives grids that go back
into frames; inputs, targets and outputs stay flat frames outside the
module, so losses, metrics and figures are the same for both cells.

Outputs are logits for binary data (sigmoid, Bernoulli cross entropy) and
frames for real data (linear, squared error), always in float32: with
`matmul_dtype="bfloat16"` only the matmuls (LSTMs and readouts) take
bfloat16 inputs; parameters, state and losses stay float32. The module returns
`(outputs, aux)`: per-decoder outputs, and the encoder state (the learned
representation) with the conditioning mode each decoder ran in.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lstm_unsup import checks, grids, losses, lstm

Array = jax.Array
DECODER_SETS = {
  "autoencoder": ("reconstruct",),
  "future": ("future",),
  "composite": ("reconstruct", "future"),
}
HANDOFFS = ("transition", "copy")
MATMUL_DTYPES = ("float32", "bfloat16")
TRAINING_CONDITIONING = ("ground_truth", "generated")
# What a free-running binary decoder feeds back: its output after the sigmoid
# (the authors' 2016 code) or before it (their 2015 code).
FED_BACK = ("probabilities", "logits")
CELLS = ("fc", "conv")  # the paper's LSTM, Shi et al.'s ConvLSTM
# The fields of config.model that name one of a few choices, and those.
CHOICES = {
  "cell": CELLS,
  "decoders": tuple(DECODER_SETS),
  "conditioning_in_training": TRAINING_CONDITIONING,
  "fed_back": FED_BACK,
  "handoff": HANDOFFS,
  "initializer": lstm.INITIALIZERS,
  "output": losses.OUTPUTS,
  "matmul_dtype": MATMUL_DTYPES,
}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """What `build_model` needs: `config.model` field by field (each field is
  described in lstm_unsup/configs/default.py). Make one from a config with
  `model_config`; an unknown choice is an error here already."""

  decoders: str = "composite"
  hidden: int = 2048  # H
  num_layers: int = 2  # L
  num_future: int = 10  # K
  conditional_reconstruct: bool = False
  conditional_future: bool = False
  conditioning_in_training: str = "ground_truth"
  fed_back: str = "probabilities"
  reverse_reconstruction: bool = True
  handoff: str = "transition"
  peepholes: bool = False
  initializer: str = "authors"
  forget_bias: float = 0.0
  readout_bias: float = 0.0
  output: str = "binary"
  matmul_dtype: str = "float32"
  teacher_forced_reconstruction_at_eval: bool = False
  teacher_forced_future_at_eval: bool = False
  cell: str = "fc"
  conv_kernel: int = 5  # cell "conv": k x k kernels
  patch_size: int = 4  # cell "conv": p x p patches per grid cell

  def __post_init__(self):
    for field, choices in CHOICES.items():
      checks.check_choice(getattr(self, field), choices, f"model.{field}")
    for field in ("conv_kernel", "patch_size"):
      if getattr(self, field) < 1:
        raise ValueError(
          f"config.model.{field} must be >= 1; got {getattr(self, field)}."
        )


class Decoder(nn.Module):
  """An LSTM stack started from the encoder state, with a readout.

  With `cell="conv"` the stack is a ConvLSTM (`lstm_kwargs` holds its
  kernel_size), frames are grids (`frame_dim` is their shape H x W x P)
  and the readout, a Dense layer over the last axis, is a 1x1 convolution.
  """

  features: int
  num_layers: int
  conditional: bool
  handoff: str
  output: str
  lstm_kwargs: dict[str, Any]
  readout_bias: float = 0.0
  dtype: Any = None  # of the LSTM's and readout's matmuls; None: parameters'
  cell: str = "fc"  # one of CELLS
  # "authors": the readout's weights U(+-0.01) as in their configs (w_output);
  # anything else: nn.Dense's default (LeCun normal).
  initializer: str = ""
  fed_back: str = "probabilities"  # one of FED_BACK

  @nn.compact
  def __call__(
    self,
    carries: tuple[lstm.Carry, ...],
    teacher_BxKxD: Array | None,
    num_steps: int,
    frame_dim: int | tuple[int, ...],
    *,
    free_running: bool,
  ) -> Array:
    """Returns outputs_BxKxD; `teacher_BxKxD` are the targets in order.
    (For a ConvLSTM both are B x K x H x W x P, `frame_dim` = (H, W, P).)"""
    B = carries[0][0].shape[0]
    frame = (frame_dim,) if isinstance(frame_dim, int) else tuple(frame_dim)
    if self.is_initializing():
      # Create every parameter through the teacher-forced path.
      free_running = False
      if teacher_BxKxD is None:
        teacher_BxKxD = jnp.zeros((B, num_steps, *frame))
    stack = (lstm.ConvLSTM if self.cell == "conv" else lstm.LSTM)(
      features=self.features,
      num_layers=self.num_layers,
      name="lstm",
      dtype=self.dtype,
      **self.lstm_kwargs,
    )
    kernel_init = nn.initializers.lecun_normal()
    if self.initializer == "authors":
      kernel_init = lstm.weight_initializers("authors", self.features)[0]
    readout = nn.Dense(
      frame[-1],
      name="readout",
      dtype=self.dtype,
      kernel_init=kernel_init,
      bias_init=nn.initializers.constant(self.readout_bias),
    )
    copy = self.handoff == "copy"
    n = num_steps - 1 if copy else num_steps  # transitions to run
    if n == 0:
      h_BxKxH = carries[-1][1][:, None]
    elif not self.conditional:
      h_BxKxH, _ = stack(None, carries, num_steps=n)
    elif not free_running:
      # Fed the previous target; the first transition gets no frame (zeros).
      prev_BxKxD = teacher_BxKxD[:, : num_steps - 1]
      if not copy:
        zeros = jnp.zeros((B, 1, *frame), prev_BxKxD.dtype)
        prev_BxKxD = jnp.concatenate([zeros, prev_BxKxD], axis=1)
      h_BxKxH, _ = stack(prev_BxKxD, carries)
    else:
      return self._free_run(stack, readout, carries, num_steps, frame)
    if copy and n > 0:
      h_BxKxH = jnp.concatenate([carries[-1][1][:, None], h_BxKxH], axis=1)
    # The readout of all steps is one 2-D matmul after the scan (2-D for the
    # same reason as in cell.project_inputs).
    B, K = h_BxKxH.shape[:2]
    logits_NxD = readout(h_BxKxH.reshape(-1, h_BxKxH.shape[-1]))
    return _at_least_float32(logits_NxD.reshape(B, K, *h_BxKxH.shape[2:-1], -1))

  def _free_run(self, stack, readout, carries, num_steps, frame):
    """Feeds back the decoder's own previous output (after the sigmoid,
    or before it with `fed_back="logits"`)."""
    layers = [
      lstm.cast_matmul_weights(
        stack.variables["params"][f"layer_{k}"], self.dtype
      )
      for k in range(self.num_layers)
    ]
    kernel = readout.variables["params"]["kernel"]
    bias = readout.variables["params"]["bias"]

    def read(h_BxH):  # what `readout` computes, as in nn.Dense
      k, b = kernel, bias
      if self.dtype is not None:
        h_BxH, k, b = (a.astype(self.dtype) for a in (h_BxH, k, b))
      b = b.reshape((1,) * (h_BxH.ndim - 1) + b.shape)
      return _at_least_float32(jnp.dot(h_BxH, k) + b)

    step = lstm.conv_step if self.cell == "conv" else lstm.step

    kw = dict(
      gate_fn=lstm.activation(self.lstm_kwargs.get("gate_fn", "sigmoid")),
      activation_fn=lstm.activation(
        self.lstm_kwargs.get("activation_fn", "tanh")
      ),
    )
    B = carries[0][0].shape[0]

    def to_input(out_BxD):
      if self.output == "binary" and self.fed_back == "probabilities":
        return jax.nn.sigmoid(out_BxD)
      return out_BxD

    def body(state, _):
      carries, x_BxD = state
      new = []
      for params, carry in zip(layers, carries):
        carry = step(params, carry, x_BxD, **kw)
        new.append(carry)
        x_BxD = carry[1]
      out_BxD = read(x_BxD)
      return (tuple(new), to_input(out_BxD)), out_BxD

    carries = tuple(tuple(c) for c in carries)
    if self.handoff == "copy":
      first_BxD = read(carries[-1][1])
      state = (carries, to_input(first_BxD))
      _, outs_KxBxD = jax.lax.scan(body, state, length=num_steps - 1)
      outs_KxBxD = jnp.concatenate([first_BxD[None], outs_KxBxD], axis=0)
    else:
      state = (carries, jnp.zeros((B, *frame), kernel.dtype))
      _, outs_KxBxD = jax.lax.scan(body, state, length=num_steps)
    return jnp.swapaxes(outs_KxBxD, 0, 1)


def _at_least_float32(x: Array) -> Array:
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def matmul_dtype(config: ModelConfig) -> Any:
  """The LSTMs' and readouts' `dtype`: None (the parameters') for float32."""
  return None if config.matmul_dtype == "float32" else jnp.bfloat16


class UnsupervisedLSTM(nn.Module):
  """Encoder plus reconstruction and/or future decoders."""

  config: ModelConfig

  def setup(self):
    c = self.config
    kwargs = dict(
      peepholes=c.peepholes,
      initializer=c.initializer,
      forget_bias=c.forget_bias,
    )
    stack = lstm.LSTM
    if c.cell == "conv":
      stack = lstm.ConvLSTM
      kwargs["kernel_size"] = (c.conv_kernel, c.conv_kernel)
    dtype = matmul_dtype(c)
    self.encoder = stack(
      features=c.hidden,
      num_layers=c.num_layers,
      dtype=dtype,
      name="encoder",
      **kwargs,
    )
    names = DECODER_SETS[c.decoders]
    self.decoder_names = names
    self.decoders = {
      name: Decoder(
        features=c.hidden,
        num_layers=c.num_layers,
        conditional=getattr(c, f"conditional_{name}"),
        handoff=c.handoff,
        output=c.output,
        lstm_kwargs=kwargs,
        readout_bias=c.readout_bias,
        dtype=dtype,
        cell=c.cell,
        initializer=c.initializer,
        fed_back=c.fed_back,
        name=f"decoder_{name}",
      )
      for name in names
    }

  def _cells_in(self, frames_BxTxD: Array | None) -> Array | None:
    """Frames as the LSTMs read them: flat, or grids of patches."""
    if self.config.cell == "fc" or frames_BxTxD is None:
      return frames_BxTxD
    return grids.to_grid(frames_BxTxD, self.config.patch_size)

  def encode(self, inputs_BxTxD: Array) -> tuple[lstm.Carry, ...]:
    """The representation: every encoder layer's final (c, h) (each
    B x H x W x F for a ConvLSTM)."""
    _, carries = self.encoder(self._cells_in(inputs_BxTxD))
    return carries

  def __call__(
    self,
    inputs_BxTxD: Array,
    future_BxKxD: Array | None = None,
    *,
    train: bool = True,
  ) -> tuple[dict[str, Array], dict[str, Any]]:
    carries = self.encode(inputs_BxTxD)
    targets = make_targets(self.config, inputs_BxTxD, future_BxKxD)
    D = inputs_BxTxD.shape[-1]
    conv = self.config.cell == "conv"
    frame = grids.grid_shape(D, self.config.patch_size) if conv else D
    modes = conditioning(self.config, train)
    outputs = {}
    for name in self.decoder_names:
      free = modes[name] == "free-running"
      num_steps = self.config.num_future
      if name == "reconstruct":
        num_steps = inputs_BxTxD.shape[1]
      if modes[name] == "teacher-forced" and targets.get(name) is None:
        raise ValueError(
          f"The conditional {name} decoder needs its ground-truth frames "
          f"when it is not free-running (train={train})."
        )
      outputs[name] = self.decoders[name](
        carries,
        self._cells_in(targets.get(name)),
        num_steps,
        frame,
        free_running=free,
      )
      if conv:
        outputs[name] = grids.from_grid(outputs[name], self.config.patch_size)
    return outputs, {"encoder_state": carries, "conditioning": modes}


def conditioning(config: ModelConfig, train: bool) -> dict[str, str]:
  """What each decoder is fed: "unconditioned", "teacher-forced" (the ground
  truth) or "free-running" (its own previous output)."""
  generated = config.conditioning_in_training == "generated"
  modes = {}
  for name in DECODER_SETS[config.decoders]:
    if not getattr(config, f"conditional_{name}"):
      modes[name] = "unconditioned"
    elif train and generated:
      modes[name] = "free-running"
    elif train or (
      config.teacher_forced_reconstruction_at_eval
      if name == "reconstruct"
      else config.teacher_forced_future_at_eval
    ):
      modes[name] = "teacher-forced"
    else:
      modes[name] = "free-running"
  return modes


def make_targets(
  config: ModelConfig, inputs_BxTxD: Array, future_BxKxD: Array | None
) -> dict[str, Array | None]:
  """Each decoder's targets, in the order it outputs them."""
  targets = {}
  names = DECODER_SETS[config.decoders]
  if "reconstruct" in names:
    targets["reconstruct"] = (
      inputs_BxTxD[:, ::-1] if config.reverse_reconstruction else inputs_BxTxD
    )
  if "future" in names:
    targets["future"] = future_BxKxD
  return targets


def in_time_order(config: ModelConfig, reconstruction_BxTxD: Array) -> Array:
  """A reconstruction put back into the input's time order (for display)."""
  if config.reverse_reconstruction:
    return reconstruction_BxTxD[:, ::-1]
  return reconstruction_BxTxD


def model_config(model: Any) -> ModelConfig:
  """The ModelConfig of a `config.model` (a ConfigDict, dict or ModelConfig):
  the one conversion, which refuses unknown fields and unknown choices."""
  if isinstance(model, ModelConfig):
    return model
  fields = {f.name for f in dataclasses.fields(ModelConfig)}
  values = dict(model)
  unknown = sorted(set(values) - fields)
  if unknown:
    raise ValueError(f"Unknown config.model fields: {unknown}.")
  return ModelConfig(**values)


def build_model(model: Any) -> UnsupervisedLSTM:
  """The model of a `config.model` (a ConfigDict, dict or ModelConfig)."""
  return UnsupervisedLSTM(config=model_config(model))

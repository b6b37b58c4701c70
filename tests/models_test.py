"""Tests of the paper's models: targets, causality, conditioning, hand-off."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_unsup import config_lib, grids, losses, models
from lstm_unsup.configs import composite

B, T, K, D, H = 2, 4, 3, 16, 8
# Either cell: the paper's LSTM, or a ConvLSTM reading the 4x4 frames as a
# 2x2 grid of 2x2 patches.
CELLS = {"fc": {}, "conv": dict(cell="conv", conv_kernel=3, patch_size=2)}


def _model(**overrides):
  cfg = dict(hidden=H, num_layers=2, num_future=K, initializer="torch")
  cfg.update(overrides)
  return models.build_model(models.ModelConfig(**cfg))


def _data(seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return jax.random.uniform(k1, (B, T, D)), jax.random.uniform(k2, (B, K, D))


def test_reconstruction_targets_are_the_reversed_input():
  x, f = _data()
  cfg = models.ModelConfig(decoders="composite")
  targets = models.make_targets(cfg, x, f)
  np.testing.assert_array_equal(
    targets["reconstruct"], np.asarray(x)[:, [3, 2, 1, 0]]
  )
  np.testing.assert_array_equal(targets["future"], f)
  plain = models.ModelConfig(reverse_reconstruction=False)
  np.testing.assert_array_equal(
    models.make_targets(plain, x, f)["reconstruct"], x
  )
  reversed_back = models.in_time_order(cfg, targets["reconstruct"])
  np.testing.assert_array_equal(reversed_back, x)


@pytest.mark.parametrize(
  "decoders, names",
  [
    ("autoencoder", {"reconstruct"}),
    ("future", {"future"}),
    ("composite", {"reconstruct", "future"}),
  ],
)
def test_decoder_sets_and_separate_weights(decoders, names):
  model = _model(decoders=decoders)
  x, f = _data()
  params = model.init(jax.random.key(0), x, f)["params"]
  assert set(params) == {"encoder"} | {f"decoder_{n}" for n in names}
  out, aux = model.apply({"params": params}, x, f)
  assert set(out) == names
  if "reconstruct" in names:
    assert out["reconstruct"].shape == (B, T, D)
  if "future" in names:
    assert out["future"].shape == (B, K, D)
  assert len(aux["encoder_state"]) == 2  # one (c, h) per layer


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("handoff", ["transition", "copy"])
def test_unconditioned_decoders_do_not_see_the_targets(handoff, cell):
  model = _model(handoff=handoff, **CELLS[cell])
  x, f = _data()
  params = model.init(jax.random.key(0), x, f)

  def out_sum(f):
    out, _ = model.apply(params, x, f)
    return out["future"].sum() + out["reconstruct"].sum()

  np.testing.assert_array_equal(jax.grad(out_sum)(f), 0.0)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("handoff", ["transition", "copy"])
def test_conditional_future_step_k_depends_only_on_earlier_frames(
  handoff, cell
):
  model = _model(
    decoders="future", conditional_future=True, handoff=handoff, **CELLS[cell]
  )
  x, f = _data()
  params = model.init(jax.random.key(0), x, f)
  jac = jax.jacrev(lambda f: model.apply(params, x, f)[0]["future"].sum(-1))(f)
  dep_KxK = np.abs(np.asarray(jac)).sum(axis=(0, 2, 4))  # out step x frame
  for k in range(K):
    for j in range(K):
      if j < k:
        assert dep_KxK[k, j] > 0, (k, j)
      else:
        assert dep_KxK[k, j] == 0, (k, j)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_encoder_state_depends_on_every_input_frame(cell):
  model = _model(**CELLS[cell])
  x, f = _data()
  params = model.init(jax.random.key(0), x, f)

  def state_sum(x):
    _, aux = model.apply(params, x, f)
    return sum(jnp.sum(c) + jnp.sum(h) for c, h in aux["encoder_state"])

  g = np.abs(np.asarray(jax.grad(state_sum)(x))).sum(axis=(0, 2))
  assert np.all(g > 0), g


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("handoff", ["transition", "copy"])
@pytest.mark.parametrize(
  "output, fed_back",
  [("binary", "probabilities"), ("binary", "logits"), ("real", "logits")],
)
def test_free_running_feeds_back_the_model_output(
  handoff, output, fed_back, cell
):
  model = _model(
    conditional_reconstruct=True,
    conditional_future=True,
    handoff=handoff,
    output=output,
    fed_back=fed_back,
    peepholes=cell == "conv",
    **CELLS[cell],
  )
  x, f = _data()
  params = model.init(jax.random.key(0), x, f)
  free, aux = model.apply(params, x, train=False)
  assert aux["conditioning"] == {
    "reconstruct": "free-running",
    "future": "free-running",
  }
  # Teacher-forcing each decoder with its own outputs (after the sigmoid,
  # or before it as the 2015 code feeds them), from the same encoder state,
  # reproduces them. A ConvLSTM's decoders read and write grids of 2x2
  # patches; the model, flat frames.
  squash = jax.nn.sigmoid if fed_back == "probabilities" else (lambda v: v)
  frame, to_cells, from_cells = D, (lambda v: v), (lambda v: v)
  if cell == "conv":
    frame = (2, 2, 4)
    to_cells = lambda v: grids.to_grid(v, 2)  # noqa: E731
    from_cells = lambda v: grids.from_grid(v, 2)  # noqa: E731
  bound = model.bind(params)
  for name, steps in (("reconstruct", T), ("future", K)):
    decoder = bound.decoders[name]
    fed = to_cells(squash(free[name]))
    forced = decoder(
      aux["encoder_state"], fed, steps, frame, free_running=False
    )
    np.testing.assert_allclose(
      from_cells(forced), free[name], rtol=1e-5, atol=1e-5
    )
  # Free-running differs from teacher forcing with the ground truth.
  truth, _ = model.apply(params, x, f)
  assert not np.allclose(truth["future"], free["future"])


def test_conv_model_parameters_are_convolutions_and_a_1x1_readout():
  model = _model(peepholes=True, **CELLS["conv"])
  x, f = _data()
  params = model.init(jax.random.key(0), x, f)["params"]
  assert params["encoder"]["layer_0"]["w_input"].shape == (3, 3, 4, 4 * H)
  assert params["encoder"]["layer_1"]["w_peephole"].shape == (3, 2, 2, H)
  decoder = params["decoder_future"]
  assert "w_input" not in decoder["lstm"]["layer_0"]  # unconditioned
  assert decoder["readout"]["kernel"].shape == (H, 4)  # F -> 2x2 patch
  out, aux = model.apply({"params": params}, x, f)
  assert out["future"].shape == (B, K, D)  # flat frames out
  assert aux["encoder_state"][0][0].shape == (B, 2, 2, H)  # grids inside
  with pytest.raises(ValueError, match="patch_size"):
    models.ModelConfig(cell="conv", patch_size=0)


def test_authors_quirk_teacher_forces_reconstruction_at_eval():
  model = _model(
    conditional_reconstruct=True,
    conditional_future=True,
    teacher_forced_reconstruction_at_eval=True,
  )
  x, f = _data()
  params = model.init(jax.random.key(0), x, f)
  out, aux = model.apply(params, x, f, train=False)
  assert aux["conditioning"] == {
    "reconstruct": "teacher-forced",
    "future": "free-running",
  }
  train_out, _ = model.apply(params, x, f, train=True)
  np.testing.assert_array_equal(out["reconstruct"], train_out["reconstruct"])


def test_copy_handoff_first_output_reads_the_encoder_state():
  model = _model(decoders="future", handoff="copy")
  x, f = _data()
  params = model.init(jax.random.key(0), x, f)
  out, aux = model.apply(params, x, f)
  h_top = aux["encoder_state"][-1][1]
  readout = params["params"]["decoder_future"]["readout"]
  np.testing.assert_allclose(
    out["future"][:, 0],
    h_top @ readout["kernel"] + readout["bias"][None],
    rtol=1e-5,
    atol=1e-6,
  )


def test_conditional_decoder_without_ground_truth_is_an_error():
  model = _model(decoders="future", conditional_future=True)
  x, f = _data()
  params = model.init(jax.random.key(0), x, f)
  with pytest.raises(ValueError, match="ground-truth"):
    model.apply(params, x, None, train=True)


def test_unknown_model_field_is_named():
  with pytest.raises(ValueError, match="hiden"):
    models.build_model({"hiden": 3})


@pytest.mark.parametrize("field", sorted(models.CHOICES))
def test_every_choice_field_is_checked_by_the_one_conversion(field):
  values = composite.get_config("quick").model.to_dict()
  assert models.model_config(values) == models.ModelConfig(**values)
  values[field] = "nonsense"
  with pytest.raises(ValueError, match=f"model.{field}='nonsense'"):
    models.model_config(values)
  config = composite.get_config("quick")
  config.model[field] = "nonsense"
  with pytest.raises(config_lib.ConfigError, match=f"config.model.{field}"):
    config_lib.validate(config)


@pytest.mark.parametrize("conditional", [False, True])
def test_bfloat16_matmuls_give_a_loss_close_to_float32(conditional):
  kwargs = dict(
    conditional_reconstruct=conditional, conditional_future=conditional
  )
  f32, bf16 = _model(**kwargs), _model(matmul_dtype="bfloat16", **kwargs)
  x, f = _data()
  params = f32.init(jax.random.key(0), x, f)
  # The same parameters (checkpoint keys, dtypes and values) either way.
  jax.tree.map(
    np.testing.assert_array_equal, bf16.init(jax.random.key(0), x, f), params
  )
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(params))
  targets = models.make_targets(f32.config, x, f)

  def loss(model, params, train):
    out, aux = model.apply(params, x, f, train=train)
    assert all(o.dtype == jnp.float32 for o in out.values())
    state = jax.tree.leaves(aux["encoder_state"])
    assert all(a.dtype == jnp.float32 for a in state)
    return sum(losses.paper_loss(out[n], targets[n]) for n in out)

  # Teacher-forced (train) and, when conditional, free-running (eval).
  for train in (True, False) if conditional else (True,):
    want = loss(f32, params, train)
    got = loss(bf16, params, train)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=1e-3)
    assert got != want  # it did compute in bfloat16
  grads = jax.grad(lambda p: loss(bf16, p, True))(params)
  for g in jax.tree.leaves(grads):
    assert g.dtype == jnp.float32 and np.all(np.isfinite(g))


def test_matmul_dtype_is_validated():
  config = composite.get_config("quick")
  assert config.model.matmul_dtype == "float32"
  config.model.matmul_dtype = "bfloat16"
  config_lib.validate(config)
  config.model.matmul_dtype = "float16x"
  with pytest.raises(
    config_lib.ConfigError, match="config.model.matmul_dtype='float16x'"
  ):
    config_lib.validate(config)
  with pytest.raises(ValueError, match="float16x"):
    _model(matmul_dtype="float16x")


def test_one_step_ahead_evaluation_teacher_forces_the_future():
  model = _model(
    decoders="future",
    conditional_future=True,
    teacher_forced_future_at_eval=True,
  )
  x, f = _data()
  params = model.init(jax.random.key(0), x, f)
  out, aux = model.apply(params, x, f, train=False)
  assert aux["conditioning"] == {"future": "teacher-forced"}
  train_out, _ = model.apply(params, x, f, train=True)
  np.testing.assert_array_equal(out["future"], train_out["future"])
  free = _model(decoders="future", conditional_future=True)
  free_out, _ = free.apply(params, x, f, train=False)
  assert not np.allclose(free_out["future"], out["future"])


def test_generated_conditioning_trains_the_decoder_as_it_is_tested():
  model = _model(
    conditional_future=True,
    conditioning_in_training="generated",
  )
  x, f = _data()
  params = model.init(jax.random.key(0), x, f)
  train_out, aux = model.apply(params, x, f, train=True)
  assert aux["conditioning"] == {
    "reconstruct": "unconditioned",
    "future": "free-running",
  }
  test_out, _ = model.apply(params, x, train=False)
  np.testing.assert_array_equal(train_out["future"], test_out["future"])
  # The same weights trained on the ground truth give other outputs.
  truth, _ = _model(conditional_future=True).apply(params, x, f, train=True)
  assert not np.allclose(truth["future"], train_out["future"])


def test_generated_conditioning_backpropagates_through_the_fed_back_frames():
  # The loss depends on the readout directly and through every frame fed
  # back; the gradient must carry both, as finite differences (float64)
  # measure.
  model = _model(
    decoders="future",
    conditional_future=True,
    conditioning_in_training="generated",
  )
  with jax.enable_x64(True):
    x, f = jax.tree.map(lambda v: v.astype(jnp.float64), _data())
    params = jax.tree.map(
      lambda v: v.astype(jnp.float64), model.init(jax.random.key(0), x, f)
    )
    readout = params["params"]["decoder_future"]["readout"]

    def with_readout(r):
      decoder = dict(params["params"]["decoder_future"], readout=r)
      return {"params": dict(params["params"], decoder_future=decoder)}

    def loss(r):
      out, _ = model.apply(with_readout(r), x, f, train=True)
      return losses.frame_loss(out["future"], f, "binary").mean()

    # The same outputs with the fed-back frames held fixed: no feedback path.
    out, _ = model.apply(params, x, f, train=True)
    fed_BxKxD = jax.nn.sigmoid(out["future"])

    def decode_fed(module, x, fed):
      carries = module.encode(x)
      return module.decoders["future"](carries, fed, K, D, free_running=False)

    def loss_fed_fixed(r):
      out = model.apply(with_readout(r), x, fed_BxKxD, method=decode_fed)
      return losses.frame_loss(out, f, "binary").mean()

    np.testing.assert_allclose(loss_fed_fixed(readout), loss(readout))
    keys = jax.random.split(jax.random.key(1), 2)
    direction = {
      name: jax.random.normal(k, readout[name].shape, jnp.float64)
      for k, name in zip(keys, sorted(readout))
    }

    def shifted(scale):
      return {n: readout[n] + scale * direction[n] for n in readout}

    def along(grad):
      return float(sum(jnp.sum(grad[n] * direction[n]) for n in readout))

    eps = 1e-6
    numeric = float(loss(shifted(eps)) - loss(shifted(-eps))) / (2 * eps)
    full = along(jax.grad(loss)(readout))
    fixed = along(jax.grad(loss_fed_fixed)(readout))
  np.testing.assert_allclose(full, numeric, rtol=1e-6)
  # Leaving out the feedback path is a visible error at this precision.
  assert abs(fixed - numeric) > 100 * abs(full - numeric), (full, fixed)


def test_conditioning_in_training_is_validated():
  with pytest.raises(ValueError, match="sampled"):
    _model(conditional_future=True, conditioning_in_training="sampled")
  config = composite.get_config("quick")
  config.model.conditioning_in_training = "sampled"
  with pytest.raises(config_lib.ConfigError, match="sampled"):
    config_lib.validate(config)

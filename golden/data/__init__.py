"""Data sets shipped in the package: the official MNIST test set (10,000 images), split 8,000 / 2,000 by
:func:`golden.data.mnist.default_split`. The sizes are here, torch-free, for option checks."""

EMBEDDED_IMAGES = 10000
DEFAULT_TRAIN_SIZE = 8000
TEST_PART_SIZE = EMBEDDED_IMAGES - DEFAULT_TRAIN_SIZE  # the default split's test part

"""golden.data.cifar: the official CIFAR-10 python batches, read with a restricted unpickler (fake batches in tmp_path)."""

import os
import pickle

import numpy as np
import pytest
import torch

from golden.core.errors import DataError
from golden.data.cifar import BATCH_FOLDER, TEST_FILES, TRAIN_FILES, load_cifar10_dir


def fake_batch(n, seed, *, protocol=2):
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"fake batch", b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"filenames": [f"img{i}.png".encode() for i in range(n)]}


def write(path, obj, protocol=2):
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=protocol)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / BATCH_FOLDER
    root.mkdir()
    batches = {}
    for index, name in enumerate(TRAIN_FILES + TEST_FILES):
        batches[name] = fake_batch(3 + index, index)
        write(root / name, batches[name], protocol=2 if index % 2 else pickle.HIGHEST_PROTOCOL)
    write(root / "batches.meta", {b"label_names": [b"airplane"] * 10})
    return root, batches


def test_round_trip_train_and_test(folder):
    root, batches = folder
    images, labels = load_cifar10_dir(root, part="train")
    expected = np.concatenate([batches[name][b"data"] for name in TRAIN_FILES])
    assert images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert tuple(images.shape) == (expected.shape[0], 3, 32, 32)
    assert np.array_equal(images.reshape(len(images), -1).numpy(), expected)
    assert labels.tolist() == sum((batches[name][b"labels"] for name in TRAIN_FILES), [])
    # channel layout: 1024 red, 1024 green, 1024 blue values, each a row-major 32x32 plane
    row = batches[TRAIN_FILES[0]][b"data"][0]
    assert np.array_equal(images[0, 1].numpy(), row[1024:2048].reshape(32, 32))
    test_images, test_labels = load_cifar10_dir(root, part="test")
    assert np.array_equal(test_images.reshape(len(test_images), -1).numpy(), batches["test_batch"][b"data"])
    assert test_labels.tolist() == batches["test_batch"][b"labels"]


def test_parent_folder_is_accepted(folder):
    root, batches = folder
    images, _ = load_cifar10_dir(root.parent, part="test")
    assert len(images) == len(batches["test_batch"][b"labels"])


def test_missing_directory_file_and_bad_part(folder, tmp_path):
    root, _ = folder
    with pytest.raises(DataError, match="directory not found"):
        load_cifar10_dir(tmp_path / "nowhere")
    with pytest.raises(DataError, match="not one of"):
        load_cifar10_dir(root, part="validation")
    os.remove(root / "data_batch_3")
    with pytest.raises(DataError, match="data_batch_3: file not found"):
        load_cifar10_dir(root, part="train")
    load_cifar10_dir(root, part="test")  # the other part is still readable


@pytest.mark.parametrize("content, message", [
    (b"not a pickle at all", "not a CIFAR-10 python batch"),
    (pickle.dumps([1, 2, 3]), "not the dict"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "lacks the key"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.int32), b"labels": [0, 1]}), "expected a uint8 array"),
    (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "expected a uint8 array"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "2 images but 1 labels"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), "labels span"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": ["a", None]}), "not a list of integers"),
])
def test_malformed_batches(folder, content, message):
    root, _ = folder
    (root / "test_batch").write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_cifar10_dir(root, part="test")


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


def test_foreign_globals_are_never_loaded(folder):
    root, _ = folder
    (root / "test_batch").write_bytes(pickle.dumps({b"data": _Payload(), b"labels": []}))
    with pytest.raises(DataError, match="not part of a CIFAR-10 batch"):
        load_cifar10_dir(root, part="test")

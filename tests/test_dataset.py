"""golden.data.dataset: one data-set notion (embedded MNIST, IDX directories of any size, CIFAR-10 batches, .npz),
the explicit input scale, and one-line errors for data that does not fit."""

import gzip
import pickle

import numpy as np
import pytest

from golden.core.errors import DataError
from golden.core.network import DenseLayer, IntegerNetwork, NeuronParams
from golden.data.dataset import DEFAULT_SCALE, load_dataset


def write_npz(path, x_train, y_train, x_test, y_test, **extra):
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, **extra)
    return path


def write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def dense_net(n_in, scale=None):
    metadata = {"input": {"scale": scale, "bits": 8}} if scale is not None else {}
    return IntegerNetwork(input_shape=(n_in,), layers=[DenseLayer(np.ones((3, n_in), np.int64), np.zeros(3, np.int64),
                                                                  np.full(3, 5), NeuronParams())], metadata=metadata)


def test_embedded_default_is_the_fixed_mnist_split():
    data = load_dataset(None)
    assert data.image_shape == (28, 28) and len(data.train_images) == 8000 and len(data.test_images) == 2000
    assert data.scale == DEFAULT_SCALE and data.n_classes == 10 and data.train_images.dtype == np.uint8
    from golden.data.mnist import default_split

    split = default_split()
    assert np.array_equal(data.calibration_images(), split.train_images[:2000].numpy())
    assert np.array_equal(data.test_labels, split.test_labels.numpy())


def test_npz_uint8_float_and_stated_scale(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 3, 12)
    data = load_dataset(write_npz(tmp_path / "u8.npz", x, y, x[:5], y[:5]))
    assert data.image_shape == (8, 8) and data.scale == DEFAULT_SCALE and np.array_equal(data.test_images, x[:5])
    assert load_dataset(tmp_path / "u8.npz", scale=0.5).value_max == 127.5
    floats = x.astype(np.float32) / 255 * 2.0  # values in [0, 2]
    data = load_dataset(write_npz(tmp_path / "f.npz", floats, y, floats[:5], y[:5]), value_range=2.0)
    assert np.array_equal(data.train_images, x) and data.scale == pytest.approx(2 / 255) and "quantised" in data.note


@pytest.mark.parametrize("case, kwargs, message", [
    ("no labels", {}, "lacks y_test"),
    ("floats without range", {}, "state their range"),
    ("floats out of range", {"value_range": 0.5}, "outside the stated range"),
    ("negative floats", {"value_range": 1.0}, "outside the stated range"),
    ("int32 images", {}, "dtype int32"),
    ("label count", {}, "12 train images but 11 labels"),
    ("shapes differ", {}, "differ in shape"),
    ("not an npz", {}, "not a readable .npz"),
    ("bad scale", {"scale": -1.0}, "positive"),
    ("nan", {"value_range": 1.0}, "NaN"),
])
def test_npz_refusals_are_one_line(tmp_path, case, kwargs, message):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (12, 4, 4), dtype=np.uint8)
    y = rng.integers(0, 3, 12)
    path = tmp_path / "d.npz"
    if case == "no labels":
        np.savez(path, x_train=x, y_train=y, x_test=x)
    elif case in ("floats without range", "floats out of range"):
        write_npz(path, x / 255.0, y, x / 255.0, y)
    elif case == "negative floats":
        write_npz(path, x / 255.0 - 0.5, y, x / 255.0, y)
    elif case == "int32 images":
        write_npz(path, x.astype(np.int32), y, x.astype(np.int32), y)
    elif case == "label count":
        write_npz(path, x, y[:11], x, y)
    elif case == "shapes differ":
        write_npz(path, x, y, x.reshape(12, 16), y)
    elif case == "not an npz":
        path.write_bytes(b"PK\x03\x04 this is not a zip")
    elif case == "nan":
        bad = x / 255.0
        bad[0, 0, 0] = np.nan
        write_npz(path, bad, y, bad, y)
    else:
        write_npz(path, x, y, x, y)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(path, **kwargs)
    assert "\n" not in str(info.value)


def test_idx_directory_of_another_image_size(tmp_path):
    rng = np.random.default_rng(2)
    for part, n in (("train", 9), ("t10k", 4)):
        write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 12, 10)), 0x803)
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte.gz", rng.integers(0, 10, n), 0x801)
    data = load_dataset(tmp_path)
    assert data.image_shape == (12, 10) and len(data.train_images) == 9 and len(data.test_images) == 4


def test_cifar10_batches(tmp_path):
    rng = np.random.default_rng(3)
    for name, n in [(f"data_batch_{i}", 2) for i in range(1, 6)] + [("test_batch", 3)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": [int(v) for v in rng.integers(0, 10, n)]}
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=2))
    data = load_dataset(tmp_path)
    assert data.image_shape == (3, 32, 32) and len(data.train_images) == 10 and len(data.test_images) == 3


def test_check_fits_names_shape_and_scale(tmp_path):
    x = np.zeros((4, 8, 8), np.uint8)
    y = np.zeros(4, np.int64)
    data = load_dataset(write_npz(tmp_path / "d.npz", x, y, x, y))
    data.check_fits(dense_net(64))
    data.check_fits(dense_net(64, scale=1 / 255))
    with pytest.raises(DataError, match=r"\(8, 8\) \(64 values\) do not fit the network's input \(63,\)"):
        data.check_fits(dense_net(63))
    with pytest.raises(DataError, match="converted for codes worth 0.5"):
        data.check_fits(dense_net(64, scale=0.5))
    with pytest.raises(DataError, match="asked for 5 test images"):
        data.test_part(5)
    with pytest.raises(DataError, match="no such file or directory"):
        load_dataset(tmp_path / "missing")

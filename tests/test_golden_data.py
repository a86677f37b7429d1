"""golden.data.mnist: IDX reading, the embedded MNIST set, its fixed split, full-download folders."""

import gzip
import shutil

import numpy as np
import pytest
import torch

from golden.core.errors import DataError, SnnCosimError
from golden.data import mnist as data


def write_idx(path, array: np.ndarray, magic: int, compress: bool = False):
    header = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if compress else blob)
    return path


@pytest.fixture
def small_set():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8), rng.integers(0, 10, size=5).astype(np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, small_set, compress):
    images, labels = small_set
    suffix = ".gz" if compress else ""
    img = data.load_idx_images(write_idx(tmp_path / f"im{suffix}", images, data.IMAGES_MAGIC, compress))
    lab = data.load_idx_labels(write_idx(tmp_path / f"lb{suffix}", labels, data.LABELS_MAGIC, compress))
    assert img.dtype == torch.uint8 and tuple(img.shape) == (5, 4, 3)
    assert np.array_equal(img.numpy(), images)
    assert lab.dtype == torch.int64 and np.array_equal(lab.numpy(), labels)


def test_wrong_magic_names_the_file(tmp_path, small_set):
    path = write_idx(tmp_path / "labels-as-images", small_set[1], data.LABELS_MAGIC)
    with pytest.raises(DataError, match="labels-as-images.*magic"):
        data.load_idx_images(path)


def test_truncated_file(tmp_path, small_set):
    path = write_idx(tmp_path / "cut.idx", small_set[0], data.IMAGES_MAGIC)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match="cut.idx.*truncated"):
        data.load_idx_images(path)
    path.write_bytes(path.read_bytes()[:6])
    with pytest.raises(DataError, match="cut.idx"):
        data.load_idx_images(path)


def test_corrupted_gzip(tmp_path, small_set):
    path = write_idx(tmp_path / "bad.gz", small_set[0], data.IMAGES_MAGIC, compress=True)
    blob = bytearray(path.read_bytes())
    path.write_bytes(bytes(blob[: len(blob) // 2]))
    with pytest.raises(DataError, match="bad.gz"):
        data.load_idx_images(path)


def test_label_out_of_range(tmp_path):
    path = write_idx(tmp_path / "lab", np.array([1, 12], dtype=np.uint8), data.LABELS_MAGIC)
    with pytest.raises(DataError, match="lab.*12"):
        data.load_idx_labels(path)


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "train-images-idx3-ubyte"
    with pytest.raises(DataError, match="nowhere"):
        data.load_idx_images(missing)
    assert issubclass(DataError, SnnCosimError)


def test_embedded_mnist():
    images, labels = data.embedded_mnist()
    assert images.dtype == torch.uint8 and tuple(images.shape) == (10000, 28, 28)
    assert labels.dtype == torch.int64 and tuple(labels.shape) == (10000,)
    assert int(images.max()) == 255 and set(labels.unique().tolist()) == set(range(10))
    images[0] = 0  # a copy: the cached set is untouched
    assert int(data.embedded_mnist()[0][0].max()) > 0


def test_embedded_md5_is_checked(tmp_path, monkeypatch):
    for name, _ in data.EMBEDDED_FILES.values():
        shutil.copy(data.EMBEDDED_DIR / name, tmp_path / name)
    labels_file = tmp_path / data.EMBEDDED_FILES["labels"][0]
    blob = bytearray(labels_file.read_bytes())
    blob[-1] ^= 0xFF
    labels_file.write_bytes(bytes(blob))
    monkeypatch.setattr(data, "EMBEDDED_DIR", tmp_path)
    data._embedded_cached.cache_clear()
    try:
        with pytest.raises(DataError, match="md5"):
            data.embedded_mnist()
    finally:
        monkeypatch.undo()
        data._embedded_cached.cache_clear()


def test_split_order_is_fixed():
    order = data.split_order(10000)
    assert sorted(order.tolist()) == list(range(10000))
    assert order[:6].tolist() == [41, 3515, 4838, 2861, 9882, 2950]  # never changes between versions
    assert not np.array_equal(order, data.split_order(10000, seed=1))


def test_default_split_deterministic_and_disjoint():
    first, second = data.default_split(), data.default_split()
    assert tuple(first.train_images.shape) == (8000, 28, 28) and tuple(first.test_images.shape) == (2000, 28, 28)
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    order = data.split_order(10000)
    assert set(order[:8000].tolist()).isdisjoint(order[8000:].tolist())
    images, labels = data.embedded_mnist()
    assert torch.equal(first.test_images, images[torch.from_numpy(order[8000:])])
    assert torch.equal(first.train_labels, labels[torch.from_numpy(order[:8000])])
    assert np.bincount(first.test_labels.numpy(), minlength=10).min() > 150  # every class represented
    with pytest.raises(DataError):
        data.default_split(train_size=10000)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_dir(tmp_path, small_set, compress):
    images, labels = small_set
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, data.IMAGES_MAGIC, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, data.LABELS_MAGIC, compress)
    got_images, got_labels = data.load_mnist_dir(tmp_path, "test")
    assert np.array_equal(got_images.numpy(), images) and np.array_equal(got_labels.numpy(), labels)
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        data.load_mnist_dir(tmp_path, "train")
    with pytest.raises(DataError, match="part"):
        data.load_mnist_dir(tmp_path, "validation")


def test_load_mnist_dir_count_mismatch(tmp_path, small_set):
    images, labels = small_set
    write_idx(tmp_path / "train-images-idx3-ubyte", images, data.IMAGES_MAGIC)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels[:3], data.LABELS_MAGIC)
    with pytest.raises(DataError, match="5 images.*3 labels"):
        data.load_mnist_dir(tmp_path)


def test_to_unit():
    codes = torch.tensor([[0, 51, 255]], dtype=torch.uint8)
    unit = data.to_unit(codes)
    assert unit.dtype == torch.float32 and torch.allclose(unit, torch.tensor([[0.0, 0.2, 1.0]]))
    assert data.to_unit(np.array([255], dtype=np.uint8)).item() == 1.0
    with pytest.raises(DataError, match="uint8"):
        data.to_unit(unit)

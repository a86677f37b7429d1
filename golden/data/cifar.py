"""CIFAR-10 reader for the official "python version" batches (Krizhevsky, www.cs.toronto.edu/~kriz/cifar.html).

The official archive ``cifar-10-python.tar.gz`` unpacks to a folder ``cifar-10-batches-py`` holding
``data_batch_1`` … ``data_batch_5`` (training part, 10 000 images each), ``test_batch`` (test part) and
``batches.meta``. Each batch is a Python pickle of a dict with the keys ``b"data"`` (a ``uint8`` numpy array
``[10000, 3072]``: per row the 1024 red, then 1024 green, then 1024 blue values of a 32x32 image, row-major) and
``b"labels"`` (a list of 10 000 integers 0..9), plus ``b"batch_label"`` and ``b"filenames"``.

Pickle can run arbitrary code, so this reader only opens files with the official names and unpickles them with a
restricted unpickler that resolves nothing but numpy's array reconstruction (no other class or function can be
loaded); then it checks the keys, shape, dtype and label range. Anything else is a :class:`DataError`.

    images, labels = load_cifar10_dir("data/cifar-10-batches-py", part="train")   # uint8 [50000, 3, 32, 32]
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from golden.core.errors import DataError

BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
IMAGE_SHAPE = (3, 32, 32)
N_CLASSES = 10
_MAX_BYTES = 200 << 20  # an official batch is about 31 MB

# the only globals a CIFAR batch pickle needs (numpy 1.x and 2.x module paths)
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # pickle protocol 5
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes written by Python 3 with protocol 2 (text → latin-1 bytes, no side effects)
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not part of a CIFAR-10 batch")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected the official CIFAR-10 python batches "
                        f"({', '.join(TRAIN_FILES + TEST_FILES)})")
    size = path.stat().st_size
    if size > _MAX_BYTES:
        raise DataError(f"{path}: {size} bytes is too large for a CIFAR-10 batch (about 31 MB)")
    try:
        batch = _BatchUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a malformed file
        raise DataError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: holds a {type(batch).__name__}, not the dict of a CIFAR-10 batch")
    keys = {key.decode("latin-1") if isinstance(key, bytes) else key: value for key, value in batch.items()}
    missing = [key for key in ("data", "labels") if key not in keys]
    if missing:
        raise DataError(f"{path}: batch lacks the key(s) {', '.join(missing)}; expected 'data' and 'labels'")
    data = keys["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' is {what}, expected a uint8 array [N, 3072]")
    try:
        labels = np.asarray(keys["labels"], dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"{path}: 'labels' is not a list of integers") from None
    if labels.shape[0] != data.shape[0]:
        raise DataError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise DataError(f"{path}: labels span [{labels.min()}, {labels.max()}], expected 0..{N_CLASSES - 1}")
    return data.reshape(-1, *IMAGE_SHAPE), labels


def load_cifar10_dir(directory: str | os.PathLike,
                     part: Literal["train", "test"] = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """One part of the official CIFAR-10 python batches as (images ``uint8 [N, 3, 32, 32]``, labels ``int64 [N]``).

    ``directory`` is the unpacked ``cifar-10-batches-py`` folder (or its parent). ``part="train"`` reads
    ``data_batch_1..5`` in order (50 000 images), ``part="test"`` reads ``test_batch`` (10 000)."""
    if part not in ("train", "test"):
        raise DataError(f"part={part!r} is not one of 'train', 'test'")
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: directory not found; pass the unpacked '{BATCH_FOLDER}' folder")
    if not (directory / TEST_FILES[0]).exists() and (directory / BATCH_FOLDER).is_dir():
        directory = directory / BATCH_FOLDER
    names = TRAIN_FILES if part == "train" else TEST_FILES
    images, labels = zip(*(_read_batch(directory / name) for name in names))
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))

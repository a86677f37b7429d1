"""MNIST data: an IDX reader, the embedded 10 000-image set and its fixed train/test split.

Pixel values stay ``uint8`` codes 0..255 everywhere in snncosim: they are the integer input codes that the SNN
encoders turn into spikes (SPEC §4, ``IntegerNetwork.input_bits == 8``). The ANN sees the same pixels as floats in
[0, 1] (Diehl 2015 §IV-A: "intensities scaled to [0,1]"), made by :func:`to_unit`.

The package embeds the official MNIST *test* set (``t10k-*``, 10 000 images) so that every example and test runs
offline. :func:`default_split` divides it once and for all into an 8 000-image train part and a 2 000-image test
part. A full MNIST download can be read with :func:`load_mnist_dir`.

IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian header of ``0x00 0x00 <type> <ndim>``
followed by ``ndim`` big-endian uint32 dimension sizes, then the data in C order. MNIST uses type ``0x08``
(unsigned byte): images have magic ``0x00000803`` (3 dimensions), labels ``0x00000801`` (1 dimension).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from golden.core.errors import DataError
from golden.data import DEFAULT_TRAIN_SIZE

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
GZIP_SIGNATURE = b"\x1f\x8b"

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
EMBEDDED_FILES = {
    "images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}

DEFAULT_SPLIT_SEED = 2015  # the year of Diehl et al.; any fixed number would do


# ------------------------------------------------------------------------------------------------ IDX reader
def _read_bytes(path: str | os.PathLike) -> bytes:
    """Whole file contents, gunzipped when the file starts with the gzip signature (whatever its name)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path (MNIST files are named like "
                        f"'train-images-idx3-ubyte' or '.gz')")
    raw = path.read_bytes()
    if raw[:2] == GZIP_SIGNATURE:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DataError(f"{path}: corrupted gzip data ({exc.__class__.__name__}); "
                            f"download the file again") from None
    return raw


def _parse_idx(path: str | os.PathLike, expected_magic: int, what: str) -> np.ndarray:
    """Parse an unsigned-byte IDX file and check its magic number and that the data size matches the header."""
    data = _read_bytes(path)
    name = Path(path).name
    if len(data) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise DataError(f"{name}: magic number 0x{magic:08x} is not 0x{expected_magic:08x} (IDX {what}); "
                        f"is this the right file?")
    ndim = data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{name}: truncated IDX header ({len(data)} bytes, need {header_size})")
    shape = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    n_values = int(np.prod(shape, dtype=np.int64))
    payload = len(data) - header_size
    if payload != n_values:
        raise DataError(f"{name}: header announces shape {shape} ({n_values} bytes) but the file holds {payload} "
                        f"data bytes; the file is truncated or corrupted, download it again")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def load_idx_images(path: str | os.PathLike) -> torch.Tensor:
    """Read an IDX image file (raw or gzip) as ``uint8`` codes of shape ``[N, rows, cols]``."""
    return torch.from_numpy(_parse_idx(path, IMAGES_MAGIC, "images, ubyte, 3 dimensions"))


def load_idx_labels(path: str | os.PathLike) -> torch.Tensor:
    """Read an IDX label file (raw or gzip) as ``int64`` labels of shape ``[N]`` (each must be 0..9)."""
    labels = _parse_idx(path, LABELS_MAGIC, "labels, ubyte, 1 dimension")
    if labels.size and labels.max() > 9:
        raise DataError(f"{Path(path).name}: label {int(labels.max())} is not a digit 0..9")
    return torch.from_numpy(labels.astype(np.int64))


def _pair(images: torch.Tensor, labels: torch.Tensor, images_path: Path, labels_path: Path):
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{images_path.name} holds {images.shape[0]} images but {labels_path.name} holds "
                        f"{labels.shape[0]} labels; use files of the same MNIST part")
    return images, labels


# ------------------------------------------------------------------------------------------------ embedded set
def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@functools.lru_cache(maxsize=1)
def _embedded_cached() -> tuple[torch.Tensor, torch.Tensor]:
    paths = {}
    for key, (file_name, md5) in EMBEDDED_FILES.items():
        path = EMBEDDED_DIR / file_name
        if not path.is_file():
            raise DataError(f"{path}: embedded MNIST file is missing; reinstall snncosim")
        if _md5(path) != md5:
            raise DataError(f"{path}: md5 checksum mismatch (expected {md5}); the embedded MNIST file is corrupted, "
                            f"reinstall snncosim")
        paths[key] = path
    images = load_idx_images(paths["images"])
    labels = load_idx_labels(paths["labels"])
    return _pair(images, labels, paths["images"], paths["labels"])


def embedded_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """The embedded MNIST test set: ``uint8`` images ``[10000, 28, 28]`` and ``int64`` labels ``[10000]``.

    Both files' md5 sums are checked (a mismatch is a :class:`DataError`). Returns fresh copies, so callers may
    modify them.
    """
    images, labels = _embedded_cached()
    return images.clone(), labels.clone()


@dataclass(frozen=True)
class MnistSplit:
    """A train part and a test part of MNIST (images ``uint8 [N, 28, 28]``, labels ``int64 [N]``)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def split_order(n: int, seed: int = DEFAULT_SPLIT_SEED) -> np.ndarray:
    """A fixed pseudo-random permutation of ``range(n)``, identical on every machine and library version.

    Each index ``i`` gets the key ``splitmix64(seed·2^32 + i)`` (Steele, Lea & Flood 2014, the finaliser of
    SplitMix64), computed in wrapping ``uint64`` arithmetic; the permutation sorts the keys. Unlike a library RNG
    stream, this never changes between numpy/torch versions.
    """
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64(seed) * np.uint64(1 << 32) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return np.argsort(z, kind="stable")


def default_split(train_size: int = DEFAULT_TRAIN_SIZE, seed: int = DEFAULT_SPLIT_SEED) -> MnistSplit:
    """The project's fixed split of the embedded 10 000 MNIST images: 8 000 train, 2 000 test (by default).

    The embedded file is MNIST's official test set, whose first 5 000 images are known to be cleaner than the last
    5 000 (LeCun's MNIST page), so the parts are drawn by a fixed pseudo-random permutation (:func:`split_order`,
    seed 2015) rather than cut in order: the first ``train_size`` permuted images form the train part, the rest
    the test part. The two parts are disjoint and cover the set; the split is the same on every machine.
    """
    images, labels = _embedded_cached()
    if not 0 < train_size < images.shape[0]:
        raise DataError(f"train_size={train_size} must lie in 1..{images.shape[0] - 1}")
    order = torch.from_numpy(split_order(images.shape[0], seed))
    train, test = order[:train_size], order[train_size:]
    return MnistSplit(images[train].clone(), labels[train].clone(), images[test].clone(), labels[test].clone())


# ------------------------------------------------------------------------------------------------ full download
_STANDARD_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_standard_file(directory: Path, stem: str) -> Path:
    # the official names, plus the common variant with a dot before "idx" (e.g. from some mirrors)
    candidates = [stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"]
    for candidate in candidates:
        if (directory / candidate).is_file():
            return directory / candidate
    raise DataError(f"{directory}: no file {stem} or {stem}.gz; expected the standard MNIST file names")


def load_mnist_dir(directory: str | os.PathLike,
                   part: Literal["train", "test"] = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Read one part of a full MNIST download (standard file names, gzipped or not) as (images, labels)."""
    directory = Path(directory)
    if part not in _STANDARD_STEMS:
        raise DataError(f"part={part!r} is not one of 'train', 'test'")
    if not directory.is_dir():
        raise DataError(f"{directory}: directory not found; pass the folder holding the MNIST files")
    images_path = _find_standard_file(directory, _STANDARD_STEMS[part][0])
    labels_path = _find_standard_file(directory, _STANDARD_STEMS[part][1])
    return _pair(load_idx_images(images_path), load_idx_labels(labels_path), images_path, labels_path)


# ------------------------------------------------------------------------------------------------ conversions
def to_unit(images) -> torch.Tensor:
    """``uint8`` pixel codes 0..255 (tensor or array) → ``float32`` in [0, 1] (code / 255), the ANN's input."""
    tensor = torch.as_tensor(images)
    if tensor.dtype != torch.uint8:
        raise DataError(f"to_unit expects uint8 pixel codes 0..255, got {tensor.dtype}; "
                        f"images that are already floats in [0, 1] need no conversion")
    return tensor.to(torch.float32) / 255.0

"""One data-set notion for every command: a train part (calibration) and a test part of integer input codes with
labels, and the explicit **input scale** (the float value of code 1: what the ANN saw for a code c is c · scale).

Sources (:func:`load_dataset`):

* ``mnist`` (the default): the embedded official MNIST test set, split 8,000 / 2,000 (:func:`golden.data.mnist.
  default_split`); uint8 codes, scale 1/255;
* a directory of IDX files with the standard names (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte``,
  ``t10k-…``), images of any size (MNIST, Fashion-MNIST, or your own written as IDX); scale 1/255;
* a directory of the official CIFAR-10 python batches (``data_batch_1..5``, ``test_batch``); scale 1/255;
* an ``.npz`` with ``x_train, y_train, x_test, y_test`` (images ``[N, ...]``, labels ``[N]`` of non-negative
  integers). uint8 images are codes with scale 1/255 (torchvision's ``ToTensor`` convention) unless the caller
  states another ``scale``; float images need their range stated (``value_range`` R: the values must lie in
  [0, R]) and are quantised to 8-bit codes ``round(x / R · 255)`` with scale R/255 (the quantisation is stated in
  :attr:`Dataset.note`); any other dtype is refused.

Codes are 8-bit (``INPUT_BITS``): every encoder and conversion route of the project reads 8-bit pixel codes. Numpy
only (torch-free), so the command line checks a data set before importing anything heavy.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden.core.errors import DataError

__all__ = ["Dataset", "load_dataset", "INPUT_BITS", "DEFAULT_SCALE", "DEFAULT_CALIBRATION_IMAGES"]

INPUT_BITS = 8
DEFAULT_SCALE = 1 / 255
DEFAULT_CALIBRATION_IMAGES = 2000  # the first images of the train part calibrate a conversion
_SCALE_TOLERANCE = 1e-9
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class Dataset:
    """A data set of integer input codes ``uint8 [N, ...]`` (train and test parts) with ``int64 [N]`` labels and
    the ``scale`` (float value of code 1). ``name`` says where it came from; ``note`` any quantisation applied."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    scale: float = DEFAULT_SCALE
    note: str = ""

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.test_images.shape[1:])

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.image_shape))

    @property
    def value_max(self) -> float:
        """The float value of the largest code, (2^8 − 1) · scale (1.0 for the 1/255 convention)."""
        return ((1 << INPUT_BITS) - 1) * self.scale

    @property
    def n_classes(self) -> int:
        return int(max(self.train_labels.max(initial=-1), self.test_labels.max(initial=-1))) + 1

    def calibration_images(self, count: int = DEFAULT_CALIBRATION_IMAGES) -> np.ndarray:
        """The first ``count`` images of the train part (codes)."""
        return self.train_images[:count]

    def test_part(self, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The first ``count`` test images and labels (all with None)."""
        if count is None:
            return self.test_images, self.test_labels
        if not 1 <= count <= len(self.test_images):
            raise DataError(f"{self.name}: asked for {count} test images, the test part holds "
                            f"{len(self.test_images)}")
        return self.test_images[:count], self.test_labels[:count]

    def describe(self) -> str:
        shape = "x".join(str(n) for n in self.image_shape)
        return (f"{self.name}: {len(self.train_images)} train / {len(self.test_images)} test images of {shape}, "
                f"{self.n_classes} classes, code 1 = {self.scale:.6g}{'; ' + self.note if self.note else ''}")

    def check_fits(self, network) -> None:
        """The network can take these images: the input size (and a conv network's input shape) match, and the
        input scale the network records (``metadata["input"]["scale"]``, when it records one) is this data
        set's."""
        shape = tuple(int(n) for n in network.input_shape)
        if int(np.prod(shape)) != self.n_inputs:
            raise DataError(f"{self.name}: images of shape {self.image_shape} ({self.n_inputs} values) do not fit "
                            f"the network's input {shape} ({int(np.prod(shape))} values)")
        if len(shape) == 3 and self.image_shape not in (shape, shape[1:] if shape[0] == 1 else None):
            raise DataError(f"{self.name}: images of shape {self.image_shape} do not match the conv network's input "
                            f"(channels, height, width) = {shape}")
        recorded = network_input_scale(network)
        if recorded is not None and not math.isclose(recorded, self.scale, rel_tol=_SCALE_TOLERANCE):
            raise DataError(f"{self.name}: a code of this data set is worth {self.scale:.6g}, the network was "
                            f"converted for codes worth {recorded:.6g} (metadata input.scale); state the data "
                            f"set's scale (--input-scale) or convert the network for this data")


def network_input_scale(network) -> float | None:
    """The input scale a network file records (``metadata["input"]["scale"]``), or None."""
    entry = network.metadata.get("input") if isinstance(network.metadata, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("scale"), (int, float)):
        return float(entry["scale"])
    return None


# ------------------------------------------------------------------------------------------------ loading
def load_dataset(spec: str | os.PathLike | None = None, *, scale: float | None = None,
                 value_range: float | None = None) -> Dataset:
    """The data set named by ``spec`` (module docstring): None or ``"mnist"`` for the embedded default, a
    directory of IDX files or CIFAR-10 batches, or an ``.npz`` file. ``scale`` states the value of code 1 of
    uint8 images (default 1/255); ``value_range`` R states the range [0, R] of float images."""
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise DataError(f"the input scale must be a positive number, got {scale}")
    if value_range is not None and not (math.isfinite(value_range) and value_range > 0):
        raise DataError(f"the value range must be a positive number, got {value_range}")
    if spec is None or str(spec) == "mnist":
        if value_range is not None:
            raise DataError("the embedded MNIST set holds uint8 codes; a value range applies to float images")
        return _embedded(scale)
    path = Path(spec)
    if path.suffix == ".npz":
        return _from_npz(path, scale, value_range)
    if path.is_dir():
        if value_range is not None:
            raise DataError(f"{path}: IDX and CIFAR-10 files hold uint8 codes; a value range applies to float "
                            f"images in an .npz")
        names = {p.name for p in path.iterdir()}
        if "test_batch" in names or "cifar-10-batches-py" in names:
            return _from_cifar(path, scale)
        return _from_idx(path, scale)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory; pass 'mnist', a directory of IDX files or CIFAR-10 "
                        f"batches, or an .npz with x_train, y_train, x_test, y_test")
    raise DataError(f"{path}: not a data set (expected a directory of IDX files or CIFAR-10 batches, or an .npz)")


def _embedded(scale: float | None) -> Dataset:
    from golden.data.mnist import default_split  # torch, only for the embedded set

    split = default_split()
    return Dataset("mnist (embedded, 8,000 / 2,000 split)", split.train_images.numpy(),
                   split.train_labels.numpy(), split.test_images.numpy(), split.test_labels.numpy(),
                   DEFAULT_SCALE if scale is None else float(scale))


def _from_idx(path: Path, scale: float | None) -> Dataset:
    from golden.data.mnist import load_mnist_dir

    train = load_mnist_dir(path, part="train")
    test = load_mnist_dir(path, part="test")
    return _checked(f"{path} (IDX)", train[0].numpy(), train[1].numpy(), test[0].numpy(), test[1].numpy(),
                    DEFAULT_SCALE if scale is None else float(scale))


def _from_cifar(path: Path, scale: float | None) -> Dataset:
    from golden.data.cifar import load_cifar10_dir

    train = load_cifar10_dir(path, part="train")
    test = load_cifar10_dir(path, part="test")
    return _checked(f"{path} (CIFAR-10)", train[0].numpy(), train[1].numpy(), test[0].numpy(), test[1].numpy(),
                    DEFAULT_SCALE if scale is None else float(scale))


def _from_npz(path: Path, scale: float | None, value_range: float | None) -> Dataset:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in _NPZ_KEYS if key not in archive.files]
            if missing:
                raise DataError(f"{path}: lacks {', '.join(missing)} (a data set .npz holds x_train, y_train, "
                                f"x_test, y_test{'; labels are needed to measure accuracy' if any(k.startswith('y') for k in missing) else ''})")
            arrays = {key: archive[key] for key in _NPZ_KEYS}
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") \
            from None
    parts = {}
    note = ""
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype == np.uint8:
            if value_range is not None:
                raise DataError(f"{path}: x_{part} holds uint8 codes; --value-range applies to float images "
                                f"(state the value of code 1 with --input-scale instead)")
            codes = x
        elif np.issubdtype(x.dtype, np.floating):
            if value_range is None:
                raise DataError(f"{path}: x_{part} holds {x.dtype} values; state their range [0, R] with "
                                f"--value-range R (they are quantised to 8-bit codes)")
            if scale is not None:
                raise DataError(f"{path}: float images take --value-range, not --input-scale (the scale is R/255)")
            if not np.all(np.isfinite(x)):
                raise DataError(f"{path}: x_{part} holds NaN or infinite values")
            lo, hi = float(x.min(initial=0.0)), float(x.max(initial=0.0))
            if lo < 0 or hi > value_range * (1 + 1e-6):
                raise DataError(f"{path}: x_{part} spans [{lo:.6g}, {hi:.6g}], outside the stated range [0, "
                                f"{value_range:.6g}]; the SNN takes non-negative inputs up to the stated range")
            codes = np.rint(np.clip(x / value_range, 0.0, 1.0) * 255.0).astype(np.uint8)
            note = f"float images in [0, {value_range:.6g}] quantised to 8-bit codes round(x / {value_range:.6g} · 255)"
        else:
            raise DataError(f"{path}: x_{part} has dtype {x.dtype}; images must be uint8 codes or floats with a "
                            f"stated range")
        parts[part] = (codes, y)
    if value_range is not None:
        scale = value_range / 255.0
    return _checked(f"{path}", parts["train"][0], parts["train"][1], parts["test"][0], parts["test"][1],
                    DEFAULT_SCALE if scale is None else float(scale), note)


def _checked(name: str, x_train, y_train, x_test, y_test, scale: float, note: str = "") -> Dataset:
    for part, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim < 2:
            raise DataError(f"{name}: x_{part} must be images [N, ...], got shape {tuple(x.shape)}")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{name}: y_{part} must be integer labels [N], got {y.dtype} of shape {tuple(y.shape)}")
        if len(y) != len(x):
            raise DataError(f"{name}: {len(x)} {part} images but {len(y)} labels")
        if len(x) == 0:
            raise DataError(f"{name}: the {part} part is empty")
        if y.min() < 0:
            raise DataError(f"{name}: y_{part} holds a negative label ({int(y.min())})")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{name}: train images {tuple(x_train.shape[1:])} and test images "
                        f"{tuple(x_test.shape[1:])} differ in shape")
    return Dataset(name, np.ascontiguousarray(x_train), y_train.astype(np.int64), np.ascontiguousarray(x_test),
                   y_test.astype(np.int64), float(scale), note)

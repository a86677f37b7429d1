"""The short API: a data set, a trained torch model, a verdict — the same path as ``snncosim convert`` and
``snncosim cosim``, in four calls::

    from cosim import api as snn

    data = snn.load_data("digits8.npz")                   # or "mnist", an IDX or CIFAR-10 directory
    net = snn.convert(model, data, coding="rate")         # "weighted", "fs"; an IntegerNetwork
    golden = snn.simulate(net, data, steps=64)            # golden model on the test part: .accuracy, .trace
    verdict = snn.cosimulate(net, data, steps=64, images=10)
    print(golden.accuracy, verdict.equivalent, verdict.first_difference)
    whole = snn.cosimulate_test_set(net, data, steps=64, jobs=2)  # every test image, digest-checked (ShardedRun)

Every backend takes the same time-major spikes ``bool [T, N, n]`` and returns the same ``Trace``
(``golden.simulation.simulate.IntegerSimulator`` / ``FloatSimulator``, ``cosim.session.RtlSimulator``); these
functions make the spikes from the data set with the network's own encoder (:func:`golden.simulation.inputs.
encode_inputs`). Defaults are the command line's (``golden.conversion.DEFAULT_NEURON``, T = 64 rate, 32 weighted,
L·K FS, 8 lanes, seed 0).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from golden.core.errors import SnnCosimError
from golden.core.network import IntegerNetwork
from golden.core.trace import Comparison, Trace, compare
from golden.data.dataset import Dataset, load_dataset

__all__ = ["load_data", "convert", "simulate", "cosimulate", "cosimulate_test_set", "GoldenRun", "Verdict"]


def load_data(spec: str | os.PathLike | None = "mnist", *, scale: float | None = None,
              value_range: float | None = None) -> Dataset:
    """A data set (:func:`golden.data.dataset.load_dataset`): "mnist" (embedded), an IDX or CIFAR-10 directory,
    or an .npz with x_train, y_train, x_test, y_test."""
    return load_dataset(spec, scale=scale, value_range=value_range)


def convert(model, data: Dataset, *, coding: str = "rate", **recipe) -> IntegerNetwork:
    """Convert a trained ReLU ANN for ``data`` (calibrated on its first 2,000 train images) with ``coding``
    ("rate", "weighted", "fs") and the other :class:`golden.conversion.pipeline.Recipe` fields (``norm``,
    ``neuron``, ``phases``, ``weight_bits``…); the network records the input scale and the ANN's test accuracy."""
    import torch

    from golden.conversion.pipeline import Recipe, convert_model
    from golden.training.ann_trainer import evaluate

    network = convert_model(model, torch.from_numpy(data.calibration_images()),
                            Recipe(coding=coding, input_scale=data.scale, **recipe)).integer
    data.check_fits(network)
    images, labels = data.test_part()
    inputs = torch.from_numpy(images).to(torch.float32).mul(data.scale)
    if len(network.input_shape) == 3:
        inputs = inputs.reshape(len(images), *network.input_shape)
    network.metadata.setdefault("ann", {})["accuracy"] = {
        "value": evaluate(model, inputs, labels), "data": data.name, "images": int(len(images))}
    return network


@dataclass
class GoldenRun:
    """The golden model on ``images`` test images: the trace, the labels and the accuracy."""
    trace: Trace
    labels: np.ndarray
    accuracy: float


def _spikes(network: IntegerNetwork, data: Dataset, images: int | None, steps: int | None, seed: int):
    from golden.simulation.inputs import encode_inputs

    data.check_fits(network)
    codes, labels = data.test_part(images)
    return encode_inputs(network, codes, steps, seed=seed), labels


def simulate(network: IntegerNetwork, data: Dataset, *, steps: int | None = None, images: int | None = None,
             lanes: int = 8, seed: int = 0, record_membranes: bool | None = None) -> GoldenRun:
    """The bit-exact golden model on the first ``images`` test images (default: all)."""
    from golden.simulation.simulate import IntegerSimulator

    spikes, labels = _spikes(network, data, images, steps, seed)
    trace = IntegerSimulator(network).run(spikes, lanes=lanes, record_membranes=record_membranes)
    return GoldenRun(trace, labels, float((trace.predictions == labels).mean()))


@dataclass
class Verdict:
    """Golden model vs RTL on the same spikes: ``equivalent``, the ``first_difference`` (None when equivalent),
    both traces, the comparison and the RTL run's cost figures (``rtl_run``: cycles/s, build time…)."""
    equivalent: bool
    first_difference: str | None
    golden: Trace
    rtl: Trace
    comparison: Comparison
    rtl_run: object


def cosimulate(network: IntegerNetwork, data: Dataset, *, steps: int | None = None, images: int = 20,
               lanes: int = 8, seed: int = 0, work_dir: str | os.PathLike | None = None,
               waves: bool = False) -> Verdict:
    """The first ``images`` test images on the golden model and on the RTL engine (Verilator), compared spike for
    spike, membrane for membrane, counter for counter and cycle for cycle."""
    from cosim.session import RtlSimulator, golden_reference

    if images < 1:
        raise SnnCosimError(f"images must be at least 1, got {images}")
    spikes, _ = _spikes(network, data, images, steps, seed)
    rtl = RtlSimulator(network, lanes=lanes, work_dir=work_dir, waves=waves)
    rtl_trace = rtl.run(spikes)
    golden = golden_reference(network, spikes, lanes=lanes)
    comparison = compare(golden, rtl_trace)
    first = None if comparison.equivalent else str(comparison.first_difference)
    return Verdict(comparison.equivalent, first, golden, rtl_trace, comparison, rtl.last_run)


def cosimulate_test_set(network: IntegerNetwork, data: Dataset, *, steps: int | None = None,
                        images: int | None = None, jobs: int | None = None, full_trace: bool = False, lanes: int = 8,
                        seed: int = 0, work_dir: str | os.PathLike | None = None, progress: bool = False):
    """The first ``images`` test images (default: all) on the RTL, ``jobs`` simulator processes at a time (default:
    the cores available), each image checked against the golden model by its digest (``full_trace``: every beat as
    text); returns a :class:`cosim.shards.ShardedRun` (``equivalent``, ``first_difference``, ``images_per_second``,
    ``peak_rss_bytes``…). The images are encoded chunk by chunk, never all at once."""
    import tempfile

    from golden.simulation.inputs import encode_inputs

    from .shards import cosimulate_sharded

    data.check_fits(network)
    codes, _ = data.test_part(images)

    def encode(start: int, stop: int):
        return encode_inputs(network, codes[start:stop], steps, seed=seed, first_index=start)

    with tempfile.TemporaryDirectory(prefix="snncosim-test-set-") as tmp:
        return cosimulate_sharded(network, encode, len(codes), lanes=lanes, jobs=jobs, full_trace=full_trace,
                                  work_dir=work_dir if work_dir is not None else tmp, progress=progress)

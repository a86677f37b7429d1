"""The small ResNet of scripts/bench_resnet.py (golden.conversion.residual.default_resnet, cached) converted to FS-neurons
(Stöckl & Maass 2021) with residual junctions (golden.conversion.fs_convert.fs_convert_residual; docs/spec.md §3b,
"Residual junctions in FS networks"): integer ReLU tables of K steps, 8-bit weights, the default membrane width
(nothing saturates), the integer golden simulator (golden model only: the engine has no FS delay line).

    python scripts/bench_resnet_fs.py --test 100 --phases 8

Prints the ANN accuracy (2 000-image test part and the first ``--test`` images), the FS network's accuracy on those
images (latency L·K steps), its agreement with the ANN's predictions, spikes per hidden neuron, the ratio of its
synaptic operations (ACs + MACs, skip passes included) to the ANN's MACs, membrane_bits and saturations.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden.conversion.fs_convert import fs_convert_residual  # noqa: E402
from golden.conversion.residual import default_resnet  # noqa: E402
from golden.core.macs import ann_macs  # noqa: E402
from golden.data.mnist import default_split  # noqa: E402
from golden.simulation.counting import fs_spikes_per_neuron  # noqa: E402
from golden.simulation.simulate import IntegerSimulator  # noqa: E402
from golden.training.ann_trainer import evaluate, predict  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", type=int, default=100, help="test images simulated")
    parser.add_argument("--phases", type=int, nargs="+", default=[8], help="K values")
    parser.add_argument("--calibration", type=int, default=256, help="calibration images (α_l: 99.99th percentile)")
    args = parser.parse_args(argv)
    start = time.time()
    torch.set_num_threads(2)
    model = default_resnet()
    split = default_split()
    test = split.test_images[:args.test].unsqueeze(1)
    labels = split.test_labels[:args.test].numpy()
    ann_acc = evaluate(model, split.test_images.unsqueeze(1), split.test_labels)
    ann = predict(model, test).numpy()
    print(" ".join(sys.argv))
    print(f"ANN accuracy: {ann_acc:.4f} on {len(split.test_labels)} test images; {np.mean(ann == labels):.4f} on the "
          f"first {args.test}")
    calib = split.train_images[:args.calibration].unsqueeze(1)
    for phases in args.phases:
        t0 = time.time()
        result = fs_convert_residual(model, calib, phases=phases, input_shape=(1, 28, 28))
        net = result.integer
        trace = IntegerSimulator(net, device="cpu").run(result.input_spikes(split.test_images[:args.test]))
        totals = trace.totals()
        ops = (totals["acs"] + totals["macs"]) / args.test / ann_macs(net)
        spikes = fs_spikes_per_neuron(trace)[:-1]
        acc = float(np.mean(trace.predictions == labels))
        print(f"FS K={phases:2d}: {acc:.4f} ({100 * (acc - np.mean(ann == labels)):+.2f} pp vs ANN), agreement with "
              f"the ANN {np.mean(trace.predictions == ann):.4f}; latency {net.fs_latency} steps; spikes per hidden "
              f"neuron {np.mean(spikes):.3f}; synaptic ops/ANN MACs {ops:.3f}; membrane_bits {net.membrane_bits}, "
              f"saturations {totals['saturations']}; skips {[(s.source, s.target) for s in net.skips]} "
              f"({time.time() - t0:.0f} s)")
    print(f"elapsed {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

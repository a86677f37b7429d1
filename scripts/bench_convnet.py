"""Diehl's ConvNet (28x28-12c5-2s-64c5-2s-10, bias-free, average pooling) on the embedded MNIST split:
data-based normalisation (Diehl 2015 Alg. 2) vs Spike-Norm (Sengupta 2019 Alg. 1), rate coding.

    python scripts/bench_convnet.py                 # about 4 minutes on 2 CPU cores (training cached afterwards)
    python scripts/bench_convnet.py --test 200 --steps 25 50 100

Prints: the ANN accuracy on the 2 000-image test part; the SNN accuracy of both conversions after T steps on the
first ``--test`` test images (one encoder seed, integer golden simulator, IF with reset by subtraction, 8-bit
weights); the ratio of the SNN's accumulates (every input and hidden spike times its fan-out, summed over T steps)
to the ANN's multiply-accumulates of one inference (golden.counting.ann_macs), which Sengupta reports as 1.975
(VGG-16, T = 500) and 2.4 (ResNet-34, T = 2000). The trained state_dict is cached like golden.train.default_mlp,
as ``convnet-<recipe hash>.pt`` in the same cache directory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden.convert import convert  # noqa: E402
from golden.counting import ann_macs, fan_out  # noqa: E402
from golden.data import default_split  # noqa: E402
from golden.encoding import rate_encode  # noqa: E402
from golden.ir import NeuronParams  # noqa: E402
from golden.simulate import IntegerSimulator, accuracy_and_spikes_curve  # noqa: E402
from golden.spikenorm import spike_norm_convert  # noqa: E402
from golden.train import DEFAULT_CONV_RECIPE, default_convnet, evaluate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", type=int, default=500, help="test images simulated (default 500)")
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 50, 100, 200], help="T values reported")
    parser.add_argument("--calibration", type=int, default=256, help="Spike-Norm calibration images (paper: 256)")
    parser.add_argument("--calibration-steps", type=int, default=100, help="Spike-Norm steps per layer")
    parser.add_argument("--seed", type=int, default=1, help="encoder seed of the test spikes")
    parser.add_argument("--reset", choices=("subtract", "zero"), default="subtract",
                        help="IF reset of both conversions (Sengupta: zero; default subtract)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    start = time.time()
    split = default_split()
    recipe = DEFAULT_CONV_RECIPE
    model = default_convnet(recipe=recipe)
    trained = model.trained_now
    ann = evaluate(model, split.test_images[:, None], split.test_labels)
    print(f"ConvNet 28x28-12c5-2s-64c5-2s-10 ({'trained' if trained else 'cached'} {recipe.key()}, "
          f"{recipe.epochs} epochs, {time.time() - start:.0f} s)")
    print(f"ANN accuracy (test part, {len(split.test_labels)} images): {100 * ann:.2f} %")
    ann_sub = evaluate(model, split.test_images[:args.test, None], split.test_labels[:args.test])
    print(f"ANN accuracy on the first {args.test} test images: {100 * ann_sub:.2f} %")

    neuron = NeuronParams("if", args.reset)
    t0 = time.time()
    data = convert(model, split.train_images, method="data", neuron=neuron)
    t1 = time.time()
    spike = spike_norm_convert(model, split.train_images[:args.calibration], steps=args.calibration_steps,
                               seed=0, neuron=neuron)
    t2 = time.time()
    print(f"data-based: λ = {', '.join(f'{v:.3g}' for v in data.lambdas)}  ({t1 - t0:.0f} s, "
          f"{len(split.train_images)} images)")
    print(f"Spike-Norm: θ = {', '.join(f'{v:.3g}' for v in spike.thresholds)}  ({t2 - t1:.0f} s, "
          f"{args.calibration} images x {args.calibration_steps} steps)")
    print(f"  weight factors data {', '.join(f'{v:.3g}' for v in data.normalization.weight_factors)}; "
          f"Spike-Norm {', '.join(f'{1 / v:.3g}' for v in spike.thresholds)}")

    steps = sorted(set(args.steps))
    spikes = rate_encode(split.test_images[:args.test], steps[-1], seed=args.seed)
    labels = split.test_labels[:args.test]
    macs = ann_macs(data.integer)
    rows = {}
    for name, network in (("data-based", data.integer), ("Spike-Norm", spike.integer)):
        t0 = time.time()
        rows[name] = accuracy_and_spikes_curve(IntegerSimulator(network), spikes, labels, steps)
        print(f"  simulated {name} for T = {steps[-1]} in {time.time() - t0:.0f} s")
    print(f"\nSNN accuracy (%) on {args.test} test images, rate coding, IF reset {args.reset}, 8-bit weights")
    print("method      " + "".join(f"  T={t:<6}" for t in steps))
    print(f"{'ANN':<12}" + "".join(f"  {100 * ann_sub:<8.2f}" for t in steps))
    for name, curve in rows.items():
        print(f"{name:<12}" + "".join(f"  {100 * curve[t].accuracy:<8.2f}" for t in steps))
    # ACs caused by the input spikes (layer 1), the same for both networks: Σ spikes · fan-out of each pixel
    fan = torch.as_tensor(fan_out(data.integer.layers[0]), dtype=torch.float64)
    cumulative = torch.cumsum(spikes.to(torch.float64) @ fan, dim=0).mean(dim=1)  # [T]
    input_acs = {t: float(cumulative[t - 1]) for t in steps}
    print(f"\nSNN ACs / ANN MACs (ANN: {macs} MACs per image), all layers / without the input spikes' ACs")
    for name, curve in rows.items():
        print(f"{name:<12}" + "".join(f"  {curve[t].acs / macs:.3f}/{(curve[t].acs - input_acs[t]) / macs:<6.3f}"
                                      for t in steps))
    print("spikes per image (all layers) at T = " + str(steps[-1]) + ": " + ", ".join(
        f"{name} {curve[steps[-1]].spikes:.0f}" for name, curve in rows.items()))
    print(f"(Sengupta 2019: 1.975 for VGG-16 at T = 500, 2.4 for ResNet-34 at T = 2000)\ntotal {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()

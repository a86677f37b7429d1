"""The deepest network the project trains — a small ResNet (two plain 3×3 convs, three basic blocks with identity
and 1×1 stride-2 shortcuts, average pool, linear; 10 weight layers, bias-free) on the embedded MNIST split —
converted with Sengupta's residual rules (golden.conversion.residual): data-based normalisation (max activation; 99.9th
percentile, Rueckauer 2017) vs Spike-Norm, IF with reset to zero and by subtraction, rate coding, 8-bit weights,
integer golden simulator. A diagnostic row drops rule 2 (shared thresholds) for data-based normalisation. Rows
``ws-<method>:K`` convert for weighted spikes (Kim 2018, K phases, 'ws' hidden layers, 'acc' output; the same rules)
and are simulated for ``--periods`` periods of K steps.

    python scripts/bench_resnet.py            # ANN trained once and cached (golden.conversion.residual.default_resnet)
    python scripts/bench_resnet.py --quick    # fewer test images and steps
    python scripts/bench_resnet.py --rows data:zero spikenorm:subtract   # a subset of the rows
    python scripts/bench_resnet.py --test 100 --rows ws-percentile:4 ws-data:4   # weighted spikes, K = 4

The golden simulator needs about 1 ms per image and step for this network on 2 idle cores (20-25 ms while other
jobs share them), so ``--test`` images x max(``--steps``) x rows sets the run time.

Prints: the ANN accuracy (2 000-image test part); per conversion the SNN accuracy after T steps on the first
``--test`` test images (one encoder seed), the steps needed to reach ANN − 1 pp (on those images), and the ratio of
the SNN's accumulates (input and hidden spikes × fan-out, skip passes included, summed over T_max steps) to the
ANN's multiply-accumulates of one inference (golden.core.macs.ann_macs; an identity shortcut counts as c·h·w
additions). Sengupta reports 1.975 (VGG-16) and 2.4 (ResNet-34).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden.conversion.residual import convert_residual, default_resnet  # noqa: E402
from golden.core.macs import ann_macs  # noqa: E402
from golden.core.network import NeuronParams  # noqa: E402
from golden.data.mnist import default_split  # noqa: E402
from golden.simulation.encoding import rate_encode, weighted_encode  # noqa: E402
from golden.simulation.simulate import IntegerSimulator, accuracy_and_spikes_curve  # noqa: E402
from golden.training.ann_trainer import evaluate  # noqa: E402

# method:reset; "data-unshared" = data-based without rule 2 (each layer its own λ), a diagnostic
ROWS = ("data:zero", "data-unshared:zero", "percentile:zero", "spikenorm:zero", "data:subtract", "percentile:subtract",
        "spikenorm:subtract", "ws-percentile:4")


def weighted_row(model, calib, split, args, method: str, phases: int, sub_acc: float) -> None:
    """Weighted spikes (Kim 2018): accuracy of the 'acc' output after each of ``args.periods`` periods."""
    t0 = time.time()
    conv = convert_residual(model, calib, input_shape=(1, 28, 28), method=method, input_coding="weighted",
                            phases=phases)
    t1 = time.time()
    net = conv.integer
    codes = conv.input_codes(split.test_images[:args.test].reshape(args.test, -1).to(torch.int64))
    steps = [p * phases for p in args.periods]
    spikes = weighted_encode(codes, max(steps), phases)
    curve = accuracy_and_spikes_curve(IntegerSimulator(net, device="cpu"), spikes, split.test_labels[:args.test],
                                      steps, batch_size=50)
    reach = next((p for p, t in zip(args.periods, steps) if curve[t].accuracy >= sub_acc - 0.01), None)
    ratio = curve[max(steps)].acs / ann_macs(net)
    accs = "  ".join(f"{p}P: {curve[t].accuracy:.3f}" for p, t in zip(args.periods, steps))
    print(f"ws-{method:10s} K={phases:<7d} {accs}  periods to ANN-1pp: {reach or f'>{max(args.periods)}'}  "
          f"AC/MAC ({max(args.periods)} periods): {ratio:.3f}  ({t1 - t0:.0f} s conversion, "
          f"{time.time() - t1:.0f} s simulation)")
    print(f"    lambdas {' '.join(f'{v:.2f}' for v in conv.lambdas)}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", type=int, default=500, help="test images simulated")
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 50, 100, 150, 200])
    parser.add_argument("--calibration", type=int, default=256, help="calibration images (Sengupta: 256)")
    parser.add_argument("--spikenorm-steps", type=int, default=100)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), help=f"method:reset rows (default {' '.join(ROWS)})")
    parser.add_argument("--periods", type=int, nargs="+", default=[2, 4, 6, 8, 10, 12],
                        help="periods of K steps simulated for the weighted-spike rows (ws-<method>:K)")
    parser.add_argument("--quick", action="store_true", help="100 test images, T up to 100, 64 calibration images")
    args = parser.parse_args(argv)
    if args.quick:
        args.test, args.steps, args.calibration, args.spikenorm_steps = 100, [25, 50, 100], 64, 50
    start = time.time()
    torch.set_num_threads(2)
    model = default_resnet()
    split = default_split()
    ann_acc = evaluate(model, split.test_images.unsqueeze(1), split.test_labels)
    sub_acc = evaluate(model, split.test_images[:args.test].unsqueeze(1), split.test_labels[:args.test])
    print(" ".join(sys.argv))
    print(f"ANN (10 weight layers) accuracy: {ann_acc:.4f} on {len(split.test_labels)} test images; "
          f"{sub_acc:.4f} on the first {args.test}")
    calib = split.train_images[:args.calibration].double() / 255.0
    codes = split.test_images[:args.test].reshape(args.test, -1).to(torch.int64)
    labels = split.test_labels[:args.test]
    t_max = max(args.steps)
    spikes = rate_encode(codes, t_max, seed=1)
    for row in args.rows:
        method, reset = row.split(":")
        if method.startswith("ws-"):
            weighted_row(model, calib, split, args, method.removeprefix("ws-"), int(reset), sub_acc)
            continue
        t0 = time.time()
        shared = not method.endswith("-unshared")
        conv = convert_residual(model, calib, input_shape=(1, 28, 28), method=method.removesuffix("-unshared"),
                                neuron=NeuronParams("if", reset), spikenorm_steps=args.spikenorm_steps,
                                shared_thresholds=shared)
        t1 = time.time()
        net = conv.integer
        curve = accuracy_and_spikes_curve(IntegerSimulator(net, device="cpu"), spikes, labels, args.steps,
                                          batch_size=50)
        reach = next((t for t in args.steps if curve[t].accuracy >= sub_acc - 0.01), None)
        ratio = curve[t_max].acs / ann_macs(net)
        accs = "  ".join(f"T={t}: {curve[t].accuracy:.3f}" for t in args.steps)
        print(f"{method:13s} reset={reset:8s} {accs}  steps to ANN-1pp: {reach or f'>{t_max}'}  "
              f"AC/MAC (T={t_max}): {ratio:.3f}  ({t1 - t0:.0f} s conversion, {time.time() - t1:.0f} s simulation)")
        print(f"    lambdas {' '.join(f'{v:.2f}' for v in conv.lambdas)}", flush=True)
    print(f"elapsed {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

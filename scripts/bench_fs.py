"""FS conversion of the default MNIST MLP (Stöckl & Maass 2021): accuracy vs the ANN and spikes per neuron.

    python scripts/bench_fs.py [--phases 8 10] [--lanes 8] [--percentile 99.99 | --max]

On the embedded MNIST test part (golden.data.mnist.default_split(), 2000 images) with golden.training.ann_trainer.default_mlp():
for each K, the integer FS network's accuracy (golden model) and its float twin's, the difference to the ANN in
percentage points, the mean spikes per hidden neuron and image (paper: 1.36–1.45 on CIFAR ResNets), the input
spikes per pixel, ACs vs the ANN's MACs, saturations, latency L·K, and the cycles of one image and of a stream.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from golden.conversion.fs_convert import fs_convert
from golden.core import cycle_model
from golden.core.macs import ann_macs
from golden.data.mnist import default_split
from golden.simulation import counting
from golden.simulation.simulate import FloatSimulator, IntegerSimulator
from golden.training.ann_trainer import default_mlp, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", type=int, nargs="+", default=[8, 10])
    parser.add_argument("--lanes", type=int, default=8)
    parser.add_argument("--percentile", type=float, default=99.99)
    parser.add_argument("--max", action="store_true", help="alpha = max activation instead of the percentile")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rtl-images", type=int, default=20, help="images streamed through the RTL (0: skip)")
    parser.add_argument("--clock-mhz", type=float, default=100.0, help="clock for images per second of "
                        "simulated time (default: 100 MHz)")
    args = parser.parse_args()
    split = default_split()
    model = default_mlp()
    labels = split.test_labels.numpy()
    ann = evaluate(model, split.test_images, split.test_labels)
    print(f"ANN (default MLP 784-256-10): {100 * ann:.2f}% on {len(labels)} test images")
    for phases in args.phases:
        start = time.time()
        result = fs_convert(model, split.train_images, phases=phases, percentile=None if args.max else args.percentile)
        net = result.integer
        x = result.input_spikes(split.test_images)
        trace = IntegerSimulator(net, device=args.device).run(x, lanes=args.lanes)
        accuracy = float(np.mean(trace.predictions == labels))
        float_run = FloatSimulator(result.float_network, device=args.device).run(x, record_membranes=False)
        float_accuracy = float(np.mean(float_run.predictions == labels))  # membranes not kept: 10k images
        totals = trace.totals()
        n_images = trace.n_images
        per_neuron = counting.fs_spikes_per_neuron(trace)
        hidden = sum(n for n in net.layer_sizes[1:-1])
        hidden_spikes = sum(per_neuron[l] * net.layer_sizes[l + 1] for l in range(len(net.layers) - 1)) / hidden
        input_spikes = float(np.asarray(trace.input_spikes).sum() / (n_images * net.n_inputs))
        net_macs = ann_macs(net)
        stream = cycle_model.fs_stream_cycles(trace.counter("cycles"), phases)
        print(f"FS K={phases:2d}: integer {100 * accuracy:.2f}% ({100 * (accuracy - ann):+.2f} pp vs ANN), float "
              f"{100 * float_accuracy:.2f}%; spikes per hidden neuron {hidden_spikes:.3f}, input spikes per pixel "
              f"{input_spikes:.3f}; α = {[round(a, 3) for a in result.alphas]}, θ = {result.thetas}, "
              f"membrane_bits = {net.membrane_bits}, saturations = {totals['saturations']}")
        print(f"        per image: ACs {totals['acs'] / n_images:.0f} (ANN MACs {net_macs}), MACs "
              f"{totals['macs'] / n_images:.0f}, latency {net.fs_latency} steps, cycles "
              f"{trace.image_cycles.mean():.0f} (P={args.lanes}); stream of {n_images}: "
              f"{stream.global_steps} steps (vs {stream.unstreamed_steps}), {stream.total_cycles} cycles, "
              f"layer-parallel bound {stream.pipelined_cycles}; {time.time() - start:.1f} s")
        if args.rtl_images > 0:
            rtl_stream(result, split, args, phases)
    side_by_side(model, split, labels, ann, args)


def rtl_stream(result, split, args, phases: int) -> None:
    """Stream ``--rtl-images`` test images through the RTL: equivalence, steady state vs the pipeline bound."""
    from cosim.session import cosimulate, golden_reference
    from golden.core.trace import compare

    n = args.rtl_images
    spikes = result.input_spikes(split.test_images[:n]).numpy()  # time-major [L·K, n, 784]
    run = cosimulate(result.integer, spikes, lanes=args.lanes)
    verdict = compare(golden_reference(result.integer, spikes, lanes=args.lanes), run.trace)
    f = run.fs_figures()
    period_cycles = f["steady_cycles_per_image"]
    print(f"        RTL stream of {n} images: {verdict.summary()}")
    print(f"        simulated {f['stream_cycles']:,} cycles at {run.cycles_per_second / 1e6:.2f} M cycles/s "
          f"({run.images_per_second:.1f} images/s of wall time)")
    print(f"        steady state: {period_cycles:,.0f} cycles per image (one image per 2K = {f['period_steps']} "
          f"steps) = {args.clock_mhz * 1e6 / period_cycles:,.0f} images/s at {args.clock_mhz:g} MHz; "
          f"pipeline bound with one unit per layer {f['pipelined_cycles_per_image']:,.0f} cycles "
          f"(ratio {period_cycles / f['pipelined_cycles_per_image']:.3f}); latency {f['latency_steps']} steps")


def side_by_side(model, split, labels, ann: float, args) -> None:
    """Rate coding, weighted spikes and FS for the same network, each at its default length (cosim/app/job.py)."""
    import torch

    from cosim.app.job import JobOptions, convert_for_coding

    print(f"\nsame network, every coding (test part, {len(labels)} images; ANN {100 * ann:.2f}%):")
    print(f"  {'coding':<34}{'steps':>6}{'accuracy':>10}{'vs ANN':>9}{'spikes/neuron':>15}{'ACs/image':>12}")
    pixels = torch.as_tensor(np.asarray(split.test_images)).reshape(len(labels), -1)
    for coding in ("rate", "weighted", "fs"):
        options = JobOptions(coding=coding, phases=args.phases[0] if coding == "fs" else None, rtl=False,
                             progress=False)
        options.validate()
        net, encode = convert_for_coding(model, split.train_images[:2000], options)
        trace = IntegerSimulator(net, device=args.device).run(encode(pixels, 0), lanes=args.lanes)
        accuracy = float(np.mean(trace.predictions == labels))
        hidden = [l for l, layer in enumerate(net.layers) if layer.neuron.spiking]
        per_neuron = sum(float(trace.spikes[l].sum()) for l in hidden) / (len(labels) * sum(
            net.layers[l].n_out for l in hidden))
        print(f"  {options.describe():<34}{trace.n_steps:>6}{100 * accuracy:>9.2f}%{100 * (accuracy - ann):>+8.2f}"
              f"{per_neuron:>15.2f}{trace.totals()['acs'] / len(labels):>12,.0f}")


if __name__ == "__main__":
    main()

"""Diehl's ConvNet (28x28-12c5-2s-64c5-2s-10, bias-free, average pooling; golden.training.ann_trainer.default_convnet) on the
embedded MNIST split (issue 6): accuracy per coding and normalisation, spiking ACs per ANN MAC, RTL cycles per
conv layer against ACs/P, weight memory per layer.

    python scripts/bench_convnet.py --quick             # a few minutes on 2 CPU cores
    python scripts/bench_convnet.py --test 2000          # the whole test part (long)
    python scripts/bench_convnet.py --cycles-only        # only 2 (weight memory), 4 and 5 (cycles)

Prints

1. the ANN accuracy (whole 2 000-image test part and the simulated subset);
2. weight memory per layer in bits (weight words × P × weight_bits of the EngineConfig) for 28×28 and 56×56
   inputs — it depends on the kernels, not the image — against an unrolled dense weight matrix;
3. SNN accuracy on the first ``--test`` test images (integer golden model, 8-bit weights) per coding and
   normalisation: IF rate coding (reset by subtraction) with model-based, data-based (Diehl 2015), 99.99th
   percentile (Rueckauer 2017) and Spike-Norm (Sengupta 2019) normalisation after T steps; weighted spikes
   (Kim 2018, K = 4) with model, data and percentile normalisation after 2/4/8 periods; FS-neurons (Stöckl & Maass
   2021) with α = maximum or 99.99th percentile for several K; and for every entry the spiking ACs per image over
   the ANN's MACs of one inference (Sengupta: 1.975 for VGG-16, 2.4 for ResNet-34);
4. RTL cycles vs ACs/P per conv/pool layer from the golden cycle model (equal to the RTL's: cosim/tests/
   test_convnet.py) for P = 4, 8, 12, 16: ``(cycles − fixed)·P/ACs`` (fixed = the spike-independent W_l + Q_l·G_l +
   C_LAYER per step) and ``cycles·P/ACs``; target ≤ 1.25 for the conv layers;
5. the same ratios from the hardware counters of a Verilator run of the rate-coded network (``--rtl-images``
   images; skipped with a note when no Verilator is found).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden.conversion.convert import convert  # noqa: E402
from golden.conversion.fs_convert import fs_convert  # noqa: E402
from golden.conversion.spikenorm import spike_norm_convert  # noqa: E402
from golden.core import cycle_model  # noqa: E402
from golden.core.counters import COUNTER_NAMES  # noqa: E402
from golden.core.macs import ann_macs  # noqa: E402
from golden.core.network import Conv2dLayer, IntegerNetwork, NeuronParams  # noqa: E402
from golden.data.mnist import default_split  # noqa: E402
from golden.simulation.counting import counters_from_spikes  # noqa: E402
from golden.simulation.encoding import rate_encode, weighted_encode  # noqa: E402
from golden.simulation.simulate import IntegerSimulator, accuracy_and_spikes_curve  # noqa: E402
from golden.training.ann_trainer import DEFAULT_CONV_RECIPE, default_convnet, evaluate  # noqa: E402
from hw.config import EngineConfig  # noqa: E402

LANES = 16
WS_PHASES = 4


def weight_memory(net: IntegerNetwork, lanes: int) -> list[tuple[str, int, int, int]]:
    """``(layer, weight words, bits, unrolled bits)`` per layer: bits = words × P × weight_bits of the engine;
    unrolled = n_in · n_out · weight_bits (a dense weight matrix of the same layer)."""
    config = EngineConfig.for_network(net, lanes=lanes)
    out = []
    for l, layer in enumerate(net.layers, start=1):
        words = config.weight_words(l)
        out.append((f"{l} {layer.kind}", words, words * lanes * config.weight_bits,
                    layer.n_in * layer.n_out * net.weight_bits))
    return out


def resized(net: IntegerNetwork, size: int) -> IntegerNetwork:
    """The same conv/pool weights on a ``size``×``size`` input (the dense head resized, zero weights)."""
    from golden.core.network import AvgPool2dLayer, DenseLayer

    layers, shape = [], (net.input_shape[0], size, size)
    for layer in net.layers:
        if isinstance(layer, Conv2dLayer):
            layers.append(Conv2dLayer(layer.weight, layer.bias, layer.threshold, in_shape=shape, stride=layer.stride,
                                      padding=layer.padding, neuron=layer.neuron))
        elif isinstance(layer, AvgPool2dLayer):
            layers.append(AvgPool2dLayer(layer.weight, layer.threshold, in_shape=shape, kernel=layer.kernel,
                                         stride=layer.stride, neuron=layer.neuron))
        else:
            n_in = int(np.prod(shape))
            layers.append(DenseLayer(np.zeros((layer.n_out, n_in), dtype=np.int64), layer.bias, layer.threshold,
                                     neuron=layer.neuron))
        if not isinstance(layers[-1], DenseLayer):
            shape = layers[-1].out_shape
    return IntegerNetwork((net.input_shape[0], size, size), layers, weight_bits=net.weight_bits,
                          membrane_bits=net.membrane_bits).validate()


def conv_ratios(net: IntegerNetwork, counters: np.ndarray, lanes: int) -> list[tuple[int, str, float, float]]:
    """Per conv/pool layer ``(l, kind, (cycles − fixed)·P/ACs, cycles·P/ACs)`` from counters ``[N, T, L, 9]``
    (fixed = W_l + Q_l·G_l + C_LAYER for every active (image, step))."""
    plans = cycle_model.network_plans(net, lanes)
    k = {name: i for i, name in enumerate(COUNTER_NAMES)}
    out = []
    for l, (layer, plan) in enumerate(zip(net.layers, plans)):
        if layer.kind == "dense":
            continue
        cycles = int(counters[..., l, k["cycles"]].sum())
        acs = int(counters[..., l, k["acs"]].sum()) + int(counters[..., l, k["macs"]].sum())
        active = int(counters[..., l, k["state_reads"]].sum()) // plan.state_words
        fixed = active * (plan.words + plan.state_words + cycle_model.C_LAYER)
        out.append((l + 1, layer.kind, (cycles - fixed) * lanes / max(acs, 1), cycles * lanes / max(acs, 1)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", type=int, default=500, help="test images simulated (default 500)")
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 50, 100], help="rate-coding T values")
    parser.add_argument("--ws-periods", type=int, nargs="+", default=[2, 4, 8], help="weighted-spike periods (K=4)")
    parser.add_argument("--fs-phases", type=int, nargs="+", default=[4, 6, 8], help="FS K values")
    parser.add_argument("--calibration", type=int, default=256, help="Spike-Norm calibration images (paper: 256)")
    parser.add_argument("--calibration-steps", type=int, default=100, help="Spike-Norm steps per layer")
    parser.add_argument("--cycle-images", type=int, default=20, help="images of the cycle-model ratios")
    parser.add_argument("--rtl-images", type=int, default=3, help="images of the Verilator run (0: none)")
    parser.add_argument("--rtl-steps", type=int, default=50, help="steps of the Verilator run")
    parser.add_argument("--seed", type=int, default=1, help="encoder seed of the test spikes")
    parser.add_argument("--quick", action="store_true",
                        help="short run: 100 test images, T 25/50, 2/4 periods, K 4/6, Spike-Norm 32 images x 50 "
                             "steps, 10 cycle images, 2 RTL images of 25 steps")
    parser.add_argument("--cycles-only", action="store_true",
                        help="only the weight memory (2) and the cycle ratios (4, 5): no accuracy sweeps")
    args = parser.parse_args()
    if args.quick:
        args.test, args.steps, args.ws_periods, args.fs_phases = 100, [25, 50], [2, 4], [4, 6]
        args.calibration, args.calibration_steps, args.cycle_images = 32, 50, 10
        args.rtl_images, args.rtl_steps = min(args.rtl_images, 2), 25
    torch.set_num_threads(2)
    start = time.time()
    split = default_split()
    model = default_convnet(recipe=DEFAULT_CONV_RECIPE)
    n = args.test
    if not args.cycles_only:
        ann = evaluate(model, split.test_images[:, None], split.test_labels)
        ann_sub = evaluate(model, split.test_images[:n, None], split.test_labels[:n])
    labels = np.asarray(split.test_labels[:n])
    pixels = torch.as_tensor(np.asarray(split.test_images[:n]))
    flat = pixels.reshape(n, -1)
    calibration = split.train_images[:, None]
    print(f"ConvNet 28x28-12c5-2s-64c5-2s-10 (recipe {DEFAULT_CONV_RECIPE.key()}, {DEFAULT_CONV_RECIPE.epochs} "
          f"epochs on the {len(split.train_labels)}-image train part, {'trained now' if model.trained_now else 'cached'})")
    if not args.cycles_only:
        print(f"1. ANN accuracy: {100 * ann:.2f} % on the {len(split.test_labels)}-image test part, "
              f"{100 * ann_sub:.2f} % on the first {n} (the SNN subset below)")

    data = convert(model, calibration, method="data", neuron=NeuronParams("if", "subtract"))
    macs = ann_macs(data.integer)

    # ---------------------------------------------------------------------------------------------- 2. memory
    print(f"\n2. weight memory per layer (P = {LANES}, {data.integer.weight_bits}-bit weights): engine words x P x "
          f"weight_bits; 'unrolled' = n_in x n_out x weight_bits")
    big = resized(data.integer, 56)
    print(f"   {'layer':<12} {'28x28: words':>13} {'bits':>10} {'unrolled bits':>14}   {'56x56: words':>13} "
          f"{'bits':>10} {'unrolled bits':>14}")
    for (name, words, bits, unrolled), (_, w2, b2, u2) in zip(weight_memory(data.integer, LANES),
                                                              weight_memory(big, LANES)):
        print(f"   {name:<12} {words:>13,} {bits:>10,} {unrolled:>14,}   {w2:>13,} {b2:>10,} {u2:>14,}")

    # ---------------------------------------------------------------------------------------------- 3. accuracy
    steps = sorted(set(args.steps))
    periods = sorted(set(args.ws_periods))
    ws_steps = [WS_PHASES * p for p in periods]
    spikes = rate_encode(flat, steps[-1], seed=args.seed)
    fs_nets = {}
    if args.cycles_only:
        k_fs = args.fs_phases[-1]
        fs_nets[("alpha = 99.99th pct", k_fs)] = fs_convert(model, split.train_images[:2000, None], phases=k_fs,
                                                            percentile=99.99)
    else:
        accuracy_sweeps(args, model, split, calibration, data, flat, pixels, labels, ann_sub, macs, spikes, steps,
                        periods, ws_steps, fs_nets)
    cycle_sections(args, model, calibration, data, flat, pixels, spikes, steps, ws_steps, fs_nets, n)
    print(f"\n(Diehl 2015 ConvNet on full MNIST: ANN 99.14 %, SNN 99.10 % data-based; Kim 2018: 99.2 -> 99.2 %; "
          f"Sengupta 2019 ACs/MACs: 1.975 VGG-16, 2.4 ResNet-34)\ntotal {time.time() - start:.0f} s")


def accuracy_sweeps(args, model, split, calibration, data, flat, pixels, labels, ann_sub, macs, spikes, steps,
                    periods, ws_steps, fs_nets) -> None:
    """Section 3: SNN accuracy and ACs/MACs per coding and normalisation (fills ``fs_nets``)."""
    n = len(labels)
    print(f"\n3. SNN accuracy (%) on the first {n} test images and [spiking ACs per image / ANN MACs = {macs:,}]")
    t0 = time.time()
    rate = {"model": convert(model, None, method="model", neuron=NeuronParams("if", "subtract"),
                             input_shape=(1, 28, 28)),
            "data": data,
            "percentile": convert(model, calibration, method="percentile", neuron=NeuronParams("if", "subtract")),
            "Spike-Norm": spike_norm_convert(model, split.train_images[:args.calibration, None],
                                             steps=args.calibration_steps, seed=0,
                                             neuron=NeuronParams("if", "subtract"))}
    print(f"   (rate conversions {time.time() - t0:.0f} s; Spike-Norm on {args.calibration} images x "
          f"{args.calibration_steps} steps)")
    print("   IF rate coding, reset subtract   " + "".join(f"{'T=' + str(t):>18}" for t in steps))
    print(f"   {'ANN':<33}" + "".join(f"{100 * ann_sub:>18.2f}" for _ in steps))
    for name, result in rate.items():
        t0 = time.time()
        curve = accuracy_and_spikes_curve(IntegerSimulator(result.integer), spikes, labels, steps)
        print(f"   {name:<33}" + "".join(f"{100 * curve[t].accuracy:>9.2f} [{curve[t].acs / macs:5.2f}]"
                                          for t in steps) + f"   ({time.time() - t0:.0f} s)")
    print(f"   weighted spikes K={WS_PHASES}, S=0          " + "".join(f"{f'{p} per. T={t}':>18}"
                                                                  for p, t in zip(periods, ws_steps)))
    for method in ("model", "data", "percentile"):
        t0 = time.time()
        result = convert(model, None if method == "model" else calibration, method=method,
                         input_coding="weighted", phases=WS_PHASES, input_shape=(1, 28, 28))
        ws_spikes = weighted_encode(result.input_codes(flat), ws_steps[-1], WS_PHASES)
        curve = accuracy_and_spikes_curve(IntegerSimulator(result.integer), ws_spikes, labels, ws_steps)
        print(f"   {method:<33}" + "".join(f"{100 * curve[t].accuracy:>9.2f} [{curve[t].acs / macs:5.2f}]"
                                            for t in ws_steps) + f"   ({time.time() - t0:.0f} s)")
    print("   FS-neurons (latency L·K = 5K steps)" + "".join(f"{'K=' + str(k):>18}" for k in args.fs_phases))
    for label, percentile in (("alpha = max", None), ("alpha = 99.99th pct", 99.99)):
        t0 = time.time()
        cells = []
        for k in args.fs_phases:
            result = fs_convert(model, split.train_images[:2000, None], phases=k, percentile=percentile)
            fs_nets[(label, k)] = result
            trace = IntegerSimulator(result.integer).run(result.input_spikes(pixels), lanes=LANES)
            acs = (trace.counter("acs").sum() + trace.counter("macs").sum()) / n
            cells.append(f"{100 * (trace.predictions == labels).mean():>9.2f} [{acs / macs:5.2f}]")
        print(f"   {label:<33}" + "".join(cells) + f"   ({time.time() - t0:.0f} s)")



def cycle_sections(args, model, calibration, data, flat, pixels, spikes, steps, ws_steps, fs_nets, n) -> None:
    """Sections 4 and 5: cycles vs ACs/P from the cycle model and from a Verilator run."""
    # ---------------------------------------------------------------------------------------------- 4. cycles
    m = min(args.cycle_images, n)
    print(f"\n4. RTL cycles vs ACs/P per conv/pool layer (golden cycle model = RTL; first {m} test images)")
    print("   ratio A = (cycles - fixed)·P/ACs (fixed: W_l + Q_l·G_l + C_LAYER per step), B = cycles·P/ACs; "
          "target A ≤ 1.25 for conv layers")
    rate_trace = IntegerSimulator(data.integer).run(spikes[:, :m], lanes=LANES)
    inputs = spikes[:, :m].permute(1, 0, 2)
    sat = rate_trace.counter("saturations")
    for lanes in (4, 8, 12, 16):
        counters = counters_from_spikes(data.integer, inputs, rate_trace.spikes, sat, lanes).numpy()
        print(f"   rate data T={steps[-1]}, P={lanes:<2}: " + "; ".join(
            f"layer {l} {kind} A={a:.3f} B={b:.3f}" for l, kind, a, b in conv_ratios(data.integer, counters, lanes)))
    ws_result = convert(model, calibration, input_coding="weighted", phases=WS_PHASES)
    ws_trace = IntegerSimulator(ws_result.integer).run(
        weighted_encode(ws_result.input_codes(flat[:m]), ws_steps[-1], WS_PHASES), lanes=LANES)
    print(f"   WS data T={ws_steps[-1]},  P={LANES}: " + "; ".join(
        f"layer {l} {kind} A={a:.3f} B={b:.3f}" for l, kind, a, b in conv_ratios(ws_result.integer, ws_trace.counters,
                                                                              LANES)))
    k_fs = args.fs_phases[-1]
    fs_result = fs_nets[("alpha = 99.99th pct", k_fs)]
    fs_trace = IntegerSimulator(fs_result.integer).run(fs_result.input_spikes(pixels[:m]), lanes=LANES)
    print(f"   FS K={k_fs},      P={LANES}: " + "; ".join(
        f"layer {l} {kind} A={a:.3f} B={b:.3f}" for l, kind, a, b in conv_ratios(fs_result.integer, fs_trace.counters,
                                                                              LANES)))
    stream = cycle_model.fs_stream_cycles(fs_trace.counter("cycles"), k_fs)
    print(f"   FS K={k_fs} stream of {m} images: {stream.total_cycles:,} cycles ({stream.total_cycles / m:,.0f} per "
          f"image; one image per {2 * k_fs} steps)")
    print("   (pool layers are word-parallel: one cycle per (non-empty source word, reached window) adds the masked "
          "pool weight in all P lanes; A = R_w·P/R)")

    # ---------------------------------------------------------------------------------------------- 5. RTL
    if args.rtl_images > 0:
        print(f"\n5. Verilator run: rate data, P={LANES}, {args.rtl_images} images x T={args.rtl_steps}")
        try:
            from cosim.session import check_equivalence, cosimulate, golden_reference
            from cosim.toolchain import ensure_verilator

            ensure_verilator()
        except Exception as exc:  # noqa: BLE001 - the benchmark reports and goes on without the RTL
            print(f"   skipped: {exc}")
        else:
            rtl_spikes = spikes[:args.rtl_steps, :args.rtl_images].numpy()  # time-major [T, N, n_0]
            config = EngineConfig.for_network(data.integer, lanes=LANES)
            t0 = time.time()
            rtl = cosimulate(data.integer, rtl_spikes, config=config)
            golden = golden_reference(data.integer, rtl_spikes, lanes=LANES)
            comparison = check_equivalence(golden, rtl.trace)
            print(f"   {rtl.summary()}; {time.time() - t0:.0f} s")
            print(f"   {comparison.summary()}")
            print("   hardware counters: " + "; ".join(
                f"layer {l} {kind} A={a:.3f} B={b:.3f}"
                for l, kind, a, b in conv_ratios(data.integer, rtl.trace.counters, LANES)))
            np.testing.assert_array_equal(rtl.hardware_totals, rtl.trace.counters.sum(axis=(1, 2)))


if __name__ == "__main__":
    main()

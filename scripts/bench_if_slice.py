#!/usr/bin/env python3
"""Benchmark of the rate-coded IF slice (issue 2). Prints the three target figures in one run:

1. SNN accuracy vs the ANN on the embedded MNIST test part for T ≤ 100 (target: within 1 pp), per reset mode
   and normalisation;
2. RTL cycles per inference against the bound 1.25 · ACs / P + the cycle model's fixed per-step overhead, as a
   ratio;
3. co-simulation speed: simulated cycles/s and images/s on the MNIST network (aim: ≥ 1 M cycles/s).

Usage: python scripts/bench_if_slice.py [--rtl-images 10] [--steps 100] [--lanes 8] [--no-rtl]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden.conversion import convert  # noqa: E402
from golden.core.cycle_model import fixed_overhead  # noqa: E402
from golden.core.network import NeuronParams  # noqa: E402
from golden.data import mnist as data  # noqa: E402
from golden.simulation.encoding import rate_encode  # noqa: E402
from golden.simulation.simulate import IntegerSimulator, accuracy_curve  # noqa: E402
from golden.training import ann_trainer as train  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lanes", type=int, default=8)
    parser.add_argument("--rtl-images", type=int, default=10)
    parser.add_argument("--no-rtl", action="store_true")
    parser.add_argument("--test-images", type=int, default=None)
    args = parser.parse_args()

    split = data.default_split()
    images = split.test_images if args.test_images is None else split.test_images[:args.test_images]
    labels = np.asarray(split.test_labels[:len(images)])
    model = train.default_mlp(progress=False)
    ann = train.evaluate(model, images, labels)
    codes = torch.as_tensor(np.asarray(images)).reshape(len(images), -1)
    spikes = rate_encode(codes, args.steps, max_rate=1.0, seed=0)
    checkpoints = [t for t in (10, 20, 32, 50, 64, 75, 100, 150, 200) if t <= args.steps]

    print(f"\n1. accuracy on the embedded MNIST test part ({len(images)} images), ANN = {100 * ann:.2f} %")
    print(f"   {'normalisation / reset':<28}" + "".join(f"{f'T={t}':>9}" for t in checkpoints) + "   best T within 1 pp")
    networks = {}
    for norm in ("data", "percentile", "model"):
        for reset in ("subtract", "zero"):
            net = convert.convert(model, split.train_images[:2000], method=norm,
                                  neuron=NeuronParams("if", reset)).integer
            networks[(norm, reset)] = net
            curve = accuracy_curve(IntegerSimulator(net), spikes, labels, checkpoints)
            within = [t for t in checkpoints if curve[t] >= ann - 0.01]
            print(f"   {norm + ' / ' + reset:<28}" + "".join(f"{100 * curve[t]:>8.2f}%" for t in checkpoints)
                  + f"   {within[0] if within else '—':>6}")

    net = networks[("data", "subtract")]
    trace = IntegerSimulator(net).run(spikes[:, :200], lanes=args.lanes)
    totals = trace.totals()
    fixed = fixed_overhead(net.layer_sizes, args.lanes, trace.n_steps, trace.n_images)
    bound = 1.25 * totals["acs"] / args.lanes + fixed
    print(f"\n2. RTL cycles (cycle model, data/subtract, P={args.lanes}, T={args.steps}, 200 images)")
    print(f"   cycles per image            {totals['cycles'] / trace.n_images:>14,.0f}")
    print(f"   ACs / P per image           {totals['acs'] / args.lanes / trace.n_images:>14,.0f}")
    print(f"   fixed overhead per image    {fixed / trace.n_images:>14,.0f}")
    print(f"   (cycles - fixed) / (ACs/P)  {(totals['cycles'] - fixed) / (totals['acs'] / args.lanes):>14.3f}"
          f"   (target ≤ 1.25)")
    print(f"   cycles / bound              {totals['cycles'] / bound:>14.3f}   (target ≤ 1.00)")

    if not args.no_rtl:
        from cosim.session import cosimulate
        from golden.core.trace import compare

        n = args.rtl_images
        sub = spikes[:, :n]
        golden = IntegerSimulator(net).run(sub, lanes=args.lanes, record_membranes=True)
        t0 = time.perf_counter()
        run = cosimulate(net, sub, lanes=args.lanes, work_dir=Path("runs/bench_if"))
        wall = time.perf_counter() - t0
        verdict = compare(golden, run.trace)
        print(f"\n3. co-simulation, {n} images x T={args.steps} on {' -> '.join(map(str, net.layer_sizes))}")
        print(f"   build (cached if unchanged) {run.build_seconds:>14.1f} s")
        print(f"   simulated cycles            {run.simulated_cycles:>14,}")
        print(f"   simulated cycles / s        {run.cycles_per_second:>14,.0f}   (aim ≥ 1,000,000)")
        print(f"   images / s                  {run.images_per_second:>14.2f}")
        print(f"   wall time incl. build       {wall:>14.1f} s")
        print(f"   {verdict.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

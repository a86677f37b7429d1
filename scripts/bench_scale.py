#!/usr/bin/env python3
"""Co-simulation at scale (issue 14): whole test sets through the RTL, bit- and cycle-exact.

Prints, on the project's MNIST MLP (784-256-10, rate coding, T = 64, P = 8, seed 0):

1. ``--images`` images (default: all 10,000 of the embedded MNIST set) through the RTL on ``--jobs`` simulator
   processes in digest mode (cosim/shards.py), every image checked against the golden model: wall time, images/s;
2. images/s for 1 and 2 jobs, digest vs full-trace mode, interleaved over ``--rounds`` rounds on
   ``--sample`` images (medians), and the raw simulator (the same harness and C++ main without cocotb, no trace
   lines: ``+snn_digest_only``) on the same images as the limit;
3. ``--verilator-options``: the same sample under Verilator option variants (each a separate build);
5. ``--clocks``: where the clock lives, on the same sample: the C++ main's clock (cosim/hdl/clock_main.cpp, the
   default), the harness's Verilog clock (``--timing``), cocotb's GPI clock (``Clock(impl="gpi")``, no
   ``--timing``) and both raw binaries;
4. time per image as the hidden layer grows (``--hidden``, default 128,256,512; 1200-1200 with ``--big``) and as T
   grows (``--steps-list``, default 32,64,128), golden and RTL, on random integer networks of the MLP's shape.

The machine is shared (2 cores, other work running): every comparison is interleaved and repeated; the figures
say what this machine gave at the time, nothing more.

Usage: python scripts/bench_scale.py [--images 10000] [--jobs 2] [--sample 200] [--rounds 3] [--skip-whole]
       [--verilator-options] [--clocks] [--big] [--skip-sizes]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cosim import harness, runner, session  # noqa: E402
from cosim.app.job import convert_for_coding, load_data  # noqa: E402
from cosim.app.options import JobOptions  # noqa: E402
from cosim.shards import cosimulate_sharded, default_jobs  # noqa: E402
from golden.core.network import DenseLayer, IntegerNetwork, NeuronParams  # noqa: E402
from golden.data import mnist  # noqa: E402
from golden.simulation.encoding import rate_encode  # noqa: E402
from golden.simulation.simulate import IntegerSimulator  # noqa: E402
from golden.training import ann_trainer  # noqa: E402
from hw.config import EngineConfig  # noqa: E402

LANES = 8


def mnist_case(steps: int | None = None, coding: str = "rate"):
    """The default MLP converted as ``snncosim run --coding CODING`` converts it (default options, seed 0; ``steps``:
    the coding's default when None), the embedded 10,000 MNIST images, and an encoder ``images(start, stop)``
    (per-image seeds: any batch gives the same spikes)."""
    options = JobOptions(coding=coding, **({} if steps is None else {"steps": steps}))
    options.validate()
    data = load_data(options)
    network, encode_codes = convert_for_coding(ann_trainer.default_mlp(progress=False), data.calibration_images,
                                               options)
    images, labels = mnist.embedded_mnist()
    codes = images.reshape(len(images), -1)

    def encode(start: int, stop: int):
        return encode_codes(codes[start:stop], start)
    return network, encode, labels.numpy()


def golden_of(network: IntegerNetwork):
    simulator = IntegerSimulator(network)

    def golden(spikes):
        return simulator.run(torch.as_tensor(spikes), lanes=LANES, record_membranes=True)
    return golden


def sharded(network, encode, n, engine, jobs, full, work):
    t0 = time.perf_counter()
    run = cosimulate_sharded(network, encode, n, engine=engine, jobs=jobs, full_trace=full, work_dir=work,
                             golden=golden_of(network))
    wall = time.perf_counter() - t0
    if not run.equivalent:
        raise SystemExit(f"MISMATCH: {run.first_difference}")
    return run, wall


# ----------------------------------------------------------------------------------------------- raw simulator
def raw_binary(engine, work: Path, extra: list[str]) -> Path:
    """The engine's harness without cocotb, built once into ``work``: for the default "cpp" clock, the
    co-simulation's own main (cosim/hdl/clock_main.cpp) compiled with nothing on VPI (``SNNCOSIM_WITHOUT_COCOTB``);
    for the harness's Verilog clock, ``verilator --binary --timing``. Either is the limit its co-simulation can
    approach."""
    info = runner.ensure_verilator(build_tools=True)
    common = ["-Wno-fatal", "-Wno-lint", "-Wno-style", *runner.OPT_FLAGS, "--top-module", "tb_top", "-j", "2",
              *extra]
    if engine.clock == "cpp":
        out, name = work / "raw-cpp", "Vtop"
        cmd = [info.path, "--cc", "--exe", "--build", "--vpi", "--prefix", "Vtop", "-CFLAGS",
               "-DSNNCOSIM_WITHOUT_COCOTB", *common, str(harness.clock_main_path())]
    elif engine.clock == "verilog":
        out, name = work / "raw-timing", "Vtb_top"
        cmd = [info.path, "--binary", "--timing", *common]
    else:
        raise ValueError(f"no raw binary for the {engine.clock!r} clock")
    if (out / name).is_file():
        return out / name
    cmd += ["-Mdir", str(out), *[str(s) for s in engine.sources], "-MAKEFLAGS", " ".join(runner._MAKE_ARGS)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out / name


def run_raw(binary: Path, network, config, engine, spikes, work: Path) -> float:
    plan = session.plan_run(network, config, session._as_input_spikes(spikes, network.n_inputs))
    files = session.write_job_files(work, network, config, engine, plan)
    t0 = time.perf_counter()
    subprocess.run([str(binary), f"+snn_cfg={files.config}", f"+snn_stim={files.stimulus}",
                    f"+snn_trace={files.trace}", "+snn_digest_only", "+snn_finish"], check=True, cwd=work,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------- random networks
def random_mlp(sizes, steps_hint: int, seed: int = 0) -> IntegerNetwork:
    """A dense IF-subtract network of ``sizes`` with random 8-bit weights, thresholds scaled to fan-in so that
    hidden layers spike at moderate rates (a stand-in for trained networks of other sizes)."""
    rng = np.random.default_rng(seed)
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        weight = rng.integers(-40, 60, (n_out, n_in))
        threshold = np.full(n_out, max(8, int(n_in * 2.5)))
        layers.append(DenseLayer(weight=weight.astype(np.int64), bias=np.zeros(n_out, dtype=np.int64),
                                 threshold=threshold.astype(np.int64), neuron=NeuronParams("if", "subtract"),
                                 name=f"fc{k + 1}"))
    return IntegerNetwork(input_shape=(sizes[0],), layers=layers, weight_bits=8, membrane_bits=24).validate()


def per_image(network, steps, n_images, jobs, work):
    codes = mnist.embedded_mnist()[0][:n_images].reshape(n_images, -1)
    spikes = rate_encode(codes, steps, max_rate=1.0, seed=0)
    golden = IntegerSimulator(network)
    t0 = time.perf_counter()
    golden.run(spikes, lanes=LANES)
    golden_s = (time.perf_counter() - t0) / n_images
    t0 = time.perf_counter()
    engine = session.prepare_engine(EngineConfig.for_network(network, lanes=LANES))
    prep = time.perf_counter() - t0
    run, wall = sharded(network, lambda a, b: spikes[:, a:b], n_images, engine, jobs, False, work)
    return golden_s, wall / n_images, float(run.image_cycles.mean()), prep


def median(values):
    return statistics.median(values)


def interleaved(names, rounds: int, run_one) -> dict[str, list[float]]:
    """Seconds of ``run_one(name, round)`` for every name, the names interleaved within each round."""
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names:
            times[name].append(run_one(name, r))
    return times


def print_rates(times: dict[str, list[float]], n: int, base: str, width: int, against: str = "") -> None:
    """One line per contender: images/s, median seconds, speed relative to ``base``, every round's seconds."""
    reference = median(times[base])
    for name, values in times.items():
        m = median(values)
        print(f"   {name:<{width}}{n / m:8.2f} images/s  {m:7.2f} s  x{reference / m:5.2f}{against}   "
              f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000, help="images of the whole-set run (default 10,000)")
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--sample", type=int, default=200, help="images per round of the interleaved comparison")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-whole", action="store_true", help="skip the whole-set run")
    parser.add_argument("--skip-modes", action="store_true", help="skip the interleaved jobs/mode comparison")
    parser.add_argument("--verilator-options", action="store_true", help="measure Verilator option variants")
    parser.add_argument("--clocks", action="store_true",
                        help="measure where the clock lives: C++ main, harness (--timing), cocotb GPI, raw binaries")
    parser.add_argument("--skip-sizes", action="store_true", help="skip the hidden-size and T scaling")
    parser.add_argument("--hidden", default="128,256,512")
    parser.add_argument("--big", action="store_true", help="add the 1200-1200 hidden layers (slow to generate)")
    parser.add_argument("--steps-list", default="32,64,128")
    parser.add_argument("--size-images", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    print(f"machine: {os.cpu_count()} cores, shared with other work; jobs available {default_jobs()}; work {work}")

    network, encode, labels = mnist_case(args.steps)
    config = EngineConfig.for_network(network, lanes=LANES)
    t0 = time.perf_counter()
    engine = session.prepare_engine(config)
    print(f"engine 784-256-10 P={LANES}: Verilog + build {time.perf_counter() - t0:.1f} s "
          f"({'cached' if engine.handle.cached else 'built'})")

    if not args.skip_whole:
        run, wall = sharded(network, encode, args.images, engine, args.jobs, False, work / "whole")
        acc = float((run.predictions == labels[:args.images]).mean())
        print(f"\n1. {args.images} MNIST images, rate T={args.steps}, {args.jobs} jobs, digest mode: EQUIVALENT "
              f"(every image's digest equal to the golden model's) in {wall:.1f} s = {wall / 60:.2f} min, "
              f"{args.images / wall:.2f} images/s, {run.simulated_cycles / wall / 1e6:.2f} M simulated cycles/s "
              f"(all jobs), simulators {run.sim_seconds:.0f} s and golden {run.golden_seconds:.0f} s summed over "
              f"chunks; peak RSS snncosim {run.peak_rss_bytes / 2**20:.0f} MB, largest simulator "
              f"{run.peak_child_rss_bytes / 2**20:.0f} MB; RTL accuracy {100 * acc:.2f} % (8,000 of these images "
              f"trained the MLP)")

    if not args.skip_modes:
        n = args.sample
        contenders = {"digest, 1 job": (1, False), "digest, 2 jobs": (2, False), "full trace, 1 job": (1, True),
                      "full trace, 2 jobs": (2, True), "raw binary, 1 process": None}
        binary = raw_binary(engine, work, [])
        spikes = np.asarray(encode(0, n))

        def run_mode(name, r):
            spec = contenders[name]
            if spec is None:
                return run_raw(binary, network, config, engine, spikes, work / "rawrun")
            return sharded(network, encode, n, engine, spec[0], spec[1], work / f"mode-{r}")[1]
        times = interleaved(contenders, args.rounds, run_mode)
        print(f"\n2. {n} images per run, {args.rounds} rounds interleaved, medians (golden check included, except "
              f"the raw binary, which checks nothing):")
        print_rates(times, n, "digest, 1 job", 24, " vs digest 1 job")

    if args.verilator_options:
        n = args.sample
        variants = {"default (-O2 C++, -fno-dfg)": [], "with Verilator's DFG pass (-fdfg)": ["-fdfg"],
                    "-O3": ["-O3"], "--x-assign fast --x-initial fast":
                    ["--x-assign", "fast", "--x-initial", "fast"], "--threads 2": ["--threads", "2"],
                    "--output-split 20000": ["--output-split", "20000"]}
        handles = {}
        for name, extra in variants.items():
            t0 = time.perf_counter()
            handle = runner.build(engine.sources, "tb_top", session.default_build_dir(), extra_args=extra)
            handles[name] = (handle, time.perf_counter() - t0)

        def run_variant(name, r):
            variant = session.Engine(config, engine.params, handles[name][0], engine.sources, 0.0)
            return sharded(network, encode, n, variant, 1, False, work / f"opt-{r}")[1]
        times = interleaved(handles, args.rounds, run_variant)
        base = median(times["default (-O2 C++, -fno-dfg)"])
        print(f"\n3. Verilator options, {n} images, 1 job, digest mode, {args.rounds} rounds interleaved (medians):")
        for name, values in times.items():
            m = median(values)
            print(f"   {name:<36}{n / m:8.2f} images/s  x{base / m:5.2f}   build {handles[name][1]:6.1f} s "
                  f"{'(cached)' if handles[name][0].cached else ''}")

    if args.clocks:
        n = args.sample
        t0 = time.perf_counter()
        timing = session.prepare_engine(config, clock="verilog")
        gpi = session.prepare_engine(config, clock="gpi")
        print(f"\n5. where the clock lives, {n} images, 1 job, digest mode, {args.rounds} rounds interleaved "
              f"(medians; --timing and GPI builds {time.perf_counter() - t0:.1f} s):")
        binaries = {"raw: C++ main clock, no cocotb": raw_binary(engine, work, []),
                    "raw: harness clock (--timing), no cocotb": raw_binary(timing, work, [])}
        spikes = np.asarray(encode(0, n))
        contenders = {"C++ main clock (default), cocotb": engine, "harness clock (--timing), cocotb": timing,
                      "cocotb GPI clock (no --timing)": gpi, **dict.fromkeys(binaries)}
        cycles = {}

        def run_clock(name, r):
            if contenders[name] is None:
                return run_raw(binaries[name], network, config, engine, spikes, work / "rawclock")
            run, wall = sharded(network, encode, n, contenders[name], 1, False, work / f"clock-{r}")
            cycles[name] = run.simulated_cycles
            return wall
        print_rates(interleaved(contenders, args.rounds, run_clock), n, "harness clock (--timing), cocotb", 42)
        if len(set(cycles.values())) != 1:
            raise SystemExit(f"the clocks simulated different cycle counts: {cycles}")

    if not args.skip_sizes:
        hidden = [[int(h)] for h in args.hidden.split(",")] + ([[1200, 1200]] if args.big else [])
        print(f"\n4. time per image, random IF networks 784-H-10, {args.size_images} images, {args.jobs} jobs "
              f"(RTL: digest mode, golden check included):")
        print(f"   {'network':<18}{'T':>5}{'golden ms':>12}{'RTL ms':>10}{'cycles':>12}{'RTL/golden':>12}"
              f"{'Verilog+build s':>17}")
        cases = [(h, args.steps) for h in hidden] + [([256], int(t)) for t in args.steps_list.split(",")
                                                    if int(t) != args.steps]
        for h, steps in cases:
            net = random_mlp([784, *h, 10], steps)
            g, r, cycles, prep = per_image(net, steps, args.size_images, args.jobs, work / "size")
            print(f"   {'784-' + '-'.join(map(str, h)) + '-10':<18}{steps:>5}{1e3 * g:12.2f}{1e3 * r:10.1f}"
                  f"{cycles:12,.0f}{r / g:12.0f}{prep:17.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

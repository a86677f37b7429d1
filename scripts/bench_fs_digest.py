#!/usr/bin/env python3
"""FS networks on the RTL at scale (issue 14): digest mode vs full-trace mode on whole FS streams.

The project's MNIST MLP (784-256-10) converted to FS as ``snncosim run --coding fs`` converts it (default options:
K = 8, seed 0, P = 8), the first ``--images`` embedded MNIST images sharded over ``--jobs`` simulator processes
(cosim/shards.py), every image checked against the golden model: per-stream digests (``+snn_digest_only``: P, D and
H lines) vs the full trace (every record and summary beat as text, compared image by image). The two modes are
interleaved over ``--rounds`` rounds; medians and ratios are printed, with the trace text each mode wrote.

The machine may be shared: the figures say what it gave at the time, nothing more.

Usage: python scripts/bench_fs_digest.py [--images 200] [--jobs 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_scale import mnist_case  # noqa: E402  (this folder: the same network and encoder as bench_scale)

from cosim import session  # noqa: E402
from cosim.shards import cosimulate_sharded  # noqa: E402
from golden.simulation.simulate import IntegerSimulator  # noqa: E402
from hw.config import EngineConfig  # noqa: E402

LANES = 8


def trace_bytes(work: Path) -> int:
    return sum(p.stat().st_size for p in work.rglob("trace.txt"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    network, encode, labels = mnist_case(coding="fs")
    simulator = IntegerSimulator(network)

    def golden(spikes):
        return simulator.run(torch.as_tensor(spikes), lanes=LANES, record_membranes=True)

    engine = session.prepare_engine(EngineConfig.for_network(network, lanes=LANES))
    print(f"FS MNIST MLP {network.layer_sizes}, K = {network.phases}, L·K = {network.fs_latency} steps, P = {LANES}; "
          f"{args.images} images, {args.jobs} jobs, {args.rounds} rounds interleaved")
    walls: dict[str, list[float]] = {"digest": [], "full trace": []}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fs-digest-") as tmp:
        for r in range(args.rounds):
            for name in (("digest", "full trace") if r % 2 == 0 else ("full trace", "digest")):
                work = Path(tmp) / f"{name.replace(' ', '-')}-{r}"
                t0 = time.perf_counter()
                run = cosimulate_sharded(network, encode, args.images, engine=engine, jobs=args.jobs,
                                         full_trace=name == "full trace", work_dir=work, golden=golden)
                walls[name].append(time.perf_counter() - t0)
                if not run.equivalent:
                    raise SystemExit(f"MISMATCH ({name}): {run.first_difference}")
                sizes[name] = trace_bytes(work)
                accuracy = float((run.predictions == labels[:args.images]).mean())
                print(f"  round {r + 1} {name:<10}: {walls[name][-1]:6.1f} s, EQUIVALENT, {len(run.streams.bases)} "
                      f"stream(s), RTL accuracy {100 * accuracy:.1f} %, trace text {sizes[name] / 1e3:,.0f} kB")
    base = statistics.median(walls["full trace"])
    for name, values in walls.items():
        median = statistics.median(values)
        print(f"  {name:<10} {args.images / median:7.2f} images/s  {median:6.1f} s  x {base / median:.2f} vs full "
              f"trace  (rounds: {', '.join(f'{v:.1f}' for v in values)}; trace text {sizes[name] / 1e3:,.0f} kB)")


if __name__ == "__main__":
    main()

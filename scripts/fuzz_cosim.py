#!/usr/bin/env python3
"""Long random co-simulation (issue 11): random integer networks on the RTL until the time is up.

Every engine shape of ``cosim.fuzz.SHAPES`` is built once (one Verilator build per configuration, shared by all its
networks); then, round robin over the shapes, each case seed gives a random network and inputs
(``cosim.fuzz.generate``: rate IF/LIF with any reset, leak, floor and WTA strengths, weighted spikes with K phases
and S skipped periods, FS with ReLU or random signed tables), co-simulated on Verilator and compared with the
golden model bit and cycle for cycle (spikes, membranes, the nine counters, image cycles, predictions, hardware
totals). Each case prints its seed; a mismatch or error prints the first difference and keeps the network
(``network/``), the input spikes (``spikes.npy``, time-major ``[T, N, n_0]``), both traces and ``mismatch.txt``
under ``--out``. At the end: networks run, mismatches, builds and the coverage bins (``cosim.fuzz.BINS``, measured
on the RTL traces), also written to ``--out/summary.json``. CI does not run this;
``cosim/tests/test_coverage_random.py`` is the short, directed version.

Usage: python scripts/fuzz_cosim.py --minutes 10 [--seed S] [--shapes dense-fs,conv-res-wta] [--out DIR]
Replay one case: python scripts/fuzz_cosim.py --replay SHAPE:CASE_SEED
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cosim import fuzz  # noqa: E402


def check_case(case, engine, work: Path) -> tuple[str | None, object]:
    """Co-simulate ``case``; ``(None, rtl_run)`` when it equals the golden model, else ``(first difference, run or
    None)`` with the traces and ``mismatch.txt`` saved under ``work``."""
    from cosim.session import check_equivalence, cosimulate

    with fuzz.single_thread():
        golden = fuzz.golden_run(case)
    rtl = cosimulate(case.net, case.spikes, engine=engine, work_dir=work / "rtl")
    comparison = check_equivalence(golden, rtl.trace, work)
    if not comparison.equivalent:
        return comparison.summary(), rtl
    if rtl.problems:
        return f"RTL output problems: {rtl.problems}", rtl
    if not np.array_equal(rtl.trace.predictions, golden.predictions):
        return "predictions differ", rtl
    if rtl.fs is None:
        expected = [golden.counters.sum(axis=(1, 2))]
        got = [rtl.hardware_totals]
    else:
        expected = [golden.counters[b:b + n].sum(axis=(0, 1, 2)) for b, n in zip(rtl.fs.bases, rtl.fs.counts)]
        got = list(rtl.hardware_totals)
    if not all(np.array_equal(e, g) for e, g in zip(expected, got)):
        return f"hardware totals {np.asarray(got).tolist()} != golden {np.asarray(expected).tolist()}", rtl
    return None, rtl


def save_case(case, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    case.net.save(work / "network", force=True)
    np.save(work / "spikes.npy", case.spikes)
    (work / "case.txt").write_text(f"{case.description}\nreplay: python scripts/fuzz_cosim.py --replay "
                                   f"{case.shape}:{case.seed}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="run until this much wall time has passed")
    parser.add_argument("--seed", type=int, default=None, help="run seed (default: from the clock, printed)")
    parser.add_argument("--shapes", default=",".join(fuzz.SHAPES), help="comma-separated cosim.fuzz.SHAPES")
    parser.add_argument("--out", type=Path, default=None, help="failures and summary.json (default runs/fuzz-SEED)")
    parser.add_argument("--build-dir", type=Path, default=None, help="Verilator build cache (default as cosim)")
    parser.add_argument("--replay", default=None, help="SHAPE:CASE_SEED: run that one case and keep its files")
    args = parser.parse_args()

    from cosim.session import prepare_engine

    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    out = args.out or Path("runs") / f"fuzz-{seed}"
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in shapes if s not in fuzz.SHAPES]
    if unknown:
        parser.error(f"unknown shape(s) {unknown}; known: {', '.join(fuzz.SHAPES)}")
    replay = None
    if args.replay:
        shape, _, case_seed = args.replay.partition(":")
        shapes, replay = [shape], int(case_seed)
    what = f"replay of case seed {replay}" if replay is not None else f"seed {seed}, {args.minutes:g} min"
    print(f"fuzz_cosim: {what}, shapes {', '.join(shapes)}, output {out}", flush=True)

    started = time.perf_counter()
    engines, builds = {}, []
    for name in shapes:
        t0 = time.perf_counter()
        engines[name] = prepare_engine(fuzz.engine_config(name), build_dir=args.build_dir)
        builds.append(dict(shape=name, seconds=round(time.perf_counter() - t0, 1),
                           cached=bool(engines[name].handle.cached)))
        print(f"build {name}: {builds[-1]['seconds']} s{' (cached)' if builds[-1]['cached'] else ''}", flush=True)

    deadline = started + 60.0 * args.minutes
    covered: Counter = Counter()
    networks_per_bin: Counter = Counter()
    per_kind: Counter = Counter()
    failures = []
    run = 0
    sim_seconds = 0.0
    index = 0
    while True:
        if replay is None and time.perf_counter() >= deadline:
            break
        shape = shapes[index % len(shapes)]
        case_seed = replay if replay is not None else seed * 1_000_003 + index
        index += 1
        case = fuzz.generate(shape, case_seed)
        work = out / f"{shape}-{case_seed}"
        t0 = time.perf_counter()
        try:
            problem, rtl = check_case(case, engines[shape], work)
        except Exception as error:  # noqa: BLE001 - a crash of the RTL run is a finding, reported like a mismatch
            problem, rtl = f"{type(error).__name__}: {error}", None
            work.mkdir(parents=True, exist_ok=True)
            (work / "error.txt").write_text(traceback.format_exc())
        seconds = time.perf_counter() - t0
        sim_seconds += seconds
        run += 1
        per_kind[(shape, case.family)] += 1
        if problem is None:
            hits = fuzz.measure(case.net, rtl.trace, case.lanes)
            covered.update(hits)
            networks_per_bin.update(set(hits))
            print(f"[{run}] case seed {case_seed}: {case.description}: equivalent, {len(hits)} bins, "
                  f"{seconds:.1f} s", flush=True)
            if replay is None:
                shutil.rmtree(work, ignore_errors=True)
        else:
            save_case(case, work)
            failures.append(dict(shape=shape, case_seed=case_seed, description=case.description,
                                 problem=problem, files=str(work)))
            print(f"[{run}] case seed {case_seed}: {case.description}: FAILED: {problem}\n    saved in {work}",
                  flush=True)
        if replay is not None:
            break

    elapsed = time.perf_counter() - started
    build_text = ", ".join(f"{b['shape']} {b['seconds']} s" + (" cached" if b["cached"] else "") for b in builds)
    print(f"\nseed {seed}: {run} networks in {elapsed / 60:.1f} min ({sim_seconds / max(run, 1):.2f} s each), "
          f"{len(failures)} mismatches, {len(builds)} builds ({build_text})")
    for (shape, family), count in sorted(per_kind.items()):
        print(f"  {shape:<14} {family:<9} {count}")
    for failure in failures:
        print(f"  FAILED {failure['shape']} case seed {failure['case_seed']}: {failure['problem']} "
              f"({failure['files']})")
    hit = sum(1 for name in fuzz.BINS if covered[name])
    print(f"\ncoverage: {hit} of {len(fuzz.BINS)} bins hit (networks = equivalent runs that hit the bin)")
    width = max(len(name) for name in fuzz.BINS)
    print(f"{'bin':<{width}}  {'hits':>9}  {'networks':>8}")
    for name in fuzz.BINS:
        print(f"{name:<{width}}  {covered[name] if covered[name] else 'EMPTY':>9}  {networks_per_bin[name]:>8}")
    out.mkdir(parents=True, exist_ok=True)
    summary = dict(seed=seed, minutes=round(elapsed / 60, 2), networks=run, mismatches=len(failures),
                   failures=failures, builds=builds,
                   per_shape_family={f"{s}/{f}": c for (s, f), c in sorted(per_kind.items())},
                   bins={name: dict(hits=int(covered[name]), networks=int(networks_per_bin[name]))
                         for name in fuzz.BINS})
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"summary: {out / 'summary.json'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

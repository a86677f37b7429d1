"""``snncosim sweep``: golden model + RTL co-simulation over a grid of design points (codings, T, P, widths,
normalisation, networks, data shards) on Dask — a LocalCluster of worker processes by default, ``--scheduler
ADDRESS`` for a real cluster (docs/sweep.md).

Everything the user gave is checked before a worker starts (the grid, the data set, the networks or the model, the
chip models, the output directory): a mistake is one ``snncosim: error:`` line, exit 2, nothing written. The
output directory (``results.csv``, ``results.json``, ``report.html``) is staged and published whole. Exit status:
0 every point ran and agreed, 1 some RTL run disagreed with the golden model, 3 some point failed (and none
disagreed), 2 a user error.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from fractions import Fraction
from pathlib import Path

from golden.core.errors import SnnCosimError
from golden.core.files import check_output_path, staged_output

from .sweep_grid import PARAMETERS, Grid, GridError, check_network_point, parse_grid, point_label

__all__ = ["add_sweep_parser"]


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    keys = "\n".join(f"  {p.name + (' (' + ', '.join(p.aliases) + ')' if p.aliases else ''):<22} {p.help}"
                      for p in PARAMETERS)
    parser = subparsers.add_parser(
        "sweep", help="golden + RTL over a grid of design points on Dask (a local cluster or --scheduler)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the golden model and the RTL co-simulation at every point of a grid, in parallel on Dask,\n"
                    "and write results.csv, results.json and report.html (docs/sweep.md).",
        epilog=f"grid keys:\n{keys}\n\nexit status: 0 every point agrees, 1 an RTL mismatch, 3 a point failed (its "
               f"error and\ntraceback are in the results), 2 a user error (nothing written)")
    grid = parser.add_argument_group("the grid")
    grid.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                      help="an axis of the grid, e.g. --grid coding=rate,weighted --grid T=32,64 (repeatable; the "
                           "points are every combination)")
    grid.add_argument("--grid-file", type=Path, default=None, metavar="GRID.yaml",
                      help="a YAML grid ({T: [32, 64], P: [4, 8]}) or a list of grids whose points are joined")
    grid.add_argument("--shards", type=int, default=1, metavar="N",
                      help="split the test images into N contiguous shards, one task per point and shard "
                           "(default: 1)")
    net = parser.add_argument_group("the network and the data")
    net.add_argument("--model", default=None, metavar="FILE.py:FUNCTION",
                     help="the torch model converted at each point (default: the embedded MNIST MLP); the grid key "
                          "network=A.snn,B.snn runs saved integer networks instead")
    net.add_argument("--weights", type=Path, default=None, help="state_dict for --model")
    net.add_argument("--data", default=None, metavar="DATA",
                     help="'mnist' (embedded, default), a directory of IDX files or CIFAR-10 batches, or an .npz "
                          "with x_train, y_train, x_test, y_test (docs/data.md)")
    net.add_argument("--input-scale", type=_fraction, default=None, metavar="S",
                     help="float value of code 1 of uint8 images (default: 1/255)")
    net.add_argument("--value-range", type=float, default=None, metavar="R",
                     help="float images in [0, R]: quantised to 8-bit codes")
    net.add_argument("--test-images", type=int, default=None, metavar="N",
                     help="test-part images for the golden accuracy at each point (default: all)")
    net.add_argument("--rtl-images", type=int, default=20, metavar="N",
                     help="images of each point (of each shard) co-simulated on the RTL (default: 20)")
    net.add_argument("--no-rtl", action="store_true", help="golden model only (no Verilator)")
    net.add_argument("--chip", action="append", default=None, metavar="CHIP",
                     help="chip energy model, name or YAML file (repeatable; default: every shipped model)")
    net.add_argument("--cache-dir", type=Path, default=None, help="where the default MLP is cached")
    run = parser.add_argument_group("where it runs")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="worker processes of the local cluster, one thread each (default: the cores available)")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="a running Dask scheduler (tcp://host:8786) instead of a local cluster")
    run.add_argument("--build-dir", type=Path, default=None, metavar="DIR",
                     help="Verilator build cache shared by the workers (default: $SNNCOSIM_BUILD_DIR or "
                          ".snncosim/build here; with --scheduler: each worker's own default)")
    run.add_argument("--threads", type=int, default=1, metavar="N", help="torch threads per worker (default: 1)")
    parser.add_argument("--out", type=Path, default=Path("sweeps/latest"),
                        help="sweep directory (default: sweeps/latest)")
    parser.add_argument("--force", action="store_true",
                        help="let --out replace an earlier snncosim output of another kind")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(func=_cmd_sweep)
    return parser


def _fraction(text: str) -> float:
    try:
        return float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number or fraction: {text!r}") from None


def _check_numbers(args: argparse.Namespace) -> None:
    for name, low in (("shards", 1), ("rtl_images", 0), ("threads", 1), ("workers", 1), ("test_images", 1)):
        value = getattr(args, name)
        if value is not None and value < low:
            raise SnnCosimError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    if args.scheduler is not None and args.workers is not None:
        raise SnnCosimError("--workers sizes the local cluster; a --scheduler's cluster has its own workers")


def _cmd_sweep(args: argparse.Namespace) -> int:
    grid = parse_grid(args.grid, args.grid_file)
    _check_numbers(args)
    if grid.uses_networks and (args.model or args.weights):
        raise GridError("--model/--weights and the grid key network exclude each other (a sweep runs saved .snn "
                        "networks or one torch model)")
    if args.weights is not None and args.model is None:
        raise SnnCosimError("--weights belongs to --model (the default MLP has its own)")
    from .sweep_cluster import require_dask

    require_dask()
    check_output_path(args.out, "sweep", force=args.force, option="--out")
    from golden.data.dataset import load_dataset

    data = load_dataset(args.data, scale=args.input_scale, value_range=args.value_range)
    rtl_images = 0 if args.no_rtl else args.rtl_images
    _check_images(data, args.test_images, args.shards, rtl_images)
    if rtl_images and args.scheduler is None:
        from cosim.toolchain import ensure_verilator

        ensure_verilator(build_tools=False)  # the local workers run Verilator (a cluster's workers: at their points)
    from golden.energy.estimate import load_chips

    chips = load_chips(args.chip or None)
    source = _networks(grid, data) if grid.uses_networks else _model(args, data)
    from .sweep_task import Settings, Task

    build_dir = args.build_dir
    if build_dir is None and args.scheduler is None:
        from cosim.session import default_build_dir

        build_dir = default_build_dir()
    settings = Settings(rtl_images=rtl_images, test_images=args.test_images, shards=args.shards,
                        build_dir=None if build_dir is None else str(Path(build_dir).resolve()),
                        chips=tuple(chips), threads=args.threads)
    tasks = [Task(index, point, shard) for index, point in enumerate(grid.points) for shard in range(args.shards)]
    return _run(args, grid, data, source, settings, tasks, [c.name for c in chips])


def _check_images(data, test_images: int | None, shards: int, rtl_images: int) -> None:
    available = len(data.test_images)
    if test_images is not None and test_images > available:
        raise SnnCosimError(f"--test-images {test_images}: the test part of {data.name} holds {available}")
    images = test_images or available
    smallest = images // shards
    if smallest < 1:
        raise SnnCosimError(f"--shards {shards}: more shards than the {images} test images")
    if rtl_images > smallest:
        raise SnnCosimError(f"--rtl-images {rtl_images} is more than the {smallest} test images of "
                            f"{'the smallest shard' if shards > 1 else 'the test part'}")


def _networks(grid: Grid, data):
    """The .snn networks the grid names, read and checked here (a bad one is a user error, not a failed point)."""
    from golden.core.network import IntegerNetwork

    from .sweep_task import NetworkSource

    networks = {}
    for name in grid.values("network"):
        path = Path(name)
        if not (path / "network.yaml").is_file():
            raise GridError(f"--grid network={name}: not an integer-network directory (expected network.yaml "
                            f"inside; make one with snncosim convert)")
        network = IntegerNetwork.load(path)
        data.check_fits(network)
        networks[name] = network
    for point in grid.points:
        problem = check_network_point(point, networks[point["network"]])
        if problem:
            raise GridError(f"the point {point_label(point)} cannot run: {problem}")
    return NetworkSource(networks)


def _model(args: argparse.Namespace, data):
    """The torch model: the user's (loaded here once, so that its mistakes are refused before any worker starts,
    then shipped as text) or the default MLP."""
    from .sweep_task import ModelSource

    if args.model is None:
        if data.n_inputs != 784:
            raise SnnCosimError(f"the default MNIST MLP takes 784 inputs, {data.name} has {data.n_inputs}; give "
                                f"your model with --model FILE.py:FUNCTION")
        from golden.training import ann_trainer

        return ModelSource("default MNIST MLP", model=ann_trainer.default_mlp(args.cache_dir,
                                                                             progress=not args.quiet))
    from .user_model import load_user_model

    load_user_model(args.model, args.weights)
    file_name, _, function = args.model.partition(":")
    path = Path(file_name).resolve()
    return ModelSource(args.model, path=str(path), module_text=path.read_text(), function=function,
                       weights=None if args.weights is None else args.weights.read_bytes())


def _run(args, grid: Grid, data, source, settings, tasks, chip_names: list[str]) -> int:
    from .sweep_cluster import check_workers, default_workers, open_client, run_tasks
    from .sweep_report import write_report
    from .sweep_results import exit_status, write_results

    workers = min(args.workers or default_workers(), len(tasks))
    where = args.scheduler or f"local cluster of {workers} worker processes"
    meta = {"command": "snncosim " + shlex.join(sys.argv[1:]) if sys.argv else "snncosim sweep",
            "data": data.name, "test_images": args.test_images or len(data.test_images),
            "rtl_images": settings.rtl_images, "shards": args.shards, "points": len(grid.points),
            "tasks": len(tasks), "cluster": where, "build_dir": settings.build_dir or "(each worker's default)",
            "grid_keys": list(grid.keys), "swept": list(grid.swept), "grid": [dict(p) for p in grid.points]}
    with staged_output(args.out, "sweep", force=args.force, option="--out") as staging:
        with open_client(args.scheduler, workers) as client:
            environments = check_workers(client, where)
            meta["workers"] = len(environments)
            t0 = time.perf_counter()
            rows = run_tasks(client, tasks, source, data, settings, progress=not args.quiet)
            meta["wall_seconds"] = round(time.perf_counter() - t0, 3)
        write_results(staging, rows, grid.keys, chip_names, meta)
        write_report(staging, rows, grid.swept, chip_names, meta)
    _print_summary(rows, grid, args.out, meta)
    return exit_status(rows)


def _print_summary(rows: list[dict], grid: Grid, out: Path, meta: dict) -> None:
    from .sweep_results import counts

    found = counts(rows)
    for row in rows:
        label = point_label(row.get("params") or {}) or "(defaults)"
        shard = f" shard {row['shard']}" if meta["shards"] > 1 else ""
        if row.get("status") == "ok" or row.get("golden_accuracy") is not None:
            cycles = row.get("cycles_per_image")
            print(f"point {row['point']}{shard} [{label}]: {row.get('verdict')}, golden accuracy "
                  f"{100 * row['golden_accuracy']:.2f} % on {row['test_images']} images, "
                  f"{cycles:,.0f} cycles/image" + (f"; {row['first_difference']}" if row.get("first_difference")
                                                   else ""))
        else:
            print(f"point {row['point']}{shard} [{label}]: {row.get('status')}: {row.get('error')}")
    print(f"{meta['points']} points, {len(rows)} tasks on {meta['cluster']} in {meta['wall_seconds']:.1f} s: "
          f"{found['ok']} ok, {found['mismatch']} mismatch, {found['failed']} failed")
    print(f"wrote {out}/results.csv, {out}/results.json, {out}/report.html")

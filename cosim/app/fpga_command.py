"""``snncosim fpga SOURCE --target ecp5|ice40|xc7``: the network's engine through Yosys (and nextpnr where an open
flow exists), a table of resources, clock and time per image (docs/fpga.md).

SOURCE is a network directory (``NET.snn``) or the run directory of ``snncosim run``/``cosim`` (it holds
``network.snn``; its ``summary.json`` gives the lanes and the cycles per image). The flow's folder (default:
``RUN/fpga-TARGET`` for a run directory, ``NET.fpga-TARGET`` beside a network) is staged: whole, or absent — or,
when a tool fails, published marked incomplete so its logs can be read. Its ``fpga.json`` holds every figure; a
run directory also gets ``fpga.json`` at its top (read by report.html, re-written when the run has one).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from golden.core.errors import SnnCosimError
from golden.core.files import check_output_path, check_writable_file, staged_output, write_text_atomic

__all__ = ["add_fpga_parser", "fpga_figures", "figures_table"]

DEFAULT_IMAGES = 100


def add_fpga_parser(subparsers) -> argparse.ArgumentParser:
    from hw.fpga.devices import DEVICES, TARGETS

    parser = subparsers.add_parser(
        "fpga", help="synthesise (and place and route) the network's engine for an FPGA: resources, clock, "
                     "time per image",
        description="Writes the engine's Verilog, synthesises it with Yosys (synth_ecp5 / synth_ice40 / "
                    "synth_xilinx), places and routes it with nextpnr for ECP5 and iCE40 and prints LUTs, FFs, "
                    "block RAMs, DSPs (with the device's share), the maximum clock, the critical path and the time "
                    "per image at that clock. Needs: pip install 'snncosim[fpga]'.")
    parser.add_argument("source", metavar="SOURCE", help="a network directory (NET.snn) or a run directory of "
                                                         "snncosim run / cosim")
    parser.add_argument("--target", required=True, choices=TARGETS, help="FPGA family (xc7: synthesis only)")
    parser.add_argument("--device", help="device of the family: " + "; ".join(
        f"{t}: " + ", ".join(n for n, d in DEVICES.items() if d.target == t) for t in TARGETS)
        + " (default: LFE5U-85F, iCE40HX8K, XC7A100T)")
    parser.add_argument("-P", "--lanes", type=int, default=None,
                        help="crossbar lanes P (default: the run's, else 8)")
    parser.add_argument("--out", help="folder of the flow (default: RUN/fpga-TARGET or NET.fpga-TARGET)")
    parser.add_argument("--json", metavar="F", help="also write the figures to this JSON file")
    parser.add_argument("--data", default="mnist",
                        help="data set for the cycles per image of a network directory (default: the embedded "
                             "MNIST); a run directory uses its own figure")
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES,
                        help=f"test images the golden model runs for the cycles per image (default "
                             f"{DEFAULT_IMAGES})")
    parser.add_argument("--steps", type=int, default=None, help="time steps per image (default: the network's)")
    parser.add_argument("--force", action="store_true", help="replace an earlier snncosim output of another kind")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.set_defaults(func=run_fpga_command)
    return parser


# ----------------------------------------------------------------------------------------------- the source
class _Source:
    """The network and what a run directory adds: its lanes, cycles per image, steps and data."""

    def __init__(self, path: Path):
        from golden.core.network_file import load_network

        self.path = path
        if not path.is_dir():
            raise SnnCosimError(f"{path}: no such network or run directory")
        self.run_dir = None
        self.summary: dict = {}
        network_dir = path
        if (path / "network.snn").is_dir():  # a run directory
            self.run_dir, network_dir = path, path / "network.snn"
            summary = path / "summary.json"
            if summary.is_file():
                self.summary = json.loads(summary.read_text())
        self.network = load_network(network_dir)

    @property
    def run_lanes(self) -> int | None:
        value = (self.summary.get("options") or {}).get("lanes")
        return int(value) if isinstance(value, int) else None


def _cycles_per_image(source: _Source, lanes: int, args: argparse.Namespace) -> dict:
    """Mean engine cycles per image (the golden cycle model is exact to the RTL) and where the figure comes from."""
    summary = source.summary
    if source.run_dir is not None and summary.get("cycles_per_image") and source.run_lanes == lanes \
            and args.steps in (None, summary.get("steps")):
        return {"cycles_per_image": float(summary["cycles_per_image"]), "steps": summary.get("steps"),
                "from": f"the run's golden model ({summary.get('test_images')} test images"
                        f"{', ' + summary['data'] if summary.get('data') else ''})"}
    if args.images < 1:
        raise SnnCosimError(f"--images must be at least 1, got {args.images}")
    from cosim.api import load_data, simulate
    from golden.simulation.inputs import default_steps

    data = load_data(args.data)
    steps = args.steps if args.steps is not None else default_steps(source.network)
    run = simulate(source.network, data, steps=steps, images=args.images, lanes=lanes)
    cycles = run.trace.image_cycles
    return {"cycles_per_image": float(cycles.mean()), "steps": steps,
            "from": f"the golden model on {len(cycles)} test images of {data.name}"}


def _default_out(source: _Source, target: str) -> Path:
    if source.run_dir is not None:
        return source.run_dir / f"fpga-{target}"
    return source.path.with_name(f"{source.path.name.removesuffix('.snn')}.fpga-{target}")


# ----------------------------------------------------------------------------------------------- figures
def fpga_figures(result, config, cycles: dict, network_name: str) -> dict:
    """The JSON figures of one flow (fpga.json)."""
    device, res = result.device, result.resources
    figures = {
        "network": network_name, "layer_sizes": list(config.layer_sizes), "lanes": config.lanes,
        "target": device.target, "device": device.name, "package": device.package,
        "placed_and_routed": device.placed,
        "resources": {
            "luts": {"used": res.luts, "available": device.luts},
            "ffs": {"used": res.ffs, "available": device.ffs},
            "brams": {"used": res.brams, "available": device.brams, "bits_each": device.bram_bits},
            "dsps": {"used": res.dsps, "available": device.dsps},
            "lut_ram_cells": res.lut_ram_cells,
        },
        "cells": res.cells,
        "placed_logic_cells": None if result.placed is None else {"used": result.placed[0],
                                                                  "available": result.placed[1]},
        "timing": None if result.timing is None else result.timing.as_dict(),
        "cycles": cycles,
        "seconds": {k: round(v, 1) for k, v in result.seconds.items()},
        "logs": result.logs,
    }
    fmax = None if result.timing is None else result.timing.fmax_mhz
    if fmax and cycles.get("cycles_per_image"):
        seconds = cycles["cycles_per_image"] / (fmax * 1e6)
        figures["per_image"] = {"clock_mhz": fmax, "microseconds": seconds * 1e6, "images_per_second": 1 / seconds}
    else:
        figures["per_image"] = None
    return figures


def _share(used, available) -> str:
    return "—" if not available else f"{100 * used / available:.1f} %"


def figures_table(figures: dict) -> str:
    """The table ``snncosim fpga`` prints (also the rows of report.html's FPGA section)."""
    rows = [(label, value, share) for label, value, share in figure_rows(figures)]
    width = max(len(r[0]) for r in rows)
    head = (f"FPGA: {figures['device']} {figures['package']}".rstrip()
            + f" ({figures['target']}), engine {'-'.join(map(str, figures['layer_sizes']))}, P = {figures['lanes']}"
            + ("" if figures["placed_and_routed"] else "  [synthesis only: Yosys cell counts before packing]"))
    lines = [head] + [f"  {label:<{width}}  {value:>18}  {share}" for label, value, share in rows]
    return "\n".join(lines)


def figure_rows(figures: dict) -> list[tuple[str, str, str]]:
    """(what, value, device share) rows of the figures."""
    r = figures["resources"]
    lut_kind = "LUT6" if figures["target"] == "xc7" else "LUT4"
    bram = {"ecp5": "DP16KD", "ice40": "SB_RAM40_4K", "xc7": "RAMB36E1"}[figures["target"]]
    rows = [
        (f"LUTs ({lut_kind}, LUT RAM included)", f"{r['luts']['used']:,}",
         _share(r["luts"]["used"], r["luts"]["available"])),
        ("flip-flops", f"{r['ffs']['used']:,}", _share(r["ffs"]["used"], r["ffs"]["available"])),
        (f"block RAMs ({bram}, {r['brams']['bits_each'] // 1024} kbit)", f"{r['brams']['used']:,}",
         _share(r["brams"]["used"], r["brams"]["available"])),
        ("DSPs", f"{r['dsps']['used']:,}", _share(r["dsps"]["used"], r["dsps"]["available"])),
        ("LUT-RAM cells", f"{r['lut_ram_cells']:,}", ""),
    ]
    placed = figures.get("placed_logic_cells")
    if placed:
        rows.append(("placed logic cells (nextpnr)", f"{placed['used']:,}",
                     _share(placed["used"], placed["available"])))
    timing = figures.get("timing")
    if timing:
        rows.append(("max clock (nextpnr timing)", f"{timing['fmax_mhz']:.1f} MHz", ""))
        rows.append(("critical path", f"{timing['critical_path_ns']:.2f} ns",
                     f"{timing['logic_levels']} logic levels, {timing['logic_ns']:.2f} ns cells + "
                     f"{timing['routing_ns']:.2f} ns routing, through "
                     + " -> ".join(dict.fromkeys(timing["through"]))))
    elif not figures["placed_and_routed"]:
        rows.append(("max clock", "—", "no open place-and-route flow for this family"))
    cycles = figures.get("cycles") or {}
    if cycles.get("cycles_per_image"):
        rows.append(("cycles per image", f"{cycles['cycles_per_image']:,.0f}", f"T = {cycles.get('steps')}, "
                                                                              f"from {cycles.get('from')}"))
    per = figures.get("per_image")
    if per:
        rows.append(("time per image", f"{per['microseconds']:,.1f} us", f"at {per['clock_mhz']:.1f} MHz"))
        rows.append(("images per second", f"{per['images_per_second']:,.0f}", "one image at a time"))
    return rows


# ----------------------------------------------------------------------------------------------- the command
def _check_fits(config, device, source: Path) -> None:
    """Refuse before the long steps a network whose weights alone exceed the device's block RAM."""
    from hw.fpga.flow import weight_memory_bits

    weights = weight_memory_bits(config)
    if weights > device.block_ram_bits:
        raise SnnCosimError(
            f"{source}: the {'-'.join(map(str, config.layer_sizes))} engine (P = {config.lanes}) holds "
            f"{weights / 1024:,.0f} kbit of weights; the {device.name} has {device.block_ram_bits / 1024:,.0f} kbit "
            f"of block RAM: choose a larger device (--device) or family (--target ecp5)")


def run_fpga_command(args: argparse.Namespace) -> int:
    from hw.config import EngineConfig
    from hw.fpga.devices import device_for
    from hw.fpga.flow import run_flow, tools_for
    from hw.fpga.tools import ToolError, check_tools

    device = device_for(args.target, args.device)
    check_tools(tools_for(device))
    source = _Source(Path(args.source))
    lanes = args.lanes if args.lanes is not None else (source.run_lanes or 8)
    if not 1 <= lanes <= 64:
        raise SnnCosimError(f"-P/--lanes must be in 1..64, got {lanes}")
    config = EngineConfig.for_network(source.network, lanes=lanes)
    _check_fits(config, device, source.path)
    out = Path(args.out) if args.out else _default_out(source, args.target)
    check_output_path(out, "fpga", force=args.force, option="--out")
    if args.json:
        check_writable_file(args.json, "--json")
    cycles = _cycles_per_image(source, lanes, args)
    name = str(source.network.metadata.get("name", "")) or source.path.name
    staged = None
    try:
        with staged_output(out, "fpga", force=args.force, option="--out", publish_failures=True) as staging:
            staged = staging
            result = run_flow(source.network, device, staging, lanes=lanes, show_progress=not args.quiet)
            figures = fpga_figures(result, config, cycles, name)
            figures["folder"] = str(out)
            write_text_atomic(staging / "fpga.json", json.dumps(figures, indent=1))
    except ToolError as exc:  # the folder is published (marked incomplete): name its logs where they now are
        raise ToolError(str(exc).replace(str(staged), str(out)) + " (the folder is kept, marked incomplete)") \
            from None
    print(figures_table(figures))
    print(f"logs and reports: {out}")
    if source.run_dir is not None:
        write_text_atomic(source.run_dir / "fpga.json", json.dumps(figures, indent=1))
        if (source.run_dir / "report.html").is_file():
            from .report_html import write_report

            print(f"wrote {write_report(source.run_dir)} (with the FPGA section)")
    if args.json:
        write_text_atomic(args.json, json.dumps(figures, indent=1))
        print(f"wrote {args.json}")
    return 0

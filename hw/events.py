"""The engine's spike-event picker: which input spike of the current mask word the EVENT pass visits next
(docs/hardware.md, "The schedule": EVENT visits the set bits of a word in ascending order)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LowestSetBit"]


class LowestSetBit(wiring.Component):
    """Combinational: ``bit`` = the lowest set bit of ``mask`` (0 when none is set; width at least 1), ``rest`` =
    ``mask`` without it (``mask & (mask − 1)``)."""

    def __init__(self, lanes: int):
        self.lanes = int(lanes)
        super().__init__({"mask": In(self.lanes), "bit": Out(max(1, (self.lanes - 1).bit_length())),
                          "rest": Out(self.lanes)})

    def elaborate(self, platform):
        m = Module()
        for p in reversed(range(self.lanes)):  # the lowest set bit is assigned last and wins
            with m.If(self.mask[p]):
                m.d.comb += self.bit.eq(p)
        m.d.comb += self.rest.eq(self.mask & (self.mask - 1))
        return m

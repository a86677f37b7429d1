"""The event-driven accumulator: the shared ACC memory and its read-modify-write pipeline.

For every input spike event ``i`` the engine walks the layer's lane groups ``g = 0..G_l−1``, one per cycle,
and issues an *add* of the weight word ``W[i, g]`` (P lanes) into ``ACC[g]``. In UPDATE it issues a
*read-and-clear* of ``ACC[g]``, which returns the exact synaptic input of group ``g`` and leaves the word zero
for the next (step, layer). Two stages:

* issue (cycle c): ``op_valid``, ``op_clear``, ``op_group``; the ACC read port (synchronous) reads
  ``ACC[op_group]``, the engine's weight memory reads ``W[i, g]`` in the same cycle;
* stage 1 (cycle c+1): ``weights`` carries the weight word; ``acc`` shows the word read; the write port
  stores ``acc + weights`` (add) or 0 (clear) back at the same address.

The read port is transparent for the write port, so an issue that reads the word being written in the same
cycle (``G_l = 1``: back-to-back events on ``ACC[0]``; or UPDATE reading the last event's group) sees the
updated value. Only adders: lanes are sign-extended and added, never multiplied.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["Crossbar"]


class Crossbar(wiring.Component):
    """``depth`` accumulator words of ``lanes`` signed ``acc_bits`` lanes, fed with signed ``weight_bits`` lanes."""

    def __init__(self, lanes: int, weight_bits: int, acc_bits: int, depth: int):
        if depth < 1:
            raise ValueError(f"Crossbar depth must be at least 1, got {depth}")
        self.lanes, self.weight_bits, self.acc_bits, self.depth = lanes, weight_bits, acc_bits, depth
        self.group_bits = max(1, (depth - 1).bit_length())
        super().__init__({
            "op_valid": In(1),
            "op_clear": In(1),  # 0: ACC[g] += weights; 1: read ACC[g] and clear it
            "op_group": In(self.group_bits),
            "weights": In(data.ArrayLayout(signed(weight_bits), lanes)),  # stage 1 of an add
            "acc": Out(data.ArrayLayout(signed(acc_bits), lanes)),  # stage 1: ACC[g] before the operation
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.acc = mem = Memory(shape=data.ArrayLayout(signed(self.acc_bits), self.lanes),
                                        depth=self.depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port(transparent_for=(wp,))

        s1_valid = Signal()
        s1_clear = Signal()
        s1_group = Signal(self.group_bits)
        m.d.sync += [s1_valid.eq(self.op_valid), s1_clear.eq(self.op_clear), s1_group.eq(self.op_group)]

        m.d.comb += [rp.addr.eq(self.op_group), self.acc.eq(rp.data), wp.addr.eq(s1_group), wp.en.eq(s1_valid)]
        for p in range(self.lanes):
            with m.If(~s1_clear):
                m.d.comb += wp.data[p].eq(rp.data[p] + self.weights[p])
            # on a clear the write data stays 0 (comb default)
        return m

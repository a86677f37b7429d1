"""The engine's ``prediction``: a running argmax over the output layer's lanes (docs/architecture.md, "Ports").

The engine feeds it one lane group per UPDATE cycle of the output layer (the new spike counts, or the membranes of
an 'acc' output layer) and clears it when it enters a layer; after the last step's UPDATE of the output layer
``index`` holds the argmax of the final counts / membranes, ties to the lowest index.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RunningArgmax"]


class RunningArgmax(wiring.Component):
    """Running argmax over ``lanes`` candidates per cycle.

    In a cycle with ``update``, every lane p with ``valid[p]`` whose ``ranks[p]`` is strictly greater than the best
    rank so far (lanes in ascending order: ties keep the lowest index) takes the lead with index ``base + p``
    (truncated to ``index_bits``); ``clear`` (in a cycle without ``update``) restarts at rank ``floor``, index 0.
    ``index`` is the registered result (0 after reset). ``floor`` lies below every candidate, so the first valid
    lane after ``clear`` always takes the lead.
    """

    def __init__(self, lanes: int, rank_shape, index_bits: int, floor: int):
        self.lanes, self.rank_shape, self.floor = int(lanes), Shape.cast(rank_shape), int(floor)
        super().__init__({
            "ranks": In(data.ArrayLayout(self.rank_shape, self.lanes)),
            "valid": In(self.lanes),
            "base": In(index_bits),
            "update": In(1),
            "clear": In(1),
            "index": Out(index_bits),
        })

    def elaborate(self, platform):
        m = Module()
        best_rank = Signal(self.rank_shape)
        best_index = Signal.like(self.index)
        cand_rank, cand_index = best_rank, best_index
        for p in range(self.lanes):
            # each stage is a named signal: reusing the previous stage's expression twice would double the
            # expression tree per lane (2^P terms: minutes of elaboration and 30 MB of Verilog at P = 16)
            better = self.valid[p] & (self.ranks[p] > cand_rank)
            next_rank = Signal.like(best_rank, name=f"rank_{p}")
            next_index = Signal.like(best_index, name=f"index_{p}")
            m.d.comb += [next_rank.eq(Mux(better, self.ranks[p], cand_rank)),
                         next_index.eq(Mux(better, self.base + p, cand_index))]
            cand_rank, cand_index = next_rank, next_index
        with m.If(self.update):
            m.d.sync += [best_rank.eq(cand_rank), best_index.eq(cand_index)]
        with m.Elif(self.clear):
            m.d.sync += [best_rank.eq(self.floor), best_index.eq(0)]
        m.d.comb += self.index.eq(best_index)
        return m

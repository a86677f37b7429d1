"""The engine's ``prediction``: a running argmax over the output layer's lanes (docs/architecture.md, "Ports").

The engine feeds it one lane group per UPDATE cycle of the output layer (the new spike counts, or the membranes of
an 'acc' output layer) and clears it when it enters a layer; after the last step's UPDATE of the output layer
``index`` holds the argmax of the final counts / membranes, ties to the lowest index.

The inputs are registered: the group's leader tree and the comparison with the best so far run in the cycle after
the neuron lanes (stage 2), not in series with them (that chain was the engine's critical path on FPGAs, ~20 of
46 ns on an ECP5). ``index`` therefore follows its inputs by two clock edges; the schedule leaves the time
(docs/hardware.md, "The schedule": the last UPDATE's stage 1 is in DRAIN, ``done`` comes at least two cycles
later). The ranks, valid lanes and base load only with ``update`` and the leader tree is gated by the registered
``update`` (:mod:`hw.gated`): a simulator evaluates them only in the cycles that use them.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .gated import Gated

__all__ = ["RunningArgmax"]


class RunningArgmax(wiring.Component):
    """Running argmax over ``lanes`` candidates per cycle.

    The inputs of a cycle act one cycle later (they are registered first). In a cycle with ``update``, every lane p
    with ``valid[p]`` whose ``ranks[p]`` is strictly greater than the best rank so far (lanes in ascending order:
    ties keep the lowest index) takes the lead with index ``base + p`` (truncated to ``index_bits``); ``clear`` (in
    a cycle without ``update``) restarts at rank ``floor``, index 0. ``index`` is the registered result (0 after
    reset): it shows the effect of a cycle's inputs two clock edges later. ``floor`` lies below every candidate, so
    the first valid lane after ``clear`` always takes the lead.
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
        # stage 2: the inputs of the cycle before
        ranks = [Signal(self.rank_shape, name=f"rank_in_{p}") for p in range(self.lanes)]
        valid_in, base = Signal.like(self.valid, name="valid_in"), Signal.like(self.base, name="base_in")
        update, clear = Signal(name="update_in"), Signal(name="clear_in")
        with m.If(self.update):  # used only in the cycle after an update: loaded (and their sources evaluated) then
            m.d.sync += [ranks[p].eq(self.ranks[p]) for p in range(self.lanes)]
            m.d.sync += [valid_in.eq(self.valid), base.eq(self.base)]
        m.d.sync += [update.eq(self.update), clear.eq(self.clear)]
        best_rank = Signal(self.rank_shape)
        best_index = Signal.like(self.index)
        gated = Gated(m, update)  # the leader tree, computed only in the cycles that use it (hw.gated)
        # the group's own leader by a tree of pairwise matches (log2 P comparators deep, not P: the chain of P
        # comparators was the engine's critical path on FPGAs); a match keeps the lower lane on a tie, so the tree
        # finds the first valid lane of the group's maximal rank, as a scan in ascending lane order does
        leaders = [(valid_in[p], ranks[p], base + p) for p in range(self.lanes)]
        level = 0
        while len(leaders) > 1:
            merged = []
            for i in range(0, len(leaders) - 1, 2):
                (valid_a, rank_a, index_a), (valid_b, rank_b, index_b) = leaders[i], leaders[i + 1]
                take_b = valid_b & (~valid_a | (rank_b > rank_a))
                # named signals: reusing an expression twice would double the expression tree per level
                take_b = gated(take_b, f"take_{level}_{i // 2}")
                valid = gated(valid_a | valid_b, f"valid_{level}_{i // 2}")
                rank = gated(Mux(take_b, rank_b, rank_a), f"rank_{level}_{i // 2}", self.rank_shape)
                index = gated(Mux(take_b, index_b, index_a), f"index_{level}_{i // 2}", best_index.shape())
                merged.append((valid, rank, index))
            if len(leaders) % 2:
                merged.append(leaders[-1])
            leaders, level = merged, level + 1
        valid, rank, index = leaders[0]
        better = valid & (rank > best_rank)  # earlier groups hold lower indices: the group must beat them strictly
        with m.If(update):
            m.d.sync += [best_rank.eq(Mux(better, rank, best_rank)), best_index.eq(Mux(better, index, best_index))]
        with m.Elif(clear):
            m.d.sync += [best_rank.eq(self.floor), best_index.eq(0)]
        m.d.comb += self.index.eq(best_index)
        return m

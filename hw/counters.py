"""The engine's counter bank: the nine counters of the current (step, layer) (``golden.core.counters.COUNTER_NAMES``), the
values of its SUMMARY beat, the per-image totals and the image's cycle count (docs/hardware.md, "Cycle
accounting")."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.core.counters import COUNTER_NAMES

from .config import N_COUNTERS

__all__ = ["CounterBank"]

assert len(COUNTER_NAMES) == N_COUNTERS


class CounterBank(wiring.Component):
    """``counter_bits``-bit counters of ``lanes``-lane passes, driven by one-cycle strobes of the schedule:

    * ``clear``: a (step, layer) begins, its counters restart at 0;
    * ``restart``: an image begins (the start cycle): totals 0, ``image_cycles`` 1;
    * ``cycle``: a cycle of the (step, layer) (``cycles``, and ``image_cycles``);
    * ``summary``: the SUMMARY cycle: totals += the beat's values (``sum_counters``), one more image cycle;
    * ``image_pad``: an IPAD cycle: one more image cycle;
    * ``state_read``: one state word issued; ``weight_read``: one EVENT, adding ``acs`` accumulations;
    * ``update``: stage 1 of an UPDATE: ``spikes`` and ``saturated`` lanes, ``neuron_updates`` lanes updated;
    * with ``macs`` (lateral inhibition): ``inhibit``: stage 1 of an INHIBIT, ``inhibit_macs`` multiplying lanes,
      ``inhibit_saturated`` newly saturated lanes.

    ``layer_spikes`` is the spike counter of the current (step, layer). In the SUMMARY beat ``cycles`` counts the
    SUMMARY cycle itself; ``macs`` is 0 in builds without inhibition (spike inputs never multiply)."""

    def __init__(self, lanes: int, counter_bits: int, macs: bool):
        self.lanes, self.counter_bits, self.macs = int(lanes), int(counter_bits), bool(macs)
        lane_count = range(self.lanes + 1)
        members = {
            "clear": In(1), "restart": In(1), "cycle": In(1), "summary": In(1), "image_pad": In(1),
            "state_read": In(1), "weight_read": In(1), "acs": In(lane_count),
            "update": In(1), "spikes": In(self.lanes), "saturated": In(self.lanes), "neuron_updates": In(lane_count),
            "layer_spikes": Out(self.counter_bits),
            "sum_counters": Out(N_COUNTERS * self.counter_bits),
            "total_counters": Out(N_COUNTERS * self.counter_bits),
            "image_cycles": Out(self.counter_bits),
        }
        if self.macs:
            members |= {"inhibit": In(1), "inhibit_macs": In(self.lanes), "inhibit_saturated": In(self.lanes)}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        W, P = self.counter_bits, self.lanes
        ctr = {name: Signal(W, name=f"ctr_{name}") for name in COUNTER_NAMES if name != "macs" or self.macs}
        totals = {name: Signal(W, name=f"total_{name}") for name in COUNTER_NAMES}
        image_cycles = Signal(W)
        # value of (t, l)'s counters in SUMMARY: the cycle counter has not counted SUMMARY itself yet
        summary = {name: Signal(W, name=f"sum_{name}") for name in COUNTER_NAMES}
        m.d.comb += [summary[name].eq(ctr["cycles"] + 1 if name == "cycles" else ctr.get(name, 0))
                     for name in COUNTER_NAMES]

        def add(name, amount):
            m.d.sync += ctr[name].eq(ctr[name] + amount)

        with m.If(self.clear):
            m.d.sync += [counter.eq(0) for counter in ctr.values()]
        with m.If(self.restart):
            m.d.sync += [image_cycles.eq(1)] + [total.eq(0) for total in totals.values()]
        with m.If(self.cycle | self.summary | self.image_pad):
            m.d.sync += image_cycles.eq(image_cycles + 1)
        with m.If(self.summary):
            m.d.sync += [totals[name].eq(totals[name] + summary[name]) for name in COUNTER_NAMES]
        with m.If(self.cycle):
            add("cycles", 1)
        with m.If(self.state_read):
            add("state_reads", 1)
        with m.If(self.weight_read):
            add("weight_reads", 1)
            add("acs", self.acs)
        if self.macs:
            with m.If(self.inhibit):  # one MAC per lane with m > 0; a neuron saturates at most once per step
                add("macs", sum(self.inhibit_macs[p] for p in range(P)))
                add("saturations", sum(self.inhibit_saturated[p] for p in range(P)))
                add("state_writes", 1)
        with m.If(self.update):
            add("spikes", sum(self.spikes[p] for p in range(P)))
            add("saturations", sum(self.saturated[p] for p in range(P)))
            add("state_writes", 1)
            add("neuron_updates", self.neuron_updates)

        m.d.comb += [
            self.layer_spikes.eq(ctr["spikes"]),
            self.sum_counters.eq(Cat(*(summary[n] for n in COUNTER_NAMES))),
            self.total_counters.eq(Cat(*(totals[n] for n in COUNTER_NAMES))),
            self.image_cycles.eq(image_cycles),
        ]
        return m

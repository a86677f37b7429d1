"""Stage 1 of the engine's UPDATE and INHIBIT passes (docs/hardware.md, "The schedule"): the state word issued in
the cycle before meets the neuron lanes (IF/LIF/WS :class:`~hw.neuron.NeuronLanes`, FS
:class:`~hw.fs.FsNeuronLanes` or the INHIBIT pass's :class:`~hw.neuron.InhibitLanes`); its membranes, spike masks,
own spikes and output counts are written back, the record beat and the output argmax see it and the counter bank
counts it. Also feeds the crossbar its stage-1 weight word."""

from __future__ import annotations

from amaranth.hdl import Cat, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data

from .config import SPIKE_COUNT_BITS
from .gated import Gated

__all__ = ["NeuronStage"]


class NeuronStage:
    """Adds stage 1 to module ``m``: ``regs`` are the :class:`~hw.scheduler.ScheduleRegisters`, ``tables`` the
    :class:`~hw.layer_tables.LayerConstants`, ``memories`` the :class:`~hw.memories.LayerMemories`; the units are
    those the engine built (``spatial``, ``fs_neurons``, ``inhibit``, ``phase`` where present). After
    construction ``rec_valid``, ``rec_spikes`` and ``rec_membranes`` are the record beat."""

    def __init__(self, m, config, regs, tables, memories, *, crossbar, neurons, counters, argmax, spatial=None,
                 fs_neurons=None, inhibit=None, phase=None):
        self.m, self.config, self.regs, self.tables, self.memories = m, config, regs, tables, memories
        self.crossbar, self.neurons, self.counters, self.argmax = crossbar, neurons, counters, argmax
        self.spatial, self.fs_neurons, self.inhibit, self.phase = spatial, fs_neurons, inhibit, phase
        # t = 1: stored membranes and output counts belong to an earlier image
        self.first = self.held(regs.step == 1, "first")
        self._operands()
        v_out, lane_spikes, lane_saturated = self._fs_lanes() if fs_neurons is not None else (
            neurons.v_out, neurons.spikes, neurons.saturated)
        self.v_out = v_out
        self._valid_lanes(lane_spikes, lane_saturated)
        self.rec_spikes, self.rec_membranes, self.rec_valid = self.spikes, v_out, regs.s1_update
        if inhibit is not None:
            self._inhibit_pass()
        self._write_back()
        self._output_counts()
        m.d.comb += [counters.update.eq(regs.s1_update), counters.spikes.eq(self.spikes),
                     counters.saturated.eq(self.saturated),
                     counters.neuron_updates.eq(Mux(self.s1_last, tables.last_lanes, config.lanes))]

    def held(self, value, name):
        """A registered copy of ``value``, a function of the step, layer or phase only (the layer's control word and
        floor, the t = 1 flag, the FS phase flags): those change in SUMMARY or at start, at least two cycles before
        the next stage 1 (FETCH and an issue come between), so the copy is exact there and their decoding (the
        layer's multiplexers, the step compares) is off the neuron lanes' path."""
        held = Signal.like(value, name=name) if isinstance(value, (Signal, data.View)) else \
            Signal(Value.cast(value).shape(), name=name)
        self.m.d.sync += held.eq(value)
        return held

    def lanes_of(self, shape):
        return self.memories.lanes_of(shape)

    def _operands(self):
        """The neuron lanes' operands; the crossbar's weight word (pool: masked by the word's set lanes)."""
        m, mem, nl, xb = self.m, self.memories, self.neurons, self.crossbar
        self.control, self.floor = self.held(mem.sel_control, "s1_control"), self.held(mem.sel_floor, "s1_floor")
        m.d.comb += [
            # the lanes' results are used (and computed) in stage 1 of UPDATE (FS builds: of a per-step schedule)
            nl.enable.eq(self.regs.s1_update & ~self.regs.fs_run),
            nl.v.eq(Mux(self.first, 0, mem.sel_membrane.as_value())),
            nl.acc.eq(xb.acc),
            nl.bias.eq(mem.sel_bias),
            nl.threshold.eq(mem.sel_threshold),
            nl.control.eq(self.control),
            nl.floor.eq(self.floor),
        ]
        if self.spatial is not None and self.spatial.has_pool:  # pool: Mux(mask bit, pool weight, 0) per lane
            for p in range(self.config.lanes):
                m.d.comb += xb.weights[p].eq(Mux(self.spatial.pool_lanes[p], mem.sel_weights[p], 0))
        else:
            m.d.comb += xb.weights.eq(mem.sel_weights)

    def _fs_lanes(self):
        """FS schedule: the FS lanes (COLLECT / FIRE with the layer's table entry of this phase) replace the
        neuron lanes' results."""
        m, c, mem, fsl, nl, regs = self.m, self.config, self.memories, self.fs_neurons, self.neurons, self.regs
        m.d.comb += [
            fsl.enable.eq(regs.s1_update & regs.fs_run),
            fsl.v.eq(mem.sel_membrane), fsl.acc.eq(self.crossbar.acc), fsl.bias.eq(mem.sel_bias),
            fsl.threshold.eq(mem.sel_fs_threshold), fsl.reset.eq(mem.sel_fs_reset),
            fsl.shift.eq(mem.sel_fs_weight[:c.fs_shift_bits]), fsl.negative.eq(mem.sel_fs_weight[c.fs_shift_bits]),
            fsl.collect.eq(self.held(~regs.fire, "s1_collect")),
            fsl.first.eq(self.held(self.phase.index == 0, "s1_phase_first")),
        ]
        v_out = Signal(self.lanes_of(signed(c.membrane_bits)), name="v_out")
        lane_spikes, lane_saturated = Signal(c.lanes, name="lane_spikes"), Signal(c.lanes, name="lane_saturated")
        m.d.comb += [v_out.eq(Mux(regs.fs_run, fsl.v_out.as_value(), nl.v_out.as_value())),
                     lane_spikes.eq(Mux(regs.fs_run, fsl.spikes, nl.spikes)),
                     lane_saturated.eq(Mux(regs.fs_run, fsl.saturated, nl.saturated))]
        return v_out, lane_spikes, lane_saturated

    def _valid_lanes(self, lane_spikes, lane_saturated):
        """Spikes and saturation flags of the lanes that hold neurons (the last group may have padding lanes)."""
        P = self.config.lanes
        self.lane_valid, self.spikes, self.saturated = Signal(P), Signal(P), Signal(P)
        self.s1_last = Signal()
        self.m.d.comb += [
            self.s1_last.eq(self.regs.s1_state_group == self.tables.g_last),
            self.lane_valid.eq(Mux(self.s1_last, self.tables.last_group_mask, (1 << P) - 1)),
            self.spikes.eq(lane_spikes & self.lane_valid),
            self.saturated.eq(lane_saturated & self.lane_valid),
        ]

    def _inhibit_pass(self):
        """Lateral inhibition: the INHIBIT lanes, the own-spike memories (written in UPDATE), the record beat of
        the INHIBIT pass (instead of UPDATE's where the layer inhibits) and its counts."""
        m, c, P, regs, mem, inh = self.m, self.config, self.config.lanes, self.regs, self.memories, self.inhibit
        own_spikes, own_saturated = mem.sel_own[:P], mem.sel_own[P:]
        m.d.comb += [inh.enable.eq(regs.s1_inhibit), inh.v.eq(mem.sel_membrane), inh.own.eq(own_spikes),
                     inh.n.eq(self.counters.layer_spikes), inh.u.eq(mem.sel_u), inh.threshold.eq(mem.sel_threshold),
                     inh.control.eq(self.control), inh.floor.eq(self.floor)]
        inh_v = Signal(self.lanes_of(signed(c.membrane_bits)), name="inh_v")
        m.d.comb += inh_v.eq(Mux(regs.s1_inhibit, inh.v_out.as_value(), self.v_out.as_value()))
        for l, write in mem.own_write.items():
            m.d.comb += [write.addr.eq(regs.s1_group), write.data.eq(Cat(self.spikes, self.saturated)),
                         write.en.eq(regs.s1_update & (regs.layer == l))]
        self.rec_spikes, self.rec_membranes = Signal(P, name="rec_spikes"), inh_v
        self.rec_valid = Signal(name="rec_valid")
        m.d.comb += [self.rec_spikes.eq(Mux(regs.s1_inhibit, own_spikes, self.spikes)),
                     self.rec_valid.eq((regs.s1_update & ~mem.inhibit_on) | regs.s1_inhibit)]
        inh_active, inh_new_sat = Signal(P, name="inh_active"), Signal(P, name="inh_new_sat")
        m.d.comb += [inh_active.eq(inh.active & self.lane_valid),
                     inh_new_sat.eq(inh.saturated & self.lane_valid & ~own_saturated)]
        # one MAC per lane with m > 0; a neuron saturates at most once per step
        m.d.comb += [self.counters.inhibit.eq(regs.s1_inhibit), self.counters.inhibit_macs.eq(inh_active),
                     self.counters.inhibit_saturated.eq(inh_new_sat)]

    def _write_back(self):
        """Membranes (UPDATE and INHIBIT) and the hidden layers' spike masks (UPDATE) of the current layer."""
        m, regs, mem, L = self.m, self.regs, self.memories, self.config.n_layers
        for l in range(1, L + 1):
            writes = [(mem.membrane_write[l], self.rec_membranes, regs.s1_update | regs.s1_inhibit)]
            writes += [(mem.spikes_write[l], self.spikes, regs.s1_update)] if l < L else []
            for port, value, enable in writes:
                m.d.comb += [port.addr.eq(regs.s1_group), port.data.eq(value), port.en.eq(enable & (regs.layer == l))]

    def _output_counts(self):
        """The output layer's spike counts, and the running argmax over the output ranks of the current step
        (strictly greater: ties keep the lowest index); after the last step's UPDATE of layer L it holds the argmax
        of the final counts / membranes ('acc' output layers: the membranes)."""
        m, c, P, regs, mem, L = self.m, self.config, self.config.lanes, self.regs, self.memories, self.config.n_layers
        # the output layer's new counts, computed only in its UPDATE stage 1 (hw.gated)
        gated = Gated(m, regs.s1_update & (regs.layer == L))
        counts = [(Mux(self.first, 0, mem.count_read.data[p]) + self.spikes[p])[:SPIKE_COUNT_BITS] for p in range(P)]
        new_count = gated(Cat(*counts), "new_count", self.lanes_of(unsigned(SPIKE_COUNT_BITS)))
        m.d.comb += [mem.count_write.addr.eq(regs.s1_group), mem.count_write.data.eq(new_count),
                     mem.count_write.en.eq(regs.s1_update & (regs.layer == L))]
        ranks = [new_count[p] for p in range(P)]
        if c.phase_bits:
            ranks = [Mux(mem.controls[L].acc, self.v_out[p], new_count[p]) for p in range(P)]
        argmax = self.argmax
        m.d.comb += [argmax.ranks[p].eq(ranks[p]) for p in range(P)]
        m.d.comb += [argmax.valid.eq(self.lane_valid), argmax.base.eq(regs.s1_base),
                     argmax.update.eq(regs.s1_update & (regs.layer == L))]

"""The network engine: every dense layer of one network, time-multiplexed over one P-lane crossbar and one set of
P neuron lanes (docs/architecture.md, "The network engine"; micro-architecture in docs/hardware.md).

Schedule of one image of ``T = n_steps`` steps; for t = 1..T, l = 1..L (one state per line)::

    FETCH   × W_l        one spike-mask word (layer 1: spike_in stream; else layer l−1's spike-mask memory)
    EVENT   × S_in·G_l   one (set bit i, group g) per cycle: ACC[g] += W[i, g]
    UPDATE  × G_l        read ACC[g] (and clear it), membrane, bias, θ; neuron lanes; write back (stage 1)
    DRAIN   × 1          stage 1 of the last group
    INHIBIT × G_l        only layers with lateral inhibition enabled (Lee 2016, params bit 12): read membrane,
                         own spikes and u of group g, v −= u·(n − s) (stage 1), write back, emit the rec beat
    IDRAIN  × 1          stage 1 of the last INHIBIT group (C_INHIBIT = 1)
    LPAD    × C_LAYER−2  idle cycles, only when golden.core.cycle_model.C_LAYER asks for more than the minimum 2
    SUMMARY × 1          sum beat with the 9 counters of (t, l); totals accumulate

    cycles(t, l) = W_l + S_in·G_l + G_l + C_LAYER;  cycles(image) = Σ cycles(t, l) + C_IMAGE

Conv2d / avgpool2d layers (``config.spatial``; docs/architecture.md, "Convolution"): lanes run over output
channels; EVENT walks, per set source bit, the output positions its input position reaches (a constant reach-table
ROM per layer) and per position the G_l channel groups (conv). Pool EVENTs are word-parallel: per non-empty
source word, one cycle per reached position adds ``Mux(mask[p], pool_weight, 0)`` in every lane p into the word's
own channel group. UPDATE walks the layer's ``h_out·w_out·G_l`` state words::

    cycles(t, l) = W_l + R·G_l (conv) or R_w (pool) + h_out·w_out·G_l + C_LAYER

with ``R`` = Σ over input spikes and ``R_w`` = Σ over non-empty source words of the output positions reached.

``C_IMAGE`` counts the cycle that sees ``start`` plus ``C_IMAGE − 1`` idle IPAD cycles after the last summary;
``done`` pulses in the following cycle (state DONE, not busy, already accepting the next ``start``). Cycles in
FETCH of layer 1 without ``spike_in_valid`` are not counted. After ``rst`` the engine spends ``max G_l`` cycles
(state CLEAR, busy, configuration writes accepted) zeroing the accumulator memory; from then on ACC is zero
between layers because UPDATE clears every word it reads.

With ``config.phase_bits > 0`` (weighted spikes, Kim 2018) a global :class:`~hw.neuron.PhaseCounter` gives every
layer the same phase shift ``sh = K − k`` in step t, advanced in the SUMMARY that ends a step; K and ``S·K`` are
registers in configuration region 0xFF. An ``acc`` output layer makes ``prediction`` the argmax of the output
membranes instead of the spike counts; both are running maxima over the UPDATE of the output layer, so the
schedule and the cycle formula are the same for every coding.

With ``config.fs`` (FS neurons, Stöckl & Maass 2021; ``hw.fs``) and configuration word 0xFF/2 = 1, one ``start``
streams ``n_images`` images through the layer pipeline: image n enters at global step ``2K·n + 1``, layer l
collects it in window ``2n + l`` and fires it in window ``2n + l + 1``. Each global step visits only the layers
that work in its window (:class:`~hw.fs.FsWindow`), with the same per-(step, layer) states and cycle formula (a
firing layer's FETCH sees no spikes); idle layers cost nothing. The :class:`~hw.fs.FsNeuronLanes` replace the
IF/WS lanes, the layer's T/h/d_in table entries are read at the phase, and ``pred_valid``/``pred_image`` report
each image's prediction at the end of the output layer's collect window (docs/hardware.md, "FS neurons").
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Signal, signed, unsigned
from amaranth.lib import wiring

from .argmax import RunningArgmax
from .config import PREDICTION_BITS, SPIKE_COUNT_BITS, EngineConfig
from .counters import CounterBank
from .crossbar import Crossbar
from .events import LowestSetBit
from .fs import FsNeuronLanes
from .fs_stream import FsStreamWindow
from .global_registers import GlobalRegisters
from .layer_tables import LayerConstants, LayerSelect, PassLayout
from .memories import LayerMemories
from .neuron import InhibitLanes, NeuronLanes, PhaseCounter
from .neuron_stage import NeuronStage
from .ports import config_write_signature, engine_signature
from .scheduler import Scheduler, ScheduleRegisters
from .spatial import SpatialAddressing

__all__ = ["NetworkEngine"]


class NetworkEngine(wiring.Component):
    """The engine of one :class:`~hw.config.EngineConfig`; Verilog module ``snn_engine`` (``hw.verilog``); its
    ports are :func:`hw.ports.engine_ports`.

    :meth:`elaborate` wires the parts: the :class:`~hw.scheduler.ScheduleRegisters` and the FSM
    (:class:`~hw.scheduler.Scheduler`), the per-layer tables (``hw.layer_tables``), the weight address (dense here,
    conv/pool :class:`~hw.spatial.SpatialAddressing`), the configuration port and the
    :class:`~hw.memories.LayerMemories`, the crossbar and neuron lanes with their stage 1
    (:class:`~hw.neuron_stage.NeuronStage`), the :class:`~hw.counters.CounterBank`, the output argmax and, in FS
    builds, the :class:`~hw.fs_stream.FsStreamWindow`."""

    def __init__(self, config: EngineConfig):
        if not isinstance(config, EngineConfig):
            raise TypeError(f"NetworkEngine needs an EngineConfig, got {type(config).__name__}")
        self.config = config
        super().__init__(engine_signature(config))  # the ports of hw.ports, defined once

    def elaborate(self, platform):
        c = self.config
        m = Module()
        passes = PassLayout(c)
        units = self._lanes(m)
        regs = ScheduleRegisters(m, c, passes)
        select = LayerSelect(m, regs.layer)
        fs = None
        if c.fs:  # the FS stream's window: which layers work in it, and does the current layer fire
            m.submodules.fs_stream = fs = FsStreamWindow(c.n_layers)
            m.d.comb += [fs.layer.eq(regs.layer), fs.stream_images.eq(self.n_images),
                         regs.fire.eq(regs.fs_run & ~fs.collect)]
        tables = LayerConstants(select, c, passes, regs.pass_key, regs.group)
        # the next input spike event: the lowest set bit of the mask word (ascending i); rest: the mask without it
        m.submodules.events = events = LowestSetBit(c.lanes)
        m.d.comb += events.mask.eq(regs.mask)
        weight_addr, spatial = self._weight_address(m, passes, select, regs, events.bit)

        cfg_open, cfg_bus = self._config_port(m)
        memories = LayerMemories(m, c, passes, cfg_bus)
        memories.build_layers(weight_addr, regs.state_group, regs.group, regs.word)
        memories.select(select, regs.weight_key, regs.pass_key)
        if units["inhibit"] is not None:
            memories.build_inhibition(select, regs.group, regs.s1_group)
        if c.fs:
            memories.build_fs_tables(select, units["phase"].index)
        phases = self._global_registers(m, cfg_bus, regs, units)

        m.submodules.counters = counters = CounterBank(c.lanes, c.counter_bits, macs=units["inhibit"] is not None)
        argmax = self._argmax(m)
        Scheduler(m, self, c, regs, tables, crossbar=units["crossbar"], counters=counters, argmax=argmax,
                  events=events, memories=memories, cfg_open=cfg_open, spatial=spatial, phase=units["phase"],
                  phases=phases, fs=fs).build()
        stage = NeuronStage(m, c, regs, tables, memories, crossbar=units["crossbar"], neurons=units["neurons"],
                            counters=counters, argmax=argmax, spatial=spatial, fs_neurons=units["fs_neurons"],
                            inhibit=units["inhibit"], phase=units["phase"])

        m.d.comb += [
            self.rec_valid.eq(stage.rec_valid),
            self.rec_step.eq(regs.step),
            self.rec_layer.eq(regs.layer),
            self.rec_group.eq(regs.s1_group),
            self.rec_spikes.eq(stage.rec_spikes),
            self.rec_membranes.eq(stage.rec_membranes),
            self.sum_step.eq(regs.step),
            self.sum_layer.eq(regs.layer),
            self.sum_counters.eq(counters.sum_counters),
            self.total_counters.eq(counters.total_counters),
            self.image_cycles.eq(counters.image_cycles),
            self.prediction.eq(argmax.index),
        ]
        return m

    def _lanes(self, m):
        """The crossbar and the lanes: neuron lanes; the phase counter of weighted spikes; the INHIBIT pass's lanes
        (lateral inhibition, Lee 2016); the FS neuron lanes. Absent units are None."""
        c = self.config
        P, M = c.lanes, c.membrane_bits
        units = dict.fromkeys(("phase", "inhibit", "fs_neurons"))
        m.submodules.crossbar = units["crossbar"] = Crossbar(P, c.weight_bits, c.acc_bits, c.max_groups)
        m.submodules.neurons = units["neurons"] = NeuronLanes(P, M, c.acc_bits, c.bias_bits, c.threshold_bits,
                                                              c.phase_bits)
        if c.phase_bits:
            m.submodules.phase = units["phase"] = PhaseCounter(c.phase_bits)
        if c.inhibition:
            m.submodules.inhibit = units["inhibit"] = InhibitLanes(P, M, c.threshold_bits, c.spike_count_bits)
        if c.fs:
            m.submodules.fs_neurons = units["fs_neurons"] = FsNeuronLanes(P, M, c.acc_bits, c.bias_bits,
                                                                          c.fs_shift_bits)
        return units

    def _weight_address(self, m, passes, select, regs, bit):
        """The weight word of the current event: dense ``(word·P + bit)·G_l + g``; conv/pool passes take the
        spatial address generator's (returned too; None without spatial layers)."""
        c, addr_bits = self.config, passes.weight_addr_bits
        bit_offset = select("bit_offset", unsigned(addr_bits),
                            {l: Array(p * g for p in range(c.lanes))[bit] for l, g in passes.groups.items()})
        weight_addr = Signal(addr_bits)
        dense_addr = Signal(addr_bits)
        m.d.comb += dense_addr.eq(regs.word_base + bit_offset + regs.group)
        m.d.comb += weight_addr.eq(dense_addr)
        spatial = None
        if c.spatial:
            spatial = SpatialAddressing(m, c, passes, select, regs.pass_key, bit, regs.group, regs.mask)
            with m.If(spatial.is_spatial):
                m.d.comb += weight_addr.eq(spatial.conv_addr)
        return weight_addr, spatial

    def _config_port(self, m):
        """``cfg_open`` (driven by the FSM: configuration writes accepted, not running an image) and the
        configuration-write bus of the memories and registers."""
        cfg_open = Signal()
        cfg_we = Signal()
        m.d.comb += cfg_we.eq(self.cfg_valid & cfg_open)
        cfg_bus = config_write_signature(self.config.cfg_data_bits).create(path=("cfg_bus",))
        m.d.comb += [cfg_bus.write.eq(cfg_we), cfg_bus.addr.eq(self.cfg_addr), cfg_bus.data.eq(self.cfg_data)]
        return cfg_open, cfg_bus

    def _global_registers(self, m, cfg_bus, regs, units):
        """Global registers of weighted spikes (region 0xFF): K, S·K (the last step an 'acc' layer skips) and the
        FS stream mode; returns K (None without the phase hardware)."""
        c = self.config
        if not c.phase_bits:
            return None
        m.submodules.global_registers = glob = GlobalRegisters(c.phase_bits, c.cfg_data_bits, c.fs)
        wiring.connect(m, cfg_bus, glob.cfg)
        if c.fs:
            m.d.comb += regs.fs_run.eq(glob.fs_mode)
        phase, neurons = units["phase"], units["neurons"]
        m.d.comb += phase.phases.eq(glob.phases)
        # per-step values, registered for stage 1 (hw.neuron_stage: they change in SUMMARY or at start only)
        m.d.sync += [neurons.shift.eq(phase.shift), neurons.integrate.eq(regs.step > glob.skip_last)]
        return glob.phases

    def _argmax(self, m):
        """Running argmax of the output layer: spike counts, or (phase hardware) the membranes of an 'acc' layer;
        ranks start below every candidate, so the first lane always takes the lead."""
        c = self.config
        if c.phase_bits:
            rank_shape = signed(max(c.membrane_bits, SPIKE_COUNT_BITS + 1) + 1)
            rank_floor = -(1 << (rank_shape.width - 1))
        else:
            rank_shape, rank_floor = unsigned(SPIKE_COUNT_BITS), 0
        m.submodules.argmax = argmax = RunningArgmax(c.lanes, rank_shape, PREDICTION_BITS, rank_floor)
        return argmax

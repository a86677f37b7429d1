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
    LPAD    × C_LAYER−2  idle cycles, only when golden.cycle_model.C_LAYER asks for more than the minimum 2
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

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from golden.trace import COUNTER_NAMES

from golden import cycle_model

from .config import (IMAGE_BITS, LAYER_BITS, MIN_C_IMAGE, MIN_C_LAYER, N_COUNTERS, PREDICTION_BITS, REGION_SHIFT,
                     SPIKE_COUNT_BITS, STEP_BITS, EngineConfig)
from .crossbar import Crossbar
from .events import LowestSetBit
from .fs import FsNeuronLanes, FsTables, FsWindow
from .global_registers import GlobalRegisters
from .argmax import RunningArgmax
from .neuron import InhibitLanes, InhibitStrengths, LayerParams, NeuronControl, NeuronLanes, PhaseCounter
from .ports import config_write_signature, engine_signature

__all__ = ["NetworkEngine"]

assert len(COUNTER_NAMES) == N_COUNTERS


def _index_bits(n: int) -> int:
    """Width of an index over 0..n−1 (at least 1 so that every signal survives Verilog export)."""
    return max(1, (n - 1).bit_length())


class NetworkEngine(wiring.Component):
    """The engine of one :class:`~hw.config.EngineConfig`; Verilog module ``snn_engine`` (``hw.verilog``); its
    ports are :func:`hw.ports.engine_ports`."""

    def __init__(self, config: EngineConfig):
        if not isinstance(config, EngineConfig):
            raise TypeError(f"NetworkEngine needs an EngineConfig, got {type(config).__name__}")
        self.config = config
        super().__init__(engine_signature(config))  # the ports of hw.ports, defined once

    @staticmethod
    def _next_step(m, layer, step, n_steps, c, phase, enter_layer):
        """SUMMARY of the per-step schedule: the next layer, else the next step, else the end of the image."""
        with m.If(layer == c.n_layers):
            with m.If(step == n_steps):
                m.next = "IPAD" if c.c_image > MIN_C_IMAGE else "DONE"
            with m.Else():
                m.d.sync += [step.eq(step + 1), layer.eq(1)]
                if phase is not None:
                    m.d.comb += phase.advance.eq(1)
                enter_layer()
                m.next = "FETCH"
        with m.Else():
            m.d.sync += layer.eq(layer + 1)
            enter_layer()
            m.next = "FETCH"

    def elaborate(self, platform):
        c = self.config
        P, M, L = c.lanes, c.membrane_bits, c.n_layers
        sizes = c.layer_sizes
        G = {l: c.groups(l) for l in range(1, L + 1)}
        Wd = {l: c.words(l) for l in range(1, L + 1)}
        # residual junctions: junction l's skip pass uses the per-pass tables under key L + l (source, geometry)
        SK = {l: c.skip_of(l) for l in G if c.skip_of(l)}
        skip_keys = {L + l: l for l in SK}
        Gp = dict(G) | {k: G[l] for k, l in skip_keys.items()}
        Wp = dict(Wd) | {k: c.skip_words(l) for k, l in skip_keys.items()}
        all_lanes = (1 << P) - 1
        lanes_of = lambda shape: data.ArrayLayout(shape, P)  # noqa: E731

        m = Module()
        m.submodules.crossbar = xb = Crossbar(P, c.weight_bits, c.acc_bits, c.max_groups)
        m.submodules.neurons = nl = NeuronLanes(P, M, c.acc_bits, c.bias_bits, c.threshold_bits, c.phase_bits)
        if c.phase_bits:
            m.submodules.phase = phase = PhaseCounter(c.phase_bits)
        inh = None
        if c.inhibition:  # lateral inhibition (Lee 2016): the INHIBIT pass's lanes
            m.submodules.inhibit = inh = InhibitLanes(P, M, c.threshold_bits, c.spike_count_bits)
        if c.fs:
            m.submodules.fs_neurons = fsl = FsNeuronLanes(P, M, c.acc_bits, c.bias_bits, c.fs_shift_bits)
            m.submodules.fs_window = cur = FsWindow(L)  # the current window and layer
            m.submodules.fs_next_window = nxt = FsWindow(L)  # the window after it

        # ------------------------------------------------------------------------------------ control registers
        n_steps = Signal(STEP_BITS)
        step = Signal(STEP_BITS)  # 1-based
        layer = Signal(LAYER_BITS)  # 1-based
        word = Signal(_index_bits(max(Wp.values())))  # mask word being fetched / scanned
        addr_bits = _index_bits(max(max(Wp[k] * P * Gp[k], c.weight_words(k) if k <= L else
                                        c.skip_weight_words(k - L)) for k in Gp))
        word_base = Signal(addr_bits)  # word · P · G_l: weight address of (i = word·P, g = 0)
        mask = Signal(P)  # set bits of the current word not yet visited
        group = Signal(_index_bits(c.max_groups))
        group_base = Signal(PREDICTION_BITS)  # group · P: neuron index of lane 0
        pad = Signal(_index_bits(max(c.c_layer, c.c_image)))
        fs_run = Signal()  # the FS stream schedule (FS builds with global register GLOBAL_FS_MODE = 1)
        fire = Signal()  # FS: the current layer fires (else it collects, or the schedule is not FS)
        if c.fs:
            window = Signal(STEP_BITS)  # FS: 1-based window of the current global step, ceil(step / K)
            n_images = Signal(IMAGE_BITS)  # FS: images of the stream, sampled at start
            m.d.comb += [cur.window.eq(window), cur.n_images.eq(n_images), cur.layer.eq(layer),
                         nxt.window.eq(window + 1), nxt.n_images.eq(n_images), nxt.layer.eq(0),
                         fire.eq(fs_run & ~cur.collect)]

        # ACCUMULATE pass: the main pass (key = layer) or a junction's skip pass (key = L + layer)
        skipping = Signal()
        s1_skipping = Signal()  # stage 1 of an issue made in the skip pass (selects the skip weight memory)
        vkey = wkey = layer
        if SK:
            vkey = Signal(LAYER_BITS + 1, name="pass_key")
            wkey = Signal(LAYER_BITS + 1, name="weight_key")
            m.d.sync += s1_skipping.eq(skipping)
            m.d.comb += [vkey.eq(Mux(skipping, layer + L, layer)), wkey.eq(Mux(s1_skipping, layer + L, layer))]

        # Per-layer constants (and per-layer memory outputs) selected by `layer`: adders and muxes, no multiplier.
        def per_layer(name, shape, values, key=None):
            sig = Signal(shape, name=name)
            with m.Switch(layer if key is None else key):
                for l, value in values.items():
                    with m.Case(l):
                        m.d.comb += sig.eq(value)
            return sig

        def const_table(name, values, key=None):
            width = max(1, max(int(v) for v in values.values()).bit_length())
            return per_layer(name, unsigned(width), values, key)

        g_last = const_table("g_last", {l: G[l] - 1 for l in G})
        has_skip = const_table("has_skip", {l: int(l in SK) for l in G}) if SK else None
        w_last = const_table("w_last", {k: Wp[k] - 1 for k in Wp}, vkey)
        row_step = const_table("row_step", {l: P * G[l] for l in G})
        width = {l: c.geometry(l).c_out if c.geometry(l) else sizes[l] for l in G}  # neurons / output channels
        last_lanes = const_table("last_lanes", {l: width[l] - (G[l] - 1) * P for l in G})
        last_group_mask = const_table("last_group_mask", {l: (1 << (width[l] - (G[l] - 1) * P)) - 1 for l in G})
        last_word_mask = const_table("last_word_mask", {  # spatial sources: padding lanes are already 0
            l: all_lanes if c.spatial_source(l) else (1 << (sizes[l - 1] - (Wd[l] - 1) * P)) - 1 for l in G} | {
            k: all_lanes if c.geometry(SK[l][0]) else (1 << (sizes[SK[l][0]] - (Wp[k] - 1) * P)) - 1
            for k, l in skip_keys.items()}, vkey)

        # lowest set bit of the current mask word: the next input spike event (ascending i); mask_rest: the mask
        # without it
        m.submodules.events = events = LowestSetBit(P)
        m.d.comb += events.mask.eq(mask)
        bit, mask_rest = events.bit, events.rest
        bit_offset = per_layer("bit_offset", unsigned(addr_bits),
                               {l: Array(p * G[l] for p in range(P))[bit] for l in G})  # bit · G_l
        weight_addr = Signal(addr_bits)
        dense_addr = Signal(addr_bits)
        m.d.comb += dense_addr.eq(word_base + bit_offset + group)  # (word·P + bit)·G_l + g
        m.d.comb += weight_addr.eq(dense_addr)
        group_lanes = Signal(range(P + 1))
        m.d.comb += group_lanes.eq(Mux(group == g_last, last_lanes, P))

        # UPDATE walks the layer's state words (conv/pool: position-major, G_l channel groups each); ugroup is the
        # channel group of the word being issued (dense: = group)
        ugroup = group
        u_last = g_last
        if c.spatial:
            S = {l: c.state_words(l) for l in G}
            u_last = const_table("u_last", {l: S[l] - 1 for l in G})
            ugroup = Signal(_index_bits(max(G.values())), name="ugroup")
            spatial = {l: c.geometry(l) for l in G if c.geometry(l)} | {k: SK[l][1] for k, l in skip_keys.items()
                                                                          if SK[l][1]}  # conv skip passes
            is_spatial = const_table("is_spatial", {l: int(l in spatial) for l in Gp}, vkey)
            is_pool = const_table("is_pool", {l: int(l in spatial and spatial[l].is_pool) for l in Gp}, vkey)
            # source counters: the current mask word is position `pos`, channel group `pos_g` of the source
            src_groups = {l: -(-spatial[l].c_in // P) for l in spatial}
            pos = Signal(_index_bits(max([g.in_positions for g in spatial.values()]) + 1), name="src_pos")
            pos_g = Signal(_index_bits(max(src_groups.values())), name="src_group")
            gin_last = const_table("gin_last", {l: src_groups.get(l, 1) - 1 for l in Gp}, vkey)
            ci_step = const_table("ci_step", {l: (P * spatial[l].taps * Gp[l]
                                                  if l in spatial and not spatial[l].is_pool else 0) for l in Gp}, vkey)
            ci_base = Signal(addr_bits, name="ci_base")  # pos_g·P·kh·kw·G_l: weight address of channel pos_g·P
            entry_bits = 1
            starts, oqs, taps = {}, {}, {}
            for l, geo in spatial.items():
                table = cycle_model.reach_table(geo)
                start = [0]
                for row in table:
                    start.append(start[-1] + len(row))
                starts[l] = start
                oqs[l] = [oq * Gp[l] for row in table for oq, _ in row] or [0]
                taps[l] = [tap * Gp[l] for row in table for _, tap in row] or [0]
                entry_bits = max(entry_bits, _index_bits(start[-1] + 1))
            entry = Signal(entry_bits, name="entry")  # reach-table entry of the current (spike, position)

            def rom(name, values, addr):
                if int(name.rsplit("_", 1)[1]) > L:  # a skip pass's table: reach_*_skip<l>
                    name = f"{name.rsplit('_', 1)[0]}_skip{int(name.rsplit('_', 1)[1]) - L}"
                mem = Memory(shape=unsigned(max(1, max(values).bit_length())), depth=len(values), init=values)
                m.submodules[name] = mem
                rp = mem.read_port(domain="comb")
                m.d.comb += rp.addr.eq(addr)
                return rp.data

            reach_start = per_layer("reach_start", unsigned(entry_bits),
                                    {l: rom(f"reach_start_{l}", starts[l], pos) for l in spatial}, vkey)
            reach_end = per_layer("reach_end", unsigned(entry_bits),
                                  {l: rom(f"reach_end_{l}", starts[l][1:], pos) for l in spatial}, vkey)
            acc_bits_ = _index_bits(c.max_groups)
            entry_oq = per_layer("entry_oq", unsigned(acc_bits_),
                                 {l: rom(f"reach_oq_{l}", oqs[l], entry) for l in spatial}, vkey)
            entry_tap = per_layer("entry_tap", unsigned(addr_bits),
                                  {l: rom(f"reach_tap_{l}", taps[l], entry) for l in spatial}, vkey)
            bit_channel = per_layer("bit_channel", unsigned(addr_bits), {  # bit · kh·kw·G_l
                l: Array(p * spatial[l].taps * Gp[l] for p in range(P))[bit]
                for l in spatial if not spatial[l].is_pool}, vkey)
            conv_addr = Signal(addr_bits)
            m.d.comb += conv_addr.eq(Mux(is_pool, 0, ci_base + bit_channel + entry_tap + group))
            spatial_acc = Signal(acc_bits_)
            m.d.comb += spatial_acc.eq(entry_oq + Mux(is_pool, pos_g, group))
            with m.If(is_spatial):
                m.d.comb += weight_addr.eq(conv_addr)
            # pool EVENT: the word's set lanes (counted as ACs; stage 1 masks the pool weight word with them)
            mask_count = Signal(range(P + 1), name="mask_count")
            m.d.comb += mask_count.eq(sum(mask[p] for p in range(P)))
            pool_lanes = Signal(P, name="pool_lanes")
            m.d.sync += pool_lanes.eq(Mux(is_pool, mask, all_lanes))

        # ------------------------------------------------------------------------------------ configuration port
        cfg_open = Signal()  # configuration writes accepted (not running an image)
        cfg_we = Signal()
        region = self.cfg_addr[REGION_SHIFT:]
        index = self.cfg_addr[:REGION_SHIFT]
        m.d.comb += cfg_we.eq(self.cfg_valid & cfg_open)
        cfg_bus = config_write_signature(c.cfg_data_bits).create(path=("cfg_bus",))  # for the config registers
        m.d.comb += [cfg_bus.write.eq(cfg_we), cfg_bus.addr.eq(self.cfg_addr), cfg_bus.data.eq(self.cfg_data)]

        def cfg_memory(name, shape, depth, region_no, read_addr):
            mem = Memory(shape=shape, depth=depth, init=[])
            m.submodules[name] = mem
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [wp.addr.eq(index), wp.data.eq(self.cfg_data), rp.addr.eq(read_addr),
                         wp.en.eq(cfg_we & (region == region_no) & (index < depth))]
            return rp.data

        def state_memory(name, shape, depth, read_domain="sync"):
            mem = Memory(shape=shape, depth=depth, init=[])
            m.submodules[name] = mem
            return mem.write_port(), mem.read_port(domain=read_domain)

        weights, biases, thresholds, controls, floors = {}, {}, {}, {}, {}
        mem_write, mem_read, spk_write, spk_read = {}, {}, {}, {}
        for l in range(1, L + 1):
            base = 4 * (l - 1)
            weights[l] = cfg_memory(f"weights_{l}", lanes_of(signed(c.weight_bits)), c.weight_words(l), base,
                                    weight_addr)
            biases[l] = cfg_memory(f"bias_{l}", lanes_of(signed(c.bias_bits)), G[l], base + 1, ugroup)
            thresholds[l] = cfg_memory(f"threshold_{l}", lanes_of(unsigned(c.threshold_bits)), G[l], base + 2,
                                       ugroup)
            m.submodules[f"params_{l}"] = params = LayerParams(base + 3, M, c.cfg_data_bits)
            wiring.connect(m, cfg_bus, params.cfg)
            controls[l], floors[l] = params.control, params.floor
            if l in SK:  # the junction's skip weights: its weight region from index SKIP_WEIGHT_BASE on
                depth = c.skip_weight_words(l)
                mem = Memory(shape=lanes_of(signed(c.weight_bits)), depth=depth, init=[])
                m.submodules[f"skip_weights_{l}"] = mem
                wp, rp = mem.write_port(), mem.read_port()
                m.d.comb += [wp.addr.eq(index[:REGION_SHIFT - 1]), wp.data.eq(self.cfg_data),
                             rp.addr.eq(weight_addr),
                             wp.en.eq(cfg_we & (region == base) & index[REGION_SHIFT - 1]
                                      & (index[:REGION_SHIFT - 1] < depth))]
                weights[L + l] = rp.data
            mem_write[l], mem_read[l] = state_memory(f"membrane_{l}", lanes_of(signed(M)), c.state_words(l))
            m.d.comb += mem_read[l].addr.eq(group)
            if l < L:  # layer L's spikes go to the output counters instead
                spk_write[l], spk_read[l] = state_memory(f"spikes_{l}", unsigned(P), c.state_words(l),
                                                         read_domain="comb")
                m.d.comb += spk_read[l].addr.eq(word)
        count_write, count_read = state_memory("out_counts", lanes_of(unsigned(SPIKE_COUNT_BITS)), G[L])
        m.d.comb += count_read.addr.eq(group)

        sel_weights = per_layer("sel_weights", lanes_of(signed(c.weight_bits)), weights, wkey)
        sel_bias = per_layer("sel_bias", lanes_of(signed(c.bias_bits)), biases)
        sel_threshold = per_layer("sel_threshold", lanes_of(unsigned(c.threshold_bits)), thresholds)
        sel_membrane = per_layer("sel_membrane", lanes_of(signed(M)), {l: r.data for l, r in mem_read.items()})
        sel_control = per_layer("sel_control", NeuronControl, controls)
        sel_floor = per_layer("sel_floor", signed(M), floors)
        sel_source = per_layer("sel_source", unsigned(P), {l: spk_read[l - 1].data for l in range(2, L + 1)} | {
            k: spk_read[SK[l][0]].data for k, l in skip_keys.items()}, vkey)

        # lateral inhibition (Lee 2016; region 4(l−1)+3, index INHIBIT_BASE + g): u of group g, read at the
        # issuing group like θ; own_l keeps the lanes' spikes and UPDATE saturation flags for the INHIBIT pass
        s1_group = Signal.like(group)
        if inh is not None:
            inhibit_u, own_write, own_read = {}, {}, {}
            for l in range(1, L + 1):
                if not c.inhibits(l):
                    continue
                strengths = InhibitStrengths(4 * (l - 1) + 3, P, c.threshold_bits, G[l], c.cfg_data_bits)
                m.submodules[f"inhibit_{l}"] = strengths
                wiring.connect(m, cfg_bus, strengths.cfg)
                m.d.comb += strengths.group.eq(group)
                inhibit_u[l] = strengths.u
                own_write[l], own_read[l] = state_memory(f"own_{l}", unsigned(2 * P), G[l], read_domain="comb")
                m.d.comb += own_read[l].addr.eq(s1_group)
            sel_u = per_layer("sel_inhibit_u", lanes_of(unsigned(c.threshold_bits)), inhibit_u)
            sel_own = per_layer("sel_own", unsigned(2 * P), {l: r.data for l, r in own_read.items()})
            inhibit_on = Signal()  # the current layer runs the INHIBIT pass
            m.d.comb += inhibit_on.eq(per_layer("has_inhibit", unsigned(1), {l: 1 for l in own_read})
                                      & sel_control.inhibit)

        # FS tables (region 4(l−1)+3 at index bases 0x100 / 0x200 / 0x300): K entries each, read at the phase
        if c.fs:
            fs_thr, fs_rst, fs_wgt = {}, {}, {}
            for l in range(1, L + 1):
                tables = FsTables(4 * (l - 1) + 3, M, c.phase_bits, c.fs_shift_bits, c.cfg_data_bits,
                                  fires=l < L)  # the output layer never fires
                m.submodules[f"fs_tables_{l}"] = tables
                wiring.connect(m, cfg_bus, tables.cfg)
                m.d.comb += tables.phase.eq(phase.index)
                if l < L:
                    fs_thr[l], fs_rst[l] = tables.threshold, tables.reset
                fs_wgt[l] = tables.weight
            sel_fs_threshold = per_layer("sel_fs_threshold", signed(M), fs_thr)
            sel_fs_reset = per_layer("sel_fs_reset", signed(M), fs_rst)
            sel_fs_weight = per_layer("sel_fs_weight", unsigned(c.fs_shift_bits + 1), fs_wgt)

        # global registers of weighted spikes (region 0xFF): K and S·K, the last step an 'acc' layer skips
        if c.phase_bits:
            m.submodules.global_registers = glob = GlobalRegisters(c.phase_bits, c.cfg_data_bits, c.fs)
            wiring.connect(m, cfg_bus, glob.cfg)
            phases = glob.phases
            if c.fs:
                m.d.comb += fs_run.eq(glob.fs_mode)
            m.d.comb += [phase.phases.eq(phases), nl.shift.eq(phase.shift),
                         nl.integrate.eq(step > glob.skip_last)]

        # ------------------------------------------------------------------------------------ counters
        W = c.counter_bits
        ctr = {name: Signal(W, name=f"ctr_{name}") for name in COUNTER_NAMES if name != "macs" or inh is not None}
        totals = {name: Signal(W, name=f"total_{name}") for name in COUNTER_NAMES}
        image_cycles = Signal(W)
        # running argmax of the output layer: spike counts, or (phase hardware) the membranes of an 'acc' layer;
        # ranks start below every candidate, so the first lane always takes the lead
        if c.phase_bits:
            rank_shape = signed(max(M, SPIKE_COUNT_BITS + 1) + 1)
            rank_floor = -(1 << (rank_shape.width - 1))
        else:
            rank_shape, rank_floor = unsigned(SPIKE_COUNT_BITS), 0
        m.submodules.argmax = argmax = RunningArgmax(P, rank_shape, PREDICTION_BITS, rank_floor)
        # value of (t, l)'s counters in SUMMARY: the cycle counter has not counted SUMMARY itself yet
        summary = {name: Signal(W, name=f"sum_{name}") for name in COUNTER_NAMES}
        m.d.comb += [summary[name].eq(ctr["cycles"] + 1 if name == "cycles" else ctr.get(name, 0))
                     for name in COUNTER_NAMES]  # macs: 0 (spike input) unless the INHIBIT pass multiplies

        def count_cycle():
            m.d.sync += [ctr["cycles"].eq(ctr["cycles"] + 1), image_cycles.eq(image_cycles + 1)]

        def enter_layer():
            m.d.sync += [word.eq(0), word_base.eq(0), group.eq(0), group_base.eq(0)]
            m.d.comb += argmax.clear.eq(1)
            if c.spatial:
                m.d.sync += [pos.eq(0), pos_g.eq(0), ci_base.eq(0), ugroup.eq(0)]
            if SK:
                m.d.sync += skipping.eq(0)
            m.d.sync += [counter.eq(0) for counter in ctr.values()]

        def begin_image_on_start(otherwise=None):
            with m.If(self.start):
                m.d.sync += [n_steps.eq(self.n_steps), step.eq(1), layer.eq(1), image_cycles.eq(1), pad.eq(0)]
                if c.phase_bits:
                    m.d.comb += phase.restart.eq(1)
                m.d.sync += [total.eq(0) for total in totals.values()]
                enter_layer()
                empty = self.n_steps == 0
                if c.fs:  # FS: a stream of n_images images, image 0 entering in window 1 (n_steps is ignored)
                    m.d.sync += [window.eq(1), n_images.eq(self.n_images)]
                    empty = Mux(fs_run, self.n_images == 0, empty)
                with m.If(empty):
                    m.next = "IPAD" if c.c_image > MIN_C_IMAGE else "DONE"
                with m.Else():
                    m.next = "FETCH"
            if otherwise is not None:
                with m.Else():
                    m.next = otherwise

        def to_update():
            m.d.sync += [group.eq(0), group_base.eq(0)]
            if c.spatial:
                m.d.sync += ugroup.eq(0)
            m.next = "UPDATE"

        def next_word():
            with m.If(word == w_last):
                if SK:  # a junction's main pass is followed by its skip pass over the skip source's spike masks
                    with m.If(has_skip & ~skipping):
                        m.d.sync += [skipping.eq(1), word.eq(0), word_base.eq(0), group.eq(0)]
                        if c.spatial:
                            m.d.sync += [pos.eq(0), pos_g.eq(0), ci_base.eq(0)]
                        m.next = "FETCH"
                    with m.Else():
                        to_update()
                else:
                    to_update()
            with m.Else():
                m.d.sync += [word.eq(word + 1), word_base.eq(word_base + row_step)]
                if c.spatial:  # source word q·G_src + g: advance (pos, pos_g) without a division
                    with m.If(pos_g == gin_last):
                        m.d.sync += [pos_g.eq(0), pos.eq(pos + 1), ci_base.eq(0)]
                    with m.Else():
                        m.d.sync += [pos_g.eq(pos_g + 1), ci_base.eq(ci_base + ci_step)]
                m.next = "FETCH"

        # ------------------------------------------------------------------------------------ schedule
        s1_update = Signal()  # stage 1 of an UPDATE issue: neuron lanes see this group's operands
        s1_inhibit = Signal()  # stage 1 of an INHIBIT issue: the inhibit lanes see this group's operands
        s1_ugroup = Signal.like(ugroup, name="s1_ugroup") if c.spatial else s1_group
        s1_base = Signal(PREDICTION_BITS)
        m.d.sync += [s1_update.eq(0), s1_inhibit.eq(0)]
        m.d.comb += xb.op_group.eq(group)

        def issue_state_word(stage1, last, after):
            """One cycle of an UPDATE / INHIBIT pass: hand state word `group` to stage 1 (read there), then the next
            word, or the drain state `after` once `last` was issued."""
            m.d.comb += self.busy.eq(1)
            count_cycle()
            m.d.sync += [ctr["state_reads"].eq(ctr["state_reads"] + 1),
                         stage1.eq(1), s1_group.eq(group), s1_base.eq(group_base)]
            if c.spatial:
                m.d.sync += [s1_ugroup.eq(ugroup), ugroup.eq(Mux(ugroup == g_last, 0, ugroup + 1))]
            with m.If(group == last):
                m.d.sync += pad.eq(0)
                m.next = after
            with m.Else():
                m.d.sync += [group.eq(group + 1), group_base.eq(group_base + P)]

        with m.FSM(init="CLEAR"):
            with m.State("CLEAR"):  # after rst only: ACC[g] = 0 for every g
                m.d.comb += [self.busy.eq(1), cfg_open.eq(1), xb.op_valid.eq(1), xb.op_clear.eq(1)]
                with m.If(group == c.max_groups - 1):
                    m.d.sync += group.eq(0)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += group.eq(group + 1)

            with m.State("IDLE"):
                m.d.comb += cfg_open.eq(1)
                begin_image_on_start()

            with m.State("FETCH"):
                takes_input = Signal()  # layer 1 reads spike_in (not while an FS layer 1 fires)
                m.d.comb += [takes_input.eq((layer == 1) & ~fire), self.busy.eq(1),
                             self.spike_in_ready.eq(takes_input)]
                source = Signal(P)
                m.d.comb += source.eq(Mux(layer == 1, self.spike_in_data, sel_source)
                                      & Mux(word == w_last, last_word_mask, all_lanes) & Mux(fire, 0, all_lanes))
                with m.If(~takes_input | self.spike_in_valid):
                    count_cycle()
                    m.d.sync += mask.eq(source)
                    events = source.any()
                    if c.spatial:  # a conv/pool input position that reaches no output costs no EVENT cycle
                        events = Signal()
                        m.d.comb += events.eq(source.any() & (~is_spatial | (reach_start != reach_end)))
                        m.d.sync += entry.eq(reach_start)
                    with m.If(events):
                        m.next = "EVENT"
                    with m.Else():
                        next_word()

            with m.State("EVENT"):
                m.d.comb += [self.busy.eq(1), xb.op_valid.eq(1)]
                count_cycle()
                m.d.sync += ctr["weight_reads"].eq(ctr["weight_reads"] + 1)
                if not c.spatial:
                    m.d.sync += ctr["acs"].eq(ctr["acs"] + group_lanes)
                    with m.If(group == g_last):
                        m.d.sync += [group.eq(0), mask.eq(mask_rest)]
                        with m.If(mask_rest == 0):
                            next_word()
                    with m.Else():
                        m.d.sync += group.eq(group + 1)
                else:
                    # dense: (spike, group); conv: (spike, reached position, group); pool: (source word, reached
                    # position) in the word's own channel group, every set lane at once (one AC per set bit)
                    m.d.sync += ctr["acs"].eq(ctr["acs"] + Mux(is_pool, mask_count, group_lanes))
                    with m.If(is_spatial):
                        m.d.comb += xb.op_group.eq(spatial_acc)
                    with m.If(is_pool):
                        with m.If(entry == reach_end - 1):
                            next_word()
                        with m.Else():
                            m.d.sync += entry.eq(entry + 1)
                    with m.Elif(group == g_last):
                        m.d.sync += group.eq(0)
                        with m.If(~is_spatial | (entry == reach_end - 1)):
                            m.d.sync += [mask.eq(mask_rest), entry.eq(reach_start)]
                            with m.If(mask_rest == 0):
                                next_word()
                        with m.Else():
                            m.d.sync += entry.eq(entry + 1)
                    with m.Else():
                        m.d.sync += group.eq(group + 1)

            with m.State("UPDATE"):
                m.d.comb += [xb.op_valid.eq(1), xb.op_clear.eq(1)]
                issue_state_word(s1_update, u_last, "DRAIN")

            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                count_cycle()
                m.next = "LPAD" if c.c_layer > MIN_C_LAYER else "SUMMARY"
                if inh is not None:
                    with m.If(inhibit_on):
                        m.d.sync += [group.eq(0), group_base.eq(0)]
                        m.next = "INHIBIT"

            if inh is not None:
                with m.State("INHIBIT"):  # issue group g: membrane, θ and u read here, own bits in stage 1
                    issue_state_word(s1_inhibit, g_last, "IDRAIN")

                with m.State("IDRAIN"):
                    m.d.comb += self.busy.eq(1)
                    count_cycle()
                    m.next = "LPAD" if c.c_layer > MIN_C_LAYER else "SUMMARY"

            if c.c_layer > MIN_C_LAYER:
                with m.State("LPAD"):
                    m.d.comb += self.busy.eq(1)
                    count_cycle()
                    m.d.sync += pad.eq(pad + 1)
                    with m.If(pad == c.c_layer - MIN_C_LAYER - 1):
                        m.next = "SUMMARY"

            with m.State("SUMMARY"):
                m.d.comb += [self.busy.eq(1), self.sum_valid.eq(1)]
                m.d.sync += image_cycles.eq(image_cycles + 1)
                m.d.sync += [totals[name].eq(totals[name] + summary[name]) for name in COUNTER_NAMES]
                m.d.sync += pad.eq(0)
                if c.fs:
                    # FS stream: the next working layer of this window, else the next step (idle layers cost
                    # nothing), else the end of the stream
                    with m.If(fs_run):
                        m.d.comb += self.pred_valid.eq((layer == L) & phase.last)
                        with m.If(layer < cur.last):
                            m.d.sync += layer.eq(layer + 1)
                            enter_layer()
                            m.next = "FETCH"
                        with m.Elif(~phase.last):
                            m.d.sync += [step.eq(step + 1), layer.eq(cur.first)]
                            m.d.comb += phase.advance.eq(1)
                            enter_layer()
                            m.next = "FETCH"
                        with m.Elif(cur.final):
                            m.next = "IPAD" if c.c_image > MIN_C_IMAGE else "DONE"
                        with m.Else():
                            m.d.comb += phase.advance.eq(1)
                            enter_layer()
                            m.next = "FETCH"
                            if L == 1:  # every even window is empty: skip its K steps (window + 2 is in the stream)
                                with m.If(nxt.empty):
                                    m.d.sync += [step.eq(step + 1 + phases), window.eq(window + 2), layer.eq(1)]
                                with m.Else():
                                    m.d.sync += [step.eq(step + 1), window.eq(window + 1), layer.eq(nxt.first)]
                            else:
                                m.d.sync += [step.eq(step + 1), window.eq(window + 1), layer.eq(nxt.first)]
                    with m.Else():
                        self._next_step(m, layer, step, n_steps, c, phase, enter_layer)
                else:
                    self._next_step(m, layer, step, n_steps, c, phase if c.phase_bits else None, enter_layer)

            if c.c_image > MIN_C_IMAGE:
                with m.State("IPAD"):
                    m.d.comb += self.busy.eq(1)
                    m.d.sync += [image_cycles.eq(image_cycles + 1), pad.eq(pad + 1)]
                    with m.If(pad == c.c_image - MIN_C_IMAGE - 1):
                        m.next = "DONE"

            with m.State("DONE"):
                m.d.comb += [self.done.eq(1), cfg_open.eq(1)]
                begin_image_on_start(otherwise="IDLE")

        # ------------------------------------------------------------------------------------ stage 1: neurons
        first = Signal()  # t = 1: stored membranes and output counts belong to an earlier image; read as 0
        m.d.comb += first.eq(step == 1)
        m.d.comb += [
            nl.v.eq(Mux(first, 0, sel_membrane.as_value())),
            nl.acc.eq(xb.acc),
            nl.bias.eq(sel_bias),
            nl.threshold.eq(sel_threshold),
            nl.control.eq(sel_control),
            nl.floor.eq(sel_floor),
        ]
        if c.spatial and any(geo.is_pool for geo in spatial.values()):  # pool: Mux(mask bit, pool weight, 0) per lane
            for p in range(P):
                m.d.comb += xb.weights[p].eq(Mux(pool_lanes[p], sel_weights[p], 0))
        else:
            m.d.comb += xb.weights.eq(sel_weights)
        v_out, lane_spikes, lane_saturated = nl.v_out, nl.spikes, nl.saturated
        if c.fs:  # FS schedule: the FS lanes (COLLECT / FIRE with the layer's table entry of this phase)
            m.d.comb += [
                fsl.v.eq(sel_membrane), fsl.acc.eq(xb.acc), fsl.bias.eq(sel_bias),
                fsl.threshold.eq(sel_fs_threshold), fsl.reset.eq(sel_fs_reset),
                fsl.shift.eq(sel_fs_weight[:c.fs_shift_bits]), fsl.negative.eq(sel_fs_weight[c.fs_shift_bits]),
                fsl.collect.eq(~fire), fsl.first.eq(phase.index == 0),
            ]
            v_out = Signal(lanes_of(signed(M)))
            lane_spikes, lane_saturated = Signal(P), Signal(P)
            m.d.comb += [v_out.eq(Mux(fs_run, fsl.v_out.as_value(), nl.v_out.as_value())),
                         lane_spikes.eq(Mux(fs_run, fsl.spikes, nl.spikes)),
                         lane_saturated.eq(Mux(fs_run, fsl.saturated, nl.saturated))]
        lane_valid = Signal(P)
        spikes = Signal(P)
        saturated = Signal(P)
        s1_last = Signal()
        m.d.comb += [
            s1_last.eq(s1_ugroup == g_last),
            lane_valid.eq(Mux(s1_last, last_group_mask, all_lanes)),
            spikes.eq(lane_spikes & lane_valid),
            saturated.eq(lane_saturated & lane_valid),
        ]
        rec_spikes, rec_membranes, rec_valid = spikes, v_out, s1_update
        if inh is not None:
            own_spikes, own_saturated = sel_own[:P], sel_own[P:]
            m.d.comb += [inh.v.eq(sel_membrane), inh.own.eq(own_spikes), inh.n.eq(ctr["spikes"]),
                         inh.u.eq(sel_u), inh.threshold.eq(sel_threshold), inh.control.eq(sel_control),
                         inh.floor.eq(sel_floor)]
            inh_v = Signal(lanes_of(signed(M)))
            m.d.comb += inh_v.eq(Mux(s1_inhibit, inh.v_out.as_value(), v_out.as_value()))
            for l in own_write:
                m.d.comb += [own_write[l].addr.eq(s1_group), own_write[l].data.eq(Cat(spikes, saturated)),
                             own_write[l].en.eq(s1_update & (layer == l))]
            rec_spikes, rec_membranes = Signal(P), inh_v
            rec_valid = Signal()
            m.d.comb += [rec_spikes.eq(Mux(s1_inhibit, own_spikes, spikes)),
                         rec_valid.eq((s1_update & ~inhibit_on) | s1_inhibit)]
            inh_active, inh_new_sat = Signal(P), Signal(P)
            m.d.comb += [inh_active.eq(inh.active & lane_valid),
                         inh_new_sat.eq(inh.saturated & lane_valid & ~own_saturated)]
            with m.If(s1_inhibit):  # one MAC per lane with m > 0; a neuron saturates at most once per step
                m.d.sync += [
                    ctr["macs"].eq(ctr["macs"] + sum(inh_active[p] for p in range(P))),
                    ctr["saturations"].eq(ctr["saturations"] + sum(inh_new_sat[p] for p in range(P))),
                    ctr["state_writes"].eq(ctr["state_writes"] + 1),
                ]
        for l in range(1, L + 1):
            writes = [(mem_write[l], rec_membranes, s1_update | s1_inhibit)]
            writes += [(spk_write[l], spikes, s1_update)] if l < L else []
            for wp, value, enable in writes:
                m.d.comb += [wp.addr.eq(s1_group), wp.data.eq(value), wp.en.eq(enable & (layer == l))]
        new_count = Signal(lanes_of(unsigned(SPIKE_COUNT_BITS)))
        for p in range(P):
            m.d.comb += new_count[p].eq(Mux(first, 0, count_read.data[p]) + spikes[p])
        m.d.comb += [count_write.addr.eq(s1_group), count_write.data.eq(new_count),
                     count_write.en.eq(s1_update & (layer == L))]

        # running argmax over the output ranks of the current step (strictly greater: ties keep the lowest index);
        # after the last step's UPDATE of layer L it holds the argmax of the final counts / membranes
        ranks = [new_count[p] for p in range(P)]
        if c.phase_bits:
            ranks = [Mux(controls[L].acc, v_out[p], new_count[p]) for p in range(P)]
        m.d.comb += [argmax.ranks[p].eq(ranks[p]) for p in range(P)]
        m.d.comb += [argmax.valid.eq(lane_valid), argmax.base.eq(s1_base), argmax.update.eq(s1_update & (layer == L))]

        with m.If(s1_update):
            m.d.sync += [
                ctr["spikes"].eq(ctr["spikes"] + sum(spikes[p] for p in range(P))),
                ctr["saturations"].eq(ctr["saturations"] + sum(saturated[p] for p in range(P))),
                ctr["state_writes"].eq(ctr["state_writes"] + 1),
                ctr["neuron_updates"].eq(ctr["neuron_updates"] + Mux(s1_last, last_lanes, P)),
            ]

        # ------------------------------------------------------------------------------------ outputs
        m.d.comb += [
            self.rec_valid.eq(rec_valid),
            self.rec_step.eq(step),
            self.rec_layer.eq(layer),
            self.rec_group.eq(s1_group),
            self.rec_spikes.eq(rec_spikes),
            self.rec_membranes.eq(rec_membranes),
            self.sum_step.eq(step),
            self.sum_layer.eq(layer),
            self.sum_counters.eq(Cat(*(summary[n] for n in COUNTER_NAMES))),
            self.total_counters.eq(Cat(*(totals[n] for n in COUNTER_NAMES))),
            self.image_cycles.eq(image_cycles),
            self.prediction.eq(argmax.index),
        ]
        if c.fs:
            m.d.comb += self.pred_image.eq(cur.image)
        return m

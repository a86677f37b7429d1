"""The spatial address generator of conv2d / avgpool2d layers (docs/architecture.md, "Convolution"): which output
positions, weight words and accumulator words the EVENT pass visits for one set source bit (conv) or one non-empty
source word (pool), from a constant reach-table ROM per spatial pass.

The current source spike-mask word is position ``source_position``, channel group ``source_group`` of the source
(advanced word by word without a division). Per source position the reach table lists the reached output
positions ``oq`` and kernel taps; ``entry`` walks them from ``reach_start`` to ``reach_end − 1``. A conv EVENT of
(bit, entry, group g) adds weight word ``channel_base + bit·kh·kw·G + tap·G + g`` into accumulator word
``oq·G + g``; a pool EVENT adds the pool weight, masked per lane by the word's set bits (``pool_lanes``, stage 1),
into ``oq·G + source_group``.
"""

from __future__ import annotations

from amaranth.hdl import Array, Mux, Signal, unsigned
from amaranth.lib.memory import Memory

from golden.core import cycle_model

from .layer_tables import index_bits

__all__ = ["SpatialAddressing"]


class SpatialAddressing:
    """Adds the spatial address generator of ``config`` (an :class:`~hw.config.EngineConfig` with ``spatial``) to
    module ``m``. ``passes`` is the :class:`~hw.layer_tables.PassLayout`, ``select`` the
    :class:`~hw.layer_tables.LayerSelect`; ``pass_key`` the current ACCUMULATE pass, ``bit`` the current event's
    lane, ``group`` the EVENT's channel group and ``mask`` the current spike-mask word."""

    def __init__(self, m, config, passes, select, pass_key, bit, group, mask):
        self.m, self.config, self.passes, self.pass_key = m, config, passes, pass_key
        P, groups = config.lanes, passes.pass_groups
        # the geometry of every spatial pass: conv/pool layers, and the conv skips of residual junctions
        self.geometries = geometries = {l: config.geometry(l) for l in passes.groups if config.geometry(l)} | {
            k: passes.skips[l][1] for k, l in passes.skip_passes.items() if passes.skips[l][1]}
        self.has_pool = any(geo.is_pool for geo in geometries.values())
        self.is_spatial = select.constant("is_spatial", {l: int(l in geometries) for l in groups}, pass_key)
        self.is_pool = select.constant(
            "is_pool", {l: int(l in geometries and geometries[l].is_pool) for l in groups}, pass_key)
        source_groups = {l: -(-geometries[l].c_in // P) for l in geometries}
        self.source_position = Signal(index_bits(max([g.in_positions for g in geometries.values()]) + 1),
                                      name="src_pos")
        self.source_group = Signal(index_bits(max(source_groups.values())), name="src_group")
        self.source_group_last = select.constant(
            "gin_last", {l: source_groups.get(l, 1) - 1 for l in groups}, pass_key)
        self.channel_step = select.constant("ci_step", {  # P·kh·kw·G_l: weight words of P input channels
            l: (P * geometries[l].taps * groups[l] if l in geometries and not geometries[l].is_pool else 0)
            for l in groups}, pass_key)
        # source_group·P·kh·kw·G_l: weight address of input channel source_group·P
        self.channel_base = Signal(passes.weight_addr_bits, name="ci_base")
        self._reach_tables(select, bit, group)
        # pool EVENT: the word's set lanes (counted as ACs; stage 1 masks the pool weight word with them)
        self.mask_count = Signal(range(P + 1), name="mask_count")
        m.d.comb += self.mask_count.eq(sum(mask[p] for p in range(P)))
        self.pool_lanes = Signal(P, name="pool_lanes")
        m.d.sync += self.pool_lanes.eq(Mux(self.is_pool, mask, (1 << P) - 1))

    def _reach_tables(self, select, bit, group):
        """The reach-table ROMs and the addresses of the current (bit, entry, group): ``conv_addr`` (the weight
        word; 0 for pool) and ``acc_group`` (the accumulator word)."""
        m, config, passes, key = self.m, self.config, self.passes, self.pass_key
        P, L, groups, addr_bits = config.lanes, passes.n_layers, passes.pass_groups, passes.weight_addr_bits
        entry_bits = 1
        starts, positions, taps = {}, {}, {}
        for l, geo in self.geometries.items():
            table = cycle_model.reach_table(geo)
            start = [0]
            for row in table:
                start.append(start[-1] + len(row))
            starts[l] = start
            positions[l] = [oq * groups[l] for row in table for oq, _ in row] or [0]
            taps[l] = [tap * groups[l] for row in table for _, tap in row] or [0]
            entry_bits = max(entry_bits, index_bits(start[-1] + 1))
        self.entry = entry = Signal(entry_bits, name="entry")  # reach-table entry of the current (spike, position)

        def rom(kind, l, values, addr):
            name = f"reach_{kind}_{l}" if l <= L else f"reach_{kind}_skip{l - L}"  # a skip pass's table
            mem = Memory(shape=unsigned(max(1, max(values).bit_length())), depth=len(values), init=values)
            m.submodules[name] = mem
            port = mem.read_port(domain="comb")
            m.d.comb += port.addr.eq(addr)
            return port.data

        position = self.source_position
        self.reach_start = select("reach_start", unsigned(entry_bits),
                                  {l: rom("start", l, starts[l], position) for l in self.geometries}, key)
        self.reach_end = select("reach_end", unsigned(entry_bits),
                                {l: rom("end", l, starts[l][1:], position) for l in self.geometries}, key)
        acc_bits = index_bits(config.max_groups)
        entry_position = select("entry_oq", unsigned(acc_bits),
                                {l: rom("oq", l, positions[l], entry) for l in self.geometries}, key)
        entry_tap = select("entry_tap", unsigned(addr_bits),
                           {l: rom("tap", l, taps[l], entry) for l in self.geometries}, key)
        bit_channel = select("bit_channel", unsigned(addr_bits), {  # bit · kh·kw·G_l
            l: Array(p * geo.taps * groups[l] for p in range(P))[bit]
            for l, geo in self.geometries.items() if not geo.is_pool}, key)
        self.conv_addr = Signal(addr_bits)
        m.d.comb += self.conv_addr.eq(Mux(self.is_pool, 0, self.channel_base + bit_channel + entry_tap + group))
        self.acc_group = Signal(acc_bits, name="spatial_acc")
        m.d.comb += self.acc_group.eq(entry_position + Mux(self.is_pool, self.source_group, group))

    def reaches(self):
        """1 unless the current pass is spatial and the current source position reaches no output."""
        return ~self.is_spatial | (self.reach_start != self.reach_end)

    def last_entry(self):
        return self.entry == self.reach_end - 1

    def restart(self):
        """The pass starts at source position 0, channel group 0."""
        self.m.d.sync += [self.source_position.eq(0), self.source_group.eq(0), self.channel_base.eq(0)]

    def next_word(self):
        """Source word q·G_src + g → the next one: advance (position, channel group) without a division."""
        m = self.m
        with m.If(self.source_group == self.source_group_last):
            m.d.sync += [self.source_group.eq(0), self.source_position.eq(self.source_position + 1),
                         self.channel_base.eq(0)]
        with m.Else():
            m.d.sync += [self.source_group.eq(self.source_group + 1),
                         self.channel_base.eq(self.channel_base + self.channel_step)]

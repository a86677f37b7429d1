"""The engine's per-layer memories and registers, and the current layer's view of them (docs/architecture.md,
"Ports": cfg_addr; docs/hardware.md, "Memories").

Written through the configuration port, layer l's regions ``4(l−1) + 0..3``: weights (and a junction's skip
weights from index ``SKIP_WEIGHT_BASE``), biases, thresholds θ, and the params region (neuron params and floor,
WTA strengths u, FS tables). Written by the engine: the membranes, the spike masks of the hidden layers, the output
spike counts and, with lateral inhibition, each inhibited layer's own spikes and saturation flags of the step.
"""

from __future__ import annotations

from amaranth.hdl import Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from golden.core.register_map import REGION_SHIFT

from .config import SPIKE_COUNT_BITS
from .fs import FsTables
from .neuron import InhibitStrengths, LayerParams, NeuronControl

__all__ = ["LayerMemories"]


class LayerMemories:
    """Adds the memories of ``config`` (:class:`~hw.config.EngineConfig`) to module ``m``. ``passes`` is the
    :class:`~hw.layer_tables.PassLayout`, ``cfg`` the configuration-write bus (:func:`hw.ports.config_write_signature`,
    driven by the engine). The ``build_*`` methods add the memories, ``select`` the multiplexers that give the
    current layer's read data (``sel_*`` signals)."""

    def __init__(self, m, config, passes, cfg):
        self.m, self.config, self.passes, self.cfg = m, config, passes, cfg
        self.region = cfg.addr[REGION_SHIFT:]
        self.index = cfg.addr[:REGION_SHIFT]

    def lanes_of(self, shape):
        return data.ArrayLayout(shape, self.config.lanes)

    def _config_memory(self, name, shape, depth, region, read_addr):
        """A memory written at ``index < depth`` of configuration region ``region``, read (sync) at ``read_addr``."""
        m, cfg = self.m, self.cfg
        mem = Memory(shape=shape, depth=depth, init=[])
        m.submodules[name] = mem
        wp, rp = mem.write_port(), mem.read_port()
        m.d.comb += [wp.addr.eq(self.index), wp.data.eq(cfg.data), rp.addr.eq(read_addr),
                     wp.en.eq(cfg.write & (self.region == region) & (self.index < depth))]
        return rp.data

    def _state_memory(self, name, shape, depth, read_domain="sync"):
        mem = Memory(shape=shape, depth=depth, init=[])
        self.m.submodules[name] = mem
        return mem.write_port(), mem.read_port(domain=read_domain)

    def _skip_weights(self, l, region, weight_addr):
        """Junction l's skip weights: its weight region from index SKIP_WEIGHT_BASE on."""
        m, cfg, index = self.m, self.cfg, self.index
        depth = self.config.skip_weight_words(l)
        mem = Memory(shape=self.lanes_of(signed(self.config.weight_bits)), depth=depth, init=[])
        m.submodules[f"skip_weights_{l}"] = mem
        wp, rp = mem.write_port(), mem.read_port()
        m.d.comb += [wp.addr.eq(index[:REGION_SHIFT - 1]), wp.data.eq(cfg.data), rp.addr.eq(weight_addr),
                     wp.en.eq(cfg.write & (self.region == region) & index[REGION_SHIFT - 1]
                              & (index[:REGION_SHIFT - 1] < depth))]
        return rp.data

    def build_layers(self, weight_addr, state_group, group, word):
        """Every layer's memories. Weights are read at ``weight_addr``, biases and θ at ``state_group`` (the UPDATE
        word's channel group), membranes and output counts at ``group`` (the issued state word), spike masks
        (combinationally) at ``word``."""
        m, c, L, P = self.m, self.config, self.passes.n_layers, self.config.lanes
        groups = self.passes.groups
        self.weights, self.biases, self.thresholds, self.controls, self.floors = {}, {}, {}, {}, {}
        self.membrane_write, self.membrane_read, self.spikes_write, self.spikes_read = {}, {}, {}, {}
        for l in range(1, L + 1):
            base = 4 * (l - 1)
            self.weights[l] = self._config_memory(f"weights_{l}", self.lanes_of(signed(c.weight_bits)),
                                                  c.weight_words(l), base, weight_addr)
            self.biases[l] = self._config_memory(f"bias_{l}", self.lanes_of(signed(c.bias_bits)), groups[l],
                                                 base + 1, state_group)
            self.thresholds[l] = self._config_memory(f"threshold_{l}", self.lanes_of(unsigned(c.threshold_bits)),
                                                     groups[l], base + 2, state_group)
            m.submodules[f"params_{l}"] = params = LayerParams(base + 3, c.membrane_bits, c.cfg_data_bits)
            wiring.connect(m, self.cfg, params.cfg)
            self.controls[l], self.floors[l] = params.control, params.floor
            if l in self.passes.skips:
                self.weights[L + l] = self._skip_weights(l, base, weight_addr)
            self.membrane_write[l], self.membrane_read[l] = self._state_memory(
                f"membrane_{l}", self.lanes_of(signed(c.membrane_bits)), c.state_words(l))
            m.d.comb += self.membrane_read[l].addr.eq(group)
            if l < L:  # layer L's spikes go to the output counters instead
                self.spikes_write[l], self.spikes_read[l] = self._state_memory(
                    f"spikes_{l}", unsigned(P), c.state_words(l), read_domain="comb")
                m.d.comb += self.spikes_read[l].addr.eq(word)
        self.count_write, self.count_read = self._state_memory(
            "out_counts", self.lanes_of(unsigned(SPIKE_COUNT_BITS)), groups[L])
        m.d.comb += self.count_read.addr.eq(group)

    def select(self, select, weight_key, pass_key):
        """The current layer's (weights: the pass of the issue in stage 1; source masks: the current pass) read
        data and registers."""
        c, L = self.config, self.passes.n_layers
        self.sel_weights = select("sel_weights", self.lanes_of(signed(c.weight_bits)), self.weights, weight_key)
        self.sel_bias = select("sel_bias", self.lanes_of(signed(c.bias_bits)), self.biases)
        self.sel_threshold = select("sel_threshold", self.lanes_of(unsigned(c.threshold_bits)), self.thresholds)
        self.sel_membrane = select("sel_membrane", self.lanes_of(signed(c.membrane_bits)),
                                   {l: r.data for l, r in self.membrane_read.items()})
        self.sel_control = select("sel_control", NeuronControl, self.controls)
        self.sel_floor = select("sel_floor", signed(c.membrane_bits), self.floors)
        self.sel_source = select("sel_source", unsigned(c.lanes), {
            l: self.spikes_read[l - 1].data for l in range(2, L + 1)} | {
            k: self.spikes_read[self.passes.skips[l][0]].data for k, l in self.passes.skip_passes.items()}, pass_key)

    def build_inhibition(self, select, group, s1_group):
        """Lateral inhibition (Lee 2016; region 4(l−1)+3, index INHIBIT_BASE + g): u of group g, read at the issuing
        ``group`` like θ; ``own_l`` keeps the lanes' spikes and UPDATE saturation flags for the INHIBIT pass, read
        at stage 1's ``s1_group``. ``inhibit_on``: the current layer runs the INHIBIT pass."""
        m, c, P = self.m, self.config, self.config.lanes
        inhibit_u, self.own_write, own_read = {}, {}, {}
        for l in range(1, self.passes.n_layers + 1):
            if not c.inhibits(l):
                continue
            strengths = InhibitStrengths(4 * (l - 1) + 3, P, c.threshold_bits, self.passes.groups[l],
                                         c.cfg_data_bits)
            m.submodules[f"inhibit_{l}"] = strengths
            wiring.connect(m, self.cfg, strengths.cfg)
            m.d.comb += strengths.group.eq(group)
            inhibit_u[l] = strengths.u
            self.own_write[l], own_read[l] = self._state_memory(f"own_{l}", unsigned(2 * P), self.passes.groups[l],
                                                                read_domain="comb")
            m.d.comb += own_read[l].addr.eq(s1_group)
        self.sel_u = select("sel_inhibit_u", self.lanes_of(unsigned(c.threshold_bits)), inhibit_u)
        self.sel_own = select("sel_own", unsigned(2 * P), {l: r.data for l, r in own_read.items()})
        self.inhibit_on = inhibit_on = Signal(name="inhibit_on")
        m.d.comb += inhibit_on.eq(select("has_inhibit", unsigned(1), {l: 1 for l in own_read})
                                  & self.sel_control.inhibit)

    def build_fs_tables(self, select, phase_index):
        """FS tables (region 4(l−1)+3 at index bases 0x100 / 0x200 / 0x300): K entries each, read at the phase."""
        m, c, L = self.m, self.config, self.passes.n_layers
        fs_threshold, fs_reset, fs_weight = {}, {}, {}
        for l in range(1, L + 1):
            tables = FsTables(4 * (l - 1) + 3, c.membrane_bits, c.phase_bits, c.fs_shift_bits, c.cfg_data_bits,
                              fires=l < L)  # the output layer never fires
            m.submodules[f"fs_tables_{l}"] = tables
            wiring.connect(m, self.cfg, tables.cfg)
            m.d.comb += tables.phase.eq(phase_index)
            if l < L:
                fs_threshold[l], fs_reset[l] = tables.threshold, tables.reset
            fs_weight[l] = tables.weight
        self.sel_fs_threshold = select("sel_fs_threshold", signed(c.membrane_bits), fs_threshold)
        self.sel_fs_reset = select("sel_fs_reset", signed(c.membrane_bits), fs_reset)
        self.sel_fs_weight = select("sel_fs_weight", unsigned(c.fs_shift_bits + 1), fs_weight)

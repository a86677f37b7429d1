"""The engine's per-layer tables: the sizes of every ACCUMULATE pass (:class:`PassLayout`), the multiplexers that
pick a per-layer constant or signal for the current layer or pass (:class:`LayerSelect`) and the schedule's
constant tables (:class:`LayerConstants`). Adders and muxes only: no table is indexed by a multiplier."""

from __future__ import annotations

from amaranth.hdl import Mux, Signal, unsigned

__all__ = ["PassLayout", "LayerSelect", "LayerConstants", "index_bits"]


def index_bits(n: int) -> int:
    """Width of an index over 0..n−1 (at least 1 so that every signal survives Verilog export)."""
    return max(1, (n - 1).bit_length())


class PassLayout:
    """The sizes the schedule walks, per layer and per ACCUMULATE pass, of one :class:`~hw.config.EngineConfig`.

    Pass key ``l`` (1..L) is layer l's main pass; residual junction ``l``'s skip pass (over its skip source's spike
    masks, with its own weight memory) has key ``L + l``: ``skip_passes`` maps those keys back to ``l``."""

    def __init__(self, config):
        c = config
        self.n_layers = L = c.n_layers
        self.groups = {l: c.groups(l) for l in range(1, L + 1)}  # G_l: lane (channel) groups
        self.words = {l: c.words(l) for l in self.groups}  # W_l: source spike-mask words
        self.skips = {l: c.skip_of(l) for l in self.groups if c.skip_of(l)}  # junction -> (source, geometry)
        self.skip_passes = {L + l: l for l in self.skips}
        self.pass_groups = dict(self.groups) | {k: self.groups[l] for k, l in self.skip_passes.items()}
        self.pass_words = dict(self.words) | {k: c.skip_words(l) for k, l in self.skip_passes.items()}
        P = c.lanes
        # weight addresses: (word·P + bit)·G_l + g of every pass, and the depth of every weight memory
        self.weight_addr_bits = index_bits(max(
            max(self.pass_words[k] * P * self.pass_groups[k],
                c.weight_words(k) if k <= L else c.skip_weight_words(k - L))
            for k in self.pass_groups))


class LayerSelect:
    """Adds to module ``m`` one multiplexer per call: the value of the current layer (``layer``) or pass (``key``)
    out of a ``{layer or pass key: value}`` table of constants or signals."""

    def __init__(self, m, layer):
        self.m, self.layer = m, layer

    def __call__(self, name, shape, values, key=None):
        selected = Signal(shape, name=name)
        with self.m.Switch(self.layer if key is None else key):
            for l, value in values.items():
                with self.m.Case(l):
                    self.m.d.comb += selected.eq(value)
        return selected

    def constant(self, name, values, key=None):
        """A table of non-negative integers, as narrow as its largest entry."""
        width = max(1, max(int(v) for v in values.values()).bit_length())
        return self(name, unsigned(width), values, key)


class LayerConstants:
    """The schedule's constant per-layer tables of ``config``, selected by the current layer (``*_word_*``,
    ``w_last``: by the current pass ``pass_key``), added to the module of ``select``:

    ``g_last`` (G_l − 1), ``u_last`` (the layer's last state word: G_l − 1, or h_out·w_out·G_l − 1 for
    conv/pool), ``w_last`` (W − 1 of the pass), ``row_step`` (P·G_l: weight words of one source word),
    ``last_lanes`` and ``last_group_mask`` (the lanes of the last group that hold neurons / channels),
    ``last_word_mask`` (the lanes of the pass's last source word that hold neurons; spatial sources: all, their
    padding lanes are 0 already), ``has_skip`` (junctions; None without residual junctions), and ``group_lanes``
    (the lanes of ``group``)."""

    def __init__(self, select, config, passes, pass_key, group):
        c, P = config, config.lanes
        groups, pass_words, skips = passes.groups, passes.pass_words, passes.skips
        sizes = c.layer_sizes
        all_lanes = (1 << P) - 1
        self.g_last = select.constant("g_last", {l: groups[l] - 1 for l in groups})
        self.has_skip = select.constant("has_skip", {l: int(l in skips) for l in groups}) if skips else None
        self.w_last = select.constant("w_last", {k: pass_words[k] - 1 for k in pass_words}, pass_key)
        self.row_step = select.constant("row_step", {l: P * groups[l] for l in groups})
        width = {l: c.geometry(l).c_out if c.geometry(l) else sizes[l] for l in groups}  # neurons / channels
        self.last_lanes = select.constant("last_lanes", {l: width[l] - (groups[l] - 1) * P for l in groups})
        self.last_group_mask = select.constant(
            "last_group_mask", {l: (1 << (width[l] - (groups[l] - 1) * P)) - 1 for l in groups})
        self.last_word_mask = select.constant("last_word_mask", {
            l: all_lanes if c.spatial_source(l) else (1 << (sizes[l - 1] - (passes.words[l] - 1) * P)) - 1
            for l in groups} | {
            k: all_lanes if c.geometry(skips[l][0]) else (1 << (sizes[skips[l][0]] - (pass_words[k] - 1) * P)) - 1
            for k, l in passes.skip_passes.items()}, pass_key)
        self.group_lanes = Signal(range(P + 1), name="group_lanes")
        select.m.d.comb += self.group_lanes.eq(Mux(group == self.g_last, self.last_lanes, P))
        self.u_last = self.g_last
        if c.spatial:
            self.u_last = select.constant("u_last", {l: c.state_words(l) - 1 for l in groups})

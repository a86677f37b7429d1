"""The engine's memory map: every memory of one :class:`~hw.config.EngineConfig` build with its depth and width
(``EngineConfig.memories``; docs/hardware.md, "Resources")."""

from __future__ import annotations

from golden.core import cycle_model

from .config import SPIKE_COUNT_BITS

__all__ = ["engine_memories"]


def engine_memories(config) -> list[tuple[str, int, int]]:
    """``(name, depth, width)`` of every memory of the engine (docs/hardware.md, "Resources")."""
    P, M = config.lanes, config.membrane_bits
    out = []
    for l in range(1, config.n_layers + 1):
        G = config.groups(l)
        S = config.state_words(l)
        out += [(f"weights_{l}", config.weight_words(l), P * config.weight_bits),
                (f"bias_{l}", G, P * config.bias_bits), (f"threshold_{l}", G, P * config.threshold_bits),
                (f"membrane_{l}", S, P * M)]
        if l < config.n_layers:
            out.append((f"spikes_{l}", S, P))
        if config.inhibits(l):
            out += [(f"inhibit_{l}", G, P * config.threshold_bits), (f"own_{l}", G, 2 * P)]
        if config.fs:
            K = config.max_phases
            if l < config.n_layers:
                out += [(f"fs_threshold_{l}", K, M), (f"fs_reset_{l}", K, M)]
            out.append((f"fs_weight_{l}", K, config.fs_shift_bits + 1))
    for l in range(1, config.n_layers + 1):  # residual junctions: the skip pass's weights
        if config.skip_of(l):
            out.append((f"skip_weights_{l}", config.skip_weight_words(l), P * config.weight_bits))
    for l in range(1, config.n_layers + 1):  # conv/pool geometry ROMs (constants of the build)
        geo = config.geometry(l)
        if geo:
            entries = max(1, sum(len(row) for row in cycle_model.reach_table(geo)))
            index_bits = max(1, entries.bit_length())
            out += [(f"reach_start_{l}", geo.in_positions + 1, index_bits),
                    (f"reach_end_{l}", geo.in_positions, index_bits),
                    (f"reach_oq_{l}", entries, max(1, (geo.out_positions * config.groups(l)).bit_length())),
                    (f"reach_tap_{l}", entries, max(1, (geo.taps * config.groups(l)).bit_length()))]
    out += [("out_counts", config.groups(config.n_layers), P * SPIKE_COUNT_BITS),
            ("acc", config.max_groups, P * config.acc_bits)]
    return out

"""Literal connectivity of the integer layers, written from docs/spec.md without torch: shared by the slow
pure-Python references of the golden-model tests (rate/IF in test_golden_sim.py, weighted spikes in
test_golden_weighted.py)."""

from __future__ import annotations


def connections(layer, j: int):
    """Literal connectivity of output neuron j: list of (input index or None for a padded tap, weight)."""
    if layer.kind == "dense":
        return [(i, int(layer.weight[j][i])) for i in range(layer.n_in)]
    c_in, h, w = layer.in_shape
    c_out, ho, wo = layer.out_shape
    co, rest = divmod(j, ho * wo)
    oy, ox = divmod(rest, wo)
    taps = []
    if layer.kind == "conv2d":
        _, _, kh, kw = layer.weight.shape
        for ci in range(c_in):
            for ky in range(kh):
                for kx in range(kw):
                    iy = oy * layer.stride[0] - layer.padding[0] + ky
                    ix = ox * layer.stride[1] - layer.padding[1] + kx
                    inside = 0 <= iy < h and 0 <= ix < w
                    taps.append(((ci * h + iy) * w + ix if inside else None, int(layer.weight[co][ci][ky][kx])))
    else:  # average pool: same channel, weight layer.weight
        for ky in range(layer.kernel[0]):
            for kx in range(layer.kernel[1]):
                iy, ix = oy * layer.stride[0] + ky, ox * layer.stride[1] + kx
                taps.append(((co * h + iy) * w + ix, int(layer.weight)))
    return taps


def per_neuron_value(layer, array, j):
    if layer.kind == "dense":
        return int(array[j])
    _, ho, wo = layer.out_shape
    return int(array[j // (ho * wo)])


def pool_word_events(layer, x, lanes: int) -> int:
    """R_w of an avgpool2d layer, literally: for every source mask word (position q, channels g·P..g·P+P−1) with
    at least one spike in ``x`` (flat (c, h, w) list), the number of output windows that contain position q."""
    c, h, w = layer.in_shape
    _, ho, wo = layer.out_shape
    (kh, kw), (sy, sx) = layer.kernel, layer.stride
    total = 0
    for iy in range(h):
        for ix in range(w):
            reached = sum(1 for oy in range(ho) for ox in range(wo)
                          if oy * sy <= iy < oy * sy + kh and ox * sx <= ix < ox * sx + kw)
            for g in range(-(-c // lanes)):
                if any(x[(ch * h + iy) * w + ix] for ch in range(g * lanes, min(c, (g + 1) * lanes))):
                    total += reached
    return total

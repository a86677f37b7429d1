"""Residual junctions (issue 6, Sengupta 2019 §6) in the integer network: IR validation and file format (version
2), the golden simulation against a literal per-neuron reference written from docs/spec.md, counters of the skip
pass (ACs, weight reads, cycles) and the ANN's MACs of a shortcut."""

import numpy as np
import pytest
import torch
from literal_reference import connections, per_neuron_value, pool_word_events

from golden.core import cycle_model, macs
from golden.core.errors import NetworkFileError, WidthError
from golden.core.network import (AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams, SkipConnection,
                                 identity_skip)
from golden.simulation import counting
from golden.simulation.encoding import rate_encode
from golden.simulation.simulate import FloatSimulator, IntegerSimulator


def residual_net(rng, neuron=NeuronParams("if", "subtract"), membrane_bits=7, skips=None):
    """conv → conv → conv(+identity skip from layer 1) → conv stride 2 → conv(+1×1 stride-2 skip from layer 3)
    → pool → dense(+dense skip from layer 5)."""
    def conv(c_in, c_out, h, stride=1):
        return Conv2dLayer(rng.integers(-3, 4, (c_out, c_in, 3, 3)), rng.integers(-2, 3, c_out),
                           rng.integers(3, 9, c_out), (c_in, h, h), (stride, stride), (1, 1), neuron)
    layers = [conv(1, 3, 6), conv(3, 3, 6), conv(3, 3, 6), conv(3, 4, 6, 2), conv(4, 4, 3),
              AvgPool2dLayer(2, np.full(4, 3), (4, 3, 3), (2, 2), (1, 1), neuron),
              DenseLayer(rng.integers(-4, 5, (5, 16)), rng.integers(-1, 2, 5), np.full(5, 4), neuron)]
    if skips is None:
        skips = [identity_skip(3, 1, 3, 2), SkipConnection(5, 3, rng.integers(-3, 4, (4, 3, 1, 1)), (2, 2)),
                 SkipConnection(7, 5, rng.integers(-2, 3, (5, 36)))]
    return IntegerNetwork((1, 6, 6), layers, weight_bits=4, membrane_bits=membrane_bits, skips=skips).validate()


def literal_run(net, spikes):
    """Per-neuron reference of docs/spec.md §3/§3a/§4a: [T, n_0] spikes of one image → spikes and membranes per
    layer, and the skip-pass ACs per (step, layer). Weighted spikes (§3a): phase k = 1 + (t−1) mod K, the input
    (main + skip + bias) shifted by K−k, 'ws' fires at θ << (K−k) and subtracts it, 'acc' is gated for t ≤ S·K."""
    lo, hi = -(1 << (net.membrane_bits - 1)), (1 << (net.membrane_bits - 1)) - 1
    sat = lambda x: min(max(x, lo), hi)  # noqa: E731
    steps = spikes.shape[0]
    conn = [[connections(layer, j) for j in range(layer.n_out)] for layer in net.layers]
    skip_conn = {s.target: (s.source, [connections(net.skip_layer(s), j)
                                       for j in range(net.layers[s.target - 1].n_out)]) for s in net.skips}
    v = [[0] * layer.n_out for layer in net.layers]
    out_s = [np.zeros((steps, layer.n_out), bool) for layer in net.layers]
    out_v = [np.zeros((steps, layer.n_out), np.int64) for layer in net.layers]
    skip_acs = np.zeros((steps, len(net.layers)), np.int64)
    for t in range(steps):
        src = [list(spikes[t])]
        for l, layer in enumerate(net.layers):
            x = src[-1]
            for j in range(layer.n_out):
                total = sum(w for i, w in conn[l][j] if i is not None and x[i])
                if l + 1 in skip_conn:
                    k, sc = skip_conn[l + 1]
                    total += sum(w for i, w in sc[j] if i is not None and src[k][i])
                    skip_acs[t, l] += sum(1 for i, _ in sc[j] if i is not None and src[k][i])
                bias = per_neuron_value(layer, layer.bias, j)
                theta = per_neuron_value(layer, layer.threshold, j)
                kind = layer.neuron.kind
                if kind in ("ws", "acc"):
                    sh = net.phases - 1 - t % net.phases  # K − k at the 1-based step t + 1
                    fire = False
                    if kind == "acc" and t + 1 <= net.skip_periods * net.phases:
                        vj = v[l][j]  # gated
                    else:
                        vj = sat(v[l][j] + ((total + bias) << sh))
                        if kind == "ws" and vj >= theta << sh:
                            fire, vj = True, sat(vj - (theta << sh))
                    v[l][j] = vj
                    out_s[l][t, j], out_v[l][t, j] = fire, vj
                    continue
                vj = sat(v[l][j] + total + bias)
                fire = vj >= theta
                if fire:
                    vj = 0 if layer.neuron.reset == "zero" else vj - theta
                v[l][j] = vj
                out_s[l][t, j], out_v[l][t, j] = fire, vj
            src.append(list(out_s[l][t]))
    return out_s, out_v, skip_acs


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_residual_matches_literal_reference(reset):
    rng = np.random.default_rng(3)
    net = residual_net(rng, NeuronParams("if", reset))
    codes = torch.from_numpy(rng.integers(0, 256, (2, 36)))
    x = rate_encode(codes, 8, seed=5)
    trace = IntegerSimulator(net, device="cpu").run(x, record_membranes=True)
    assert int(trace.counters[..., counting.COUNTER_NAMES.index("saturations")].sum()) > 0  # saturation exercised
    for b in range(2):
        spk, mem, skip_acs = literal_run(net, x[:, b].numpy())
        for l in range(len(net.layers)):
            np.testing.assert_array_equal(trace.spikes[l][b], spk[l], err_msg=f"image {b} layer {l + 1} spikes")
            np.testing.assert_array_equal(trace.membranes[l][b], mem[l], err_msg=f"image {b} layer {l + 1} v")
        # ACs of junction layers = main-pass fan-out sum + skip-pass fan-out sum
        assert skip_acs.sum() > 0
        for skip in net.skips:
            l = skip.target - 1
            main_src = x[:, b].numpy() if l == 0 else trace.spikes[l - 1][b]
            main = main_src.astype(np.int64) @ counting.fan_out(net.layers[l])
            np.testing.assert_array_equal(trace.counters[b, :, l, counting.COUNTER_NAMES.index("acs")],
                                          main + skip_acs[:, l])


def test_weighted_spike_residual_matches_literal_reference():
    """'ws' hidden layers and an 'acc' output (K = 3, S = 1): the skip synapses add into the phase-shifted input,
    identity, 1×1 stride-2 and dense skips, a small membrane (the IR's junction headroom check allows 10 bits)."""
    from dataclasses import replace

    from golden.simulation.encoding import weighted_encode

    rng = np.random.default_rng(11)
    base = residual_net(rng, NeuronParams("if", "subtract"))
    ws, acc = NeuronParams("ws", "subtract"), NeuronParams("acc")
    layers = [replace(layer, neuron=acc if i == len(base.layers) - 1 else ws) for i, layer in enumerate(base.layers)]
    K = 3
    coding = dict(input_coding="weighted", input_bits=K, phases=K, skip_periods=1, weight_bits=4)
    doubled = base.skips[:2] + [SkipConnection(7, 5, 2 * base.skips[2].weight)]
    with pytest.raises(WidthError, match="skip connection 5 -> 7: with K = 3"):  # main + skip input << (K−1)
        IntegerNetwork((1, 6, 6), layers, membrane_bits=10, skips=doubled, **coding).validate()
    net = IntegerNetwork((1, 6, 6), layers, membrane_bits=10, skips=base.skips, **coding).validate()
    x = weighted_encode(torch.from_numpy(rng.integers(0, 1 << K, (2, 36))), 8 * K, K)
    trace = IntegerSimulator(net, device="cpu").run(x, record_membranes=True)
    K_ = {n: i for i, n in enumerate(counting.COUNTER_NAMES)}
    assert int(trace.counters[..., K_["saturations"]].sum()) > 0  # saturation exercised
    for b in range(2):
        spk, mem, skip_acs = literal_run(net, x[:, b].numpy())
        assert skip_acs.sum() > 0
        for l in range(len(net.layers)):
            np.testing.assert_array_equal(trace.spikes[l][b], spk[l], err_msg=f"image {b} layer {l + 1} spikes")
            np.testing.assert_array_equal(trace.membranes[l][b], mem[l], err_msg=f"image {b} layer {l + 1} v")
        for skip in net.skips[:-1]:  # the skip sources and hidden junctions fire
            assert spk[skip.source - 1].any() and spk[skip.target - 1].any()
        assert (mem[-1][:K] == 0).all() and mem[-1][K:].any()  # the 'acc' output is gated for S·K steps
    np.testing.assert_array_equal(trace.predictions, [int(np.argmax(literal_run(net, x[:, b].numpy())[1][-1][-1]))
                                                      for b in range(2)])


def test_skip_pass_cycles_and_weight_reads():
    rng = np.random.default_rng(4)
    net = residual_net(rng)
    P = 2
    x = rate_encode(torch.from_numpy(rng.integers(0, 256, (2, 36))), 5, seed=1)
    trace = IntegerSimulator(net, device="cpu").run(x, lanes=P)
    K = {n: i for i, n in enumerate(counting.COUNTER_NAMES)}
    plans = cycle_model.network_plans(net, P)
    skips = cycle_model.skip_plans(net, P)
    assert set(skips) == {3, 5, 7}
    sources = [trace.input_spikes] + trace.spikes
    for l, plan in enumerate(plans, start=1):
        c = trace.counters[:, :, l - 1]
        main_acs = sources[l - 1].astype(np.int64) @ counting.fan_out(net.layers[l - 1])
        events = main_acs // plan.reach_div if plan.reach_div else sources[l - 1].sum(-1)
        if plan.kind == "avgpool2d":  # word-parallel pool: (non-empty source word, reached position) pairs
            events = np.array([[pool_word_events(net.layers[l - 1], x.tolist(), P) for x in image]
                               for image in sources[l - 1]])
        cycles = plan.words + events * plan.per_event + plan.state_words + cycle_model.C_LAYER
        reads = events * plan.per_event
        if l in skips:
            skip = net.skip_into(l)
            sp = skips[l]
            src = sources[skip.source].astype(np.int64)
            skip_acs = src @ counting.fan_out(net.skip_layer(skip))
            skip_events = skip_acs // sp.reach_div if sp.reach_div else src.sum(-1)
            # W_skip: a conv source is read position-major in channel groups
            c_src, h, w = net.layer_shape(skip.source)[-3:] if len(net.layer_shape(skip.source)) == 3 else (0, 0, 0)
            if net.layers[skip.source - 1].kind != "dense":
                assert sp.words == h * w * -(-c_src // P)
            cycles = cycles + sp.words + skip_events * sp.per_event
            reads = reads + skip_events * sp.per_event
        np.testing.assert_array_equal(c[..., K["cycles"]], cycles, err_msg=f"layer {l}")
        np.testing.assert_array_equal(c[..., K["weight_reads"]], reads, err_msg=f"layer {l}")
    np.testing.assert_array_equal(trace.image_cycles,
                                  trace.counters[..., K["cycles"]].sum(axis=(1, 2)) + cycle_model.C_IMAGE)
    again = counting.counters_from_spikes(net, torch.from_numpy(trace.input_spikes),
                                          [torch.from_numpy(s) for s in trace.spikes],
                                          torch.from_numpy(trace.counters[..., K["saturations"]]), P)
    np.testing.assert_array_equal(again.numpy(), trace.counters)


def test_skip_from_input_and_dense_mlp():
    rng = np.random.default_rng(5)
    layers = [DenseLayer(rng.integers(-3, 4, (6, 10)), np.zeros(6, np.int64), np.full(6, 3)),
              DenseLayer(rng.integers(-3, 4, (6, 6)), np.zeros(6, np.int64), np.full(6, 3)),
              DenseLayer(rng.integers(-3, 4, (4, 6)), np.zeros(4, np.int64), np.full(4, 3))]
    skips = [SkipConnection(2, 0, rng.integers(-3, 4, (6, 10))), SkipConnection(3, 1, rng.integers(-3, 4, (4, 6)))]
    net = IntegerNetwork((10,), layers, weight_bits=4, membrane_bits=8, skips=skips).validate()
    x = rate_encode(torch.from_numpy(rng.integers(0, 256, (3, 10))), 6, seed=2)
    trace = IntegerSimulator(net, device="cpu").run(x, record_membranes=True)
    for b in range(3):
        spk, mem, _ = literal_run(net, x[:, b].numpy())
        for l in range(3):
            np.testing.assert_array_equal(trace.spikes[l][b], spk[l])
            np.testing.assert_array_equal(trace.membranes[l][b], mem[l])
    # without saturation the float model (same arrays as floats) gives the same spikes
    run = FloatSimulator(net, device="cpu").run(x)
    np.testing.assert_array_equal(run.spikes[-1], trace.spikes[-1])


def test_file_format_round_trip_and_versions(tmp_path):
    rng = np.random.default_rng(6)
    net = residual_net(rng)
    path = net.save(tmp_path / "res.snn")
    assert "version: 2" in (path / "network.yaml").read_text()
    back = IntegerNetwork.load(path)
    assert [(s.target, s.source, s.kind, tuple(s.stride)) for s in back.skips] == \
        [(s.target, s.source, s.kind, tuple(s.stride)) for s in net.skips]
    for a, b in zip(back.skips, net.skips):
        np.testing.assert_array_equal(a.weight, b.weight)
    plain = IntegerNetwork(net.input_shape, net.layers, weight_bits=4, membrane_bits=7)
    plain_path = plain.save(tmp_path / "plain.snn")
    text = (plain_path / "network.yaml").read_text()
    assert "version: 1" in text and "skips" not in text  # version-1 readers still read plain networks
    assert IntegerNetwork.load(plain_path).skips == []
    manifest = (path / "network.yaml").read_text().replace("version: 2", "version: 1")
    (path / "network.yaml").write_text(manifest)
    with pytest.raises(NetworkFileError, match="need format version 2"):
        IntegerNetwork.load(path)


@pytest.mark.parametrize("skip, error, match", [
    (lambda rng: identity_skip(2, 1, 3), NetworkFileError, "source must be the input"),
    (lambda rng: identity_skip(3, 1, 3, stride=2), NetworkFileError, "produces shape"),
    (lambda rng: SkipConnection(5, 3, np.zeros((4, 2, 1, 1), np.int64), (2, 2)), NetworkFileError, "input channels"),
    (lambda rng: identity_skip(6, 4, 4), NetworkFileError, "pooling layer cannot"),
    (lambda rng: SkipConnection(7, 5, np.zeros((5, 35), np.int64)), NetworkFileError, r"\[5, 36\]"),
    (lambda rng: identity_skip(3, 1, 3, scale=9), WidthError, "weight_bits=5"),
    (lambda rng: identity_skip(9, 1, 3), NetworkFileError, "target must be a layer"),
])
def test_validation_errors(skip, error, match):
    rng = np.random.default_rng(7)
    with pytest.raises(error, match=match):
        residual_net(rng, skips=[skip(rng)])


def test_one_skip_per_junction():
    rng = np.random.default_rng(8)
    with pytest.raises(NetworkFileError, match="already has a skip"):
        residual_net(rng, skips=[identity_skip(3, 1, 3), identity_skip(3, 0, 3)])


def test_ann_macs_of_shortcuts():
    rng = np.random.default_rng(9)
    net = residual_net(rng)
    plain = IntegerNetwork(net.input_shape, net.layers, weight_bits=4, membrane_bits=7)
    with_skips = macs.ann_macs_per_layer(net)
    without = macs.ann_macs_per_layer(plain)
    assert with_skips[2] - without[2] == 3 * 6 * 6  # identity: one addition per element
    pairs = int(np.count_nonzero(np.abs(net.skips[1].weight).sum(axis=(2, 3))))
    assert with_skips[4] - without[4] == pairs * 3 * 3
    assert with_skips[6] - without[6] == int(np.count_nonzero(net.skips[2].weight))

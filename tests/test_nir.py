"""NIR import and export (golden/nir, cosim/app/nir_commands.py, docs/nir.md).

Graphs are built with the ``nir`` package the way snnTorch, Norse and sinabs export them; the export → import
round trip is exact; every refusal is one line naming the node or file. One test co-simulates an imported
network on the RTL (Verilator; skipped without the toolchain)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from golden.core.errors import SnnCosimError, WidthError  # noqa: E402
from golden.core.network import (AvgPool2dLayer, Conv2dLayer, DenseLayer, IntegerNetwork, NeuronParams,  # noqa: E402
                                 SkipConnection)
from golden.nir import NirExportError, NirImportError, export_nir, import_nir, write_nir  # noqa: E402
from golden.simulation.simulate import IntegerSimulator  # noqa: E402


def _spikes(rng, steps, images, n, p=0.4):
    return rng.random((steps, images, n)) < p


def _graph(nodes: dict, chain: list[str], extra_edges=(), metadata=None, type_check=True):
    edges = list(zip(chain[:-1], chain[1:])) + list(extra_edges)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata or {}, type_check=type_check)


# ----------------------------------------------------------------------------------------------- foreign graphs
def snntorch_dense(rng, beta=0.875, n_in=12, n_hidden=20, n_out=5):
    """snnTorch's export: Affine + LIF with per-neuron arrays, dt = 1e-4, tau = dt/(1 − β), r = tau/dt."""
    dt = 1e-4
    tau = np.full(n_hidden, dt / (1 - beta))
    tau_out = np.full(n_out, dt / (1 - beta))
    nodes = {
        "input": nir.Input(np.array([n_in])),
        "0": nir.Affine(rng.normal(size=(n_hidden, n_in)), rng.normal(size=n_hidden) * 0.1),
        "1": nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(n_hidden), v_threshold=np.ones(n_hidden)),
        "2": nir.Linear(rng.normal(size=(n_out, n_hidden))),
        "3": nir.LIF(tau=tau_out, r=tau_out / dt, v_leak=np.zeros(n_out), v_threshold=np.full(n_out, 0.5)),
        "output": nir.Output(np.array([n_out])),
    }
    return _graph(nodes, ["input", "0", "1", "2", "3", "output"])


def test_snntorch_style_dense_lif_imports_and_simulates():
    rng = np.random.default_rng(0)
    net = import_nir(snntorch_dense(rng))
    assert net.layer_sizes == [12, 20, 5]
    assert [layer.neuron for layer in net.layers] == [NeuronParams("lif", "zero", 3)] * 2
    assert net.input_coding == "rate" and net.input_bits == 8
    info = net.metadata["nir"]
    assert info["layers"][0]["leak_relative_error"] == 0.0 and not info["exact"]
    # one scale per layer: the largest weight uses the whole width
    assert max(np.abs(layer.weight).max() for layer in net.layers) == 127
    for layer, record in zip(net.layers, info["layers"]):
        assert np.abs(layer.weight).max() == 127 and record["scale"] > 0
    trace = IntegerSimulator(net).run(_spikes(rng, 20, 3, 12))
    assert trace.spikes[0].any()


def test_snntorch_synaptic_without_synaptic_memory_is_an_lif():
    """snnTorch's Synaptic exports CubaLIF with tau_syn = dt/(1 − α), w_in = tau_syn/dt: with α = 0 there is no
    synaptic memory (tau_syn = dt) and it is an LIF; with α > 0 it is refused naming the node."""
    dt, beta = 1e-4, 0.75
    for alpha in (0.0, 0.5):
        tau_syn, tau_mem = np.full(3, dt / (1 - alpha)), np.full(3, dt / (1 - beta))
        node = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=np.zeros(3),
                           v_threshold=np.ones(3), w_in=tau_syn / dt)
        if alpha == 0:
            net = import_nir(_small(node))
            assert net.layers[0].neuron == NeuronParams("lif", "zero", 2)
            assert net.layers[0].threshold.tolist() == [128] * 3  # weights 1 → s = 127, θ = ⌊1·127⌋ + 1
        else:
            with pytest.raises(NirImportError, match=r"node 'neuron' \(CubaLIF\) is not supported: its synaptic "
                                                     r"current.*tau_syn = 0.0002, dt = 0.0001"):
                import_nir(_small(node))


def test_if_threshold_and_scale_are_exact_for_integer_membranes():
    """IF with weights that the scale makes integers: NIR's v > v_threshold becomes v ≥ ⌊v_threshold·s⌋ + 1, so the
    integer network spikes exactly as the float NIR dynamics (v += r·(Wx + b); z = v > v_th; v = 0 on z)."""
    rng = np.random.default_rng(1)
    w = rng.integers(-127, 128, (6, 10)) / 10.0
    w[0, 0] = 12.7
    b = rng.integers(-5, 6, 6) / 10.0
    v_th = np.array([3.0, 3.05, 2.0, 4.5, 1.0, 6.0])
    nodes = {"input": nir.Input(np.array([10])), "fc": nir.Affine(w, b),
             "if": nir.IF(r=np.ones(6), v_threshold=v_th), "output": nir.Output(np.array([6]))}
    net = import_nir(_graph(nodes, ["input", "fc", "if", "output"]))
    assert net.metadata["nir"]["layers"][0]["scale"] == pytest.approx(10.0)
    assert net.layers[0].threshold.tolist() == [31, 31, 21, 46, 11, 61]
    spikes = _spikes(rng, 30, 4, 10, 0.5)
    trace = IntegerSimulator(net).run(spikes)
    v = np.zeros((4, 6))
    expected = []
    for t in range(30):
        v = v + spikes[t].astype(float) @ w.T + b
        z = v > v_th + 1e-9
        v[z] = 0
        expected.append(z)
    assert np.array_equal(np.asarray(trace.spikes[0]).transpose(1, 0, 2), np.array(expected))


def test_norse_style_lif_needs_dt_and_states_the_leak_error():
    """Norse: tau = 1/tau_mem_inv in seconds, r = 1, dt not in the graph (0.001 s by default)."""
    rng = np.random.default_rng(2)
    n = 8
    nodes = {"input": nir.Input(np.array([6])), "linear": nir.Affine(rng.normal(size=(n, 6)), np.zeros(n)),
             "lif": nir.LIF(tau=np.full(n, 1 / 100.0), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                            v_reset=np.zeros(n)),
             "linear2": nir.Affine(rng.normal(size=(3, n)), np.zeros(3)),
             "iaf": nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.zeros(3)),
             "output": nir.Output(np.array([3]))}
    graph = _graph(nodes, ["input", "linear", "lif", "linear2", "iaf", "output"])
    with pytest.raises(NirImportError, match=r"node 'lif' \(LIF\): tau = 0.01 without the time step.*give dt"):
        import_nir(graph)
    net = import_nir(graph, dt=1e-3)
    assert net.layers[0].neuron == NeuronParams("lif", "zero", 3)
    (note,) = net.metadata["nir"]["notes"]
    assert "dt/tau = 0.1" in note and "2^-3" in note and "25.0% off" in note
    assert net.metadata["nir"]["layers"][0]["leak_relative_error"] == pytest.approx(0.25)
    # the leak's gain r·dt/τ moves into the threshold: θ = ⌊(1 / 0.1)·s⌋ + 1
    s = net.metadata["nir"]["layers"][0]["scale"]
    assert net.layers[0].threshold[0] == int(np.floor(10 * s)) + 1
    IntegerSimulator(net).run(_spikes(rng, 10, 2, 6))


def sinabs_conv(rng, pool_into_conv=True):
    """sinabs: Conv2d (input_shape None) + IF with v_mem-shaped r and v_threshold, SumPool2d, Flatten, Affine."""
    c1, c2 = 4, 6
    nodes = {
        "input": nir.Input(np.array([2, 12, 12])),
        "conv1": nir.Conv2d(None, rng.normal(size=(c1, 2, 3, 3)), 1, 1, 1, 1, np.zeros(c1)),
        "iaf1": nir.IF(r=np.ones((c1, 12, 12)), v_threshold=np.ones((c1, 12, 12))),
        "pool1": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
    }
    chain = ["input", "conv1", "iaf1", "pool1"]
    if pool_into_conv:  # sinabs: a pool feeds the next convolution directly
        nodes["conv2"] = nir.Conv2d(None, rng.normal(size=(c2, c1, 3, 3)), 1, 0, 1, 1, rng.normal(size=c2) * 0.1)
        nodes["iaf2"] = nir.IF(r=np.ones((c2, 4, 4)), v_threshold=np.full((c2, 4, 4), 2.0))
        chain += ["conv2", "iaf2"]
        flat = c2 * 16
    else:  # a spiking pooling layer
        nodes["iaf_pool"] = nir.IF(r=np.ones((c1, 6, 6)), v_threshold=np.full((c1, 6, 6), 1.5))
        chain += ["iaf_pool"]
        flat = c1 * 36
    nodes.update({"flatten": nir.Flatten(input_type=None, start_dim=0, end_dim=-1),
                  "fc": nir.Affine(rng.normal(size=(10, flat)), np.zeros(10)),
                  "iaf_out": nir.IF(r=np.ones(10), v_threshold=np.ones(10)), "output": nir.Output(np.array([10]))})
    chain += ["flatten", "fc", "iaf_out", "output"]
    return _graph(nodes, chain)


@pytest.mark.parametrize("pool_into_conv", [True, False])
def test_sinabs_style_conv_imports_and_simulates(pool_into_conv):
    rng = np.random.default_rng(3)
    net = import_nir(sinabs_conv(rng, pool_into_conv))
    kinds = [layer.kind for layer in net.layers]
    if pool_into_conv:  # the pool is folded into conv2: a 6x6 kernel of stride 2
        assert kinds == ["conv2d", "conv2d", "dense"]
        assert net.layers[1].weight.shape == (6, 4, 6, 6) and net.layers[1].stride == (2, 2)
        assert net.metadata["nir"]["layers"][1]["nodes"] == ["pool1", "conv2"]
    else:
        assert kinds == ["conv2d", "avgpool2d", "dense"]
        pool = net.layers[1]
        assert pool.weight == 127 and pool.threshold.tolist() == [int(np.floor(1.5 * 127)) + 1] * 4
    assert net.input_shape == (2, 12, 12) and net.layers[-1].n_out == 10
    trace = IntegerSimulator(net).run(_spikes(rng, 8, 2, net.n_inputs))
    assert trace.spikes[0].any()


def test_pool_folded_into_conv_is_exact():
    """SumPool2d then Conv2d (no neurons between) equals the folded convolution on any input."""
    import torch

    rng = np.random.default_rng(4)
    net = import_nir(sinabs_conv(rng, True))
    graph = sinabs_conv(np.random.default_rng(4), True)
    x = torch.tensor(rng.random((3, 4, 12, 12)))
    pooled = torch.nn.functional.avg_pool2d(x, 2) * 4
    ref = torch.nn.functional.conv2d(pooled, torch.tensor(graph.nodes["conv2"].weight))
    folded = torch.nn.functional.conv2d(x, torch.tensor(net.layers[1].weight, dtype=torch.float64)
                                        / net.metadata["nir"]["layers"][1]["scale"], stride=2)
    assert torch.allclose(ref, folded, atol=0.05 * float(ref.abs().max()))


def test_residual_add_becomes_a_skip_connection():
    rng = np.random.default_rng(5)
    n = 7
    nodes = {"input": nir.Input(np.array([9])), "fc1": nir.Affine(rng.normal(size=(n, 9)), np.zeros(n)),
             "if1": nir.IF(np.ones(n), np.ones(n)), "fc2": nir.Affine(rng.normal(size=(n, n)), np.zeros(n)),
             "if2": nir.IF(np.ones(n), np.ones(n)), "fc3": nir.Linear(rng.normal(size=(n, n))),
             "skip": nir.Affine(rng.normal(size=(n, n)), np.full(n, 0.25)), "if3": nir.IF(np.ones(n), np.ones(n)),
             "fc4": nir.Affine(rng.normal(size=(4, n)), np.zeros(4)), "if4": nir.IF(np.ones(4), np.ones(4)),
             "output": nir.Output(np.array([4]))}
    graph = _graph(nodes, ["input", "fc1", "if1", "fc2", "if2", "fc3", "if3", "fc4", "if4", "output"],
                   [("if1", "skip"), ("skip", "if3")])
    net = import_nir(graph)
    (skip,) = net.skips
    assert (skip.source, skip.target, skip.kind) == (1, 3, "dense")
    scale = net.metadata["nir"]["layers"][2]["scale"]
    assert max(np.abs(skip.weight).max(), np.abs(net.layers[2].weight).max()) == 127
    assert np.allclose(skip.weight / scale, nodes["skip"].weight, atol=0.5 / scale)
    assert np.array_equal(net.layers[2].bias, np.full(n, round(0.25 * scale)))  # fc3 has none, the skip's joins
    IntegerSimulator(net).run(_spikes(rng, 10, 2, 9))


# ----------------------------------------------------------------------------------------------- round trip
def _dense_net(rng, neurons, sizes=(10, 8, 6, 4), membrane_bits=12, weight_bits=6):
    w_hi = (1 << (weight_bits - 1)) - 1
    layers = [DenseLayer(rng.integers(-w_hi - 1, w_hi + 1, (m, n)), rng.integers(-9, 10, m),
                         rng.integers(1, 300, m), neurons[i % len(neurons)], f"fc{i}")
              for i, (n, m) in enumerate(zip(sizes[:-1], sizes[1:]))]
    return IntegerNetwork((sizes[0],), layers, weight_bits=weight_bits, membrane_bits=membrane_bits,
                          metadata={"input": {"scale": 1 / 255, "bits": 8}}).validate()


def _conv_net(rng, neuron):
    conv = Conv2dLayer(rng.integers(-128, 128, (4, 2, 3, 3)), rng.integers(-20, 20, 4), rng.integers(1, 500, 4),
                       (2, 8, 8), (1, 1), (1, 1), neuron, "conv")
    conv2 = Conv2dLayer(rng.integers(-128, 128, (4, 4, 3, 3)), rng.integers(-20, 20, 4), rng.integers(1, 500, 4),
                        (4, 8, 8), (1, 1), (1, 1), NeuronParams("if", "subtract"), "conv2")
    pool = AvgPool2dLayer(37, rng.integers(50, 120, 4), (4, 8, 8), (2, 2), (2, 2), neuron, "pool")
    fc = DenseLayer(rng.integers(-128, 128, (5, 64)), rng.integers(-9, 10, 5), rng.integers(1, 900, 5),
                    NeuronParams("if", "zero"), "fc")
    skips = [SkipConnection(2, 0, rng.integers(-5, 6, (4, 2, 1, 1)), (1, 1), (0, 0)),
             SkipConnection(4, 1, rng.integers(-9, 10, (5, 256)))]
    return IntegerNetwork((2, 8, 8), [conv, conv2, pool, fc], weight_bits=8, membrane_bits=16, skips=skips).validate()


def _with_skip(net, rng):
    net.skips = [SkipConnection(3, 1, rng.integers(-30, 31, (4, 8)))]
    return net.validate()


ROUND_TRIPS = {
    "if-zero": lambda rng: _dense_net(rng, [NeuronParams("if", "zero")]),
    "if-subtract": lambda rng: _dense_net(rng, [NeuronParams("if", "subtract")]),
    "if-dense-skip": lambda rng: _with_skip(_dense_net(rng, [NeuronParams("if", "subtract")]), rng),
    "lif-mixed": lambda rng: _dense_net(rng, [NeuronParams("lif", "subtract", 3, floor=-100),
                                              NeuronParams("lif", "zero", 1),
                                              NeuronParams("if", "zero", floor_threshold=True)], membrane_bits=10),
    "conv-pool-dense-skips-lif": lambda rng: _conv_net(rng, NeuronParams("lif", "subtract", 2)),
    "conv-pool-dense-skips-if": lambda rng: _conv_net(rng, NeuronParams("if", "zero")),
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_export_import_round_trip_is_exact(name, tmp_path):
    rng = np.random.default_rng(sorted(ROUND_TRIPS).index(name))
    net = ROUND_TRIPS[name](rng)
    graph = export_nir(net)
    assert graph.metadata["network_sha256"] == net.digest()
    back = import_nir(graph)
    assert back.digest() == net.digest() and back.metadata["nir"]["exact"]
    path = write_nir(net, tmp_path / "net.nir")
    again = import_nir(path)
    assert again.digest() == net.digest()
    assert [layer.name for layer in again.layers] == [layer.name for layer in net.layers]
    if "input" in net.metadata:
        assert again.metadata["input"] == {"scale": pytest.approx(1 / 255), "bits": 8}
    # and the graph is a plain NIR graph: the nir package reads it, IF/LIF with reset to 0
    read = nir.read(path)
    assert {type(node).__name__ for node in read.nodes.values()} <= {"Input", "Output", "Affine", "Linear",
                                                                        "Conv2d", "SumPool2d", "Flatten", "IF", "LIF"}


@pytest.mark.parametrize("neuron", [NeuronParams("if", "zero"), NeuronParams("lif", "zero", 3)])
def test_exported_graph_means_the_same_without_metadata(neuron):
    """An IF/LIF network with reset to zero, exported in integer units (v_threshold = θ − 0.5, LIF r = τ/dt = 2^k),
    imports to the same integers and spikes even when every snncosim metadata key is dropped (a foreign reader's
    view, dt inferred from r as for snnTorch)."""
    rng = np.random.default_rng(7)
    net = _dense_net(rng, [neuron], weight_bits=8, membrane_bits=20)
    graph = export_nir(net)
    graph.metadata = {}
    for node in graph.nodes.values():
        node.metadata = {}
    foreign = import_nir(graph, membrane_bits=20, scale=1.0)
    assert all(np.array_equal(a.weight, b.weight) and np.array_equal(a.threshold, b.threshold)
               and np.array_equal(a.bias, b.bias) and a.neuron == b.neuron
               for a, b in zip(net.layers, foreign.layers))
    spikes = _spikes(rng, 12, 3, net.n_inputs)
    assert all(np.array_equal(a, b) for a, b in zip(IntegerSimulator(net).run(spikes).spikes,
                                                    IntegerSimulator(foreign).run(spikes).spikes))


def test_edited_snncosim_graph_is_refused(tmp_path):
    rng = np.random.default_rng(8)
    graph = export_nir(_dense_net(rng, [NeuronParams("if", "subtract")]))
    graph.nodes["L1_dense"].weight[0, 0] += 1
    with pytest.raises(NirImportError, match="network_sha256.*edited or is damaged"):
        import_nir(graph)
    graph.nodes["L1_dense"].weight[0, 0] += 0.5
    with pytest.raises(NirImportError, match="non-integer values"):
        import_nir(graph)


# ----------------------------------------------------------------------------------------------- refusals
def test_weighted_and_fs_networks_are_refused_with_the_reason(tmp_path):
    weighted = IntegerNetwork((4,), [DenseLayer(np.ones((3, 4), np.int64), np.zeros(3, np.int64), np.full(3, 5),
                                                NeuronParams("ws", "subtract")),
                                     DenseLayer(np.ones((2, 3), np.int64), np.zeros(2, np.int64), np.full(2, 5),
                                                NeuronParams("acc"))],
                              input_coding="weighted", input_bits=4, phases=4).validate()
    fs = IntegerNetwork((4,), [DenseLayer(np.ones((3, 4), np.int64), np.zeros(3, np.int64), np.full(3, 5),
                                          NeuronParams("fs", fs_threshold=(4, 2), fs_reset=(4, 2), fs_weight=(2, 1))),
                               DenseLayer(np.ones((2, 3), np.int64), np.zeros(2, np.int64), np.full(2, 5),
                                          NeuronParams("acc"))],
                        input_coding="fs", input_bits=2, phases=2).validate()
    for net, what in ((weighted, "weighted-spike"), (fs, "FS")):
        with pytest.raises(NirExportError, match=f"an? {what} network cannot be exported to NIR: .*phase-dependent "
                                                 f"thresholds.*multi-spike codes"):
            write_nir(net, tmp_path / "x.nir")
        assert not (tmp_path / "x.nir").exists()
    inhibited = _dense_net(np.random.default_rng(0), [NeuronParams("if", "zero")])
    inhibited.layers[0] = DenseLayer(inhibited.layers[0].weight, inhibited.layers[0].bias,
                                     inhibited.layers[0].threshold, inhibition=np.full(8, 3))
    with pytest.raises(NirExportError, match="lateral inhibition"):
        export_nir(inhibited)


def _small(neuron_node, n=3):
    return _graph({"input": nir.Input(np.array([4])), "fc": nir.Affine(np.ones((n, 4)), np.zeros(n)),
                   "neuron": neuron_node, "output": nir.Output(np.array([n]))}, ["input", "fc", "neuron", "output"],
                  type_check=False)


@pytest.mark.parametrize("node, message", [
    (nir.CubaLIF(tau_syn=np.full(3, 2e-3), tau_mem=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3),
                 v_threshold=np.ones(3)), r"node 'neuron' \(CubaLIF\) is not supported: its synaptic current"),
    (nir.LI(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3)), r"node 'neuron' \(LI\) is not supported: a non-spiking"),
    (nir.Threshold(np.ones(3)), r"node 'neuron' \(Threshold\) is not supported: a stateless threshold"),
    (nir.LIF(tau=np.full(3, 1e-2), r=np.ones(3), v_leak=np.full(3, 0.1), v_threshold=np.ones(3)),
     r"node 'neuron' \(LIF\): v_leak = 0.1; the integer LIF neuron leaks towards 0"),
    (nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.full(3, -0.5)), r"\(IF\): v_reset = -0.5"),
    (nir.IF(r=np.ones(3), v_threshold=np.array([1.0, 0.0, 1.0])), r"\(IF\): v_threshold must be positive"),
    (nir.IF(r=np.ones(5), v_threshold=np.ones(5)), r"\(IF\): r has shape \(5,\), but the layer before it has \(3,\)"),
    (nir.LIF(tau=np.full(3, 1e-4), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)),
     r"\(LIF\): tau = 0.0001 without the time step"),
])
def test_unsupported_nodes_and_parameters_are_refused_naming_the_node(node, message):
    with pytest.raises(NirImportError, match=message):
        import_nir(_small(node), label="g.nir")


def test_structural_refusals_name_the_node():
    rng = np.random.default_rng(9)
    # a Delay and a Scale between layers
    for extra, kind in ((nir.Delay(np.ones(3)), "Delay"), (nir.Scale(np.ones(3)), "Scale")):
        graph = _graph({"input": nir.Input(np.array([4])), "fc": nir.Affine(np.ones((3, 4)), np.zeros(3)),
                        "x": extra, "if": nir.IF(np.ones(3), np.ones(3)), "output": nir.Output(np.array([3]))},
                       ["input", "fc", "x", "if", "output"])
        with pytest.raises(NirImportError, match=rf"node 'x' \({kind}\) is not supported"):
            import_nir(graph)
    # wrong weight shape (type checking off: a hand-written file)
    graph = nir.NIRGraph(nodes={"input": nir.Input(np.array([4])), "fc": nir.Affine(np.ones((3, 5)), np.zeros(3)),
                                "if": nir.IF(np.ones(3), np.ones(3)), "output": nir.Output(np.array([3]))},
                         edges=[("input", "fc"), ("fc", "if"), ("if", "output")], type_check=False)
    with pytest.raises(NirImportError, match=r"node 'fc' \(Affine\): weight takes 5 inputs but its source gives 4"):
        import_nir(graph)
    # NaN weights
    bad = rng.normal(size=(3, 4))
    bad[1, 2] = np.nan
    graph = _graph({"input": nir.Input(np.array([4])), "fc": nir.Affine(bad, np.zeros(3)),
                    "if": nir.IF(np.ones(3), np.ones(3)), "output": nir.Output(np.array([3]))},
                   ["input", "fc", "if", "output"])
    with pytest.raises(NirImportError, match=r"node 'fc' \(Affine\): weight holds NaN"):
        import_nir(graph)
    # a readout without neurons
    graph = _graph({"input": nir.Input(np.array([4])), "fc": nir.Affine(np.ones((3, 4)), np.zeros(3)),
                    "if": nir.IF(np.ones(3), np.ones(3)), "fc2": nir.Affine(np.ones((2, 3)), np.zeros(2)),
                    "output": nir.Output(np.array([2]))}, ["input", "fc", "if", "fc2", "output"])
    with pytest.raises(NirImportError, match=r"fed by node 'fc2' \(Affine\).*output layer .* is IF/LIF"):
        import_nir(graph)
    # a recurrent loop
    graph = nir.NIRGraph(nodes={"input": nir.Input(np.array([4])), "fc": nir.Affine(np.ones((3, 4)), np.zeros(3)),
                                "lif": nir.IF(np.ones(3), np.ones(3)), "rec": nir.Linear(np.eye(3)),
                                "output": nir.Output(np.array([3]))},
                         edges=[("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")],
                         type_check=False)
    with pytest.raises(NirImportError, match=r"node 'lif' \(IF\) is part of a recurrent loop"):
        import_nir(graph)


def test_quantised_values_that_do_not_fit_the_widths_are_refused():
    graph = _small(nir.IF(r=np.ones(3), v_threshold=np.full(3, 1e6)))
    with pytest.raises(WidthError, match="membrane_bits"):
        import_nir(graph, membrane_bits=16)


def test_corrupt_and_foreign_files_give_one_line(tmp_path):
    good = tmp_path / "good.nir"
    write_nir(_dense_net(np.random.default_rng(0), [NeuronParams("if", "zero")]), good)
    cases = {"random.nir": np.random.default_rng(0).bytes(4000), "text.nir": b"not a graph\n",
             "truncated.nir": good.read_bytes()[:len(good.read_bytes()) // 2], "empty.nir": b""}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(NirImportError) as info:
            import_nir(tmp_path / name)
        message = str(info.value)
        assert message.startswith(f"{tmp_path / name}: not a readable NIR graph") and "\n" not in message
    with pytest.raises(NirImportError, match="no such file"):
        import_nir(tmp_path / "missing.nir")
    with pytest.raises(NirImportError, match="is a directory"):
        import_nir(tmp_path)


def test_write_nir_never_replaces_a_user_file(tmp_path):
    net = _dense_net(np.random.default_rng(0), [NeuronParams("if", "zero")])
    user = tmp_path / "user.nir"
    user.write_bytes(b"precious")
    with pytest.raises(SnnCosimError, match="not a NIR graph written by snncosim; snncosim never replaces it"):
        write_nir(net, user, force=True)
    assert user.read_bytes() == b"precious"
    foreign = tmp_path / "foreign.nir"
    nir.write(foreign, _small(nir.IF(np.ones(3), np.ones(3))))
    before = foreign.read_bytes()
    with pytest.raises(SnnCosimError, match="never replaces it"):
        write_nir(net, foreign)
    assert foreign.read_bytes() == before
    ours = tmp_path / "ours.nir"
    write_nir(net, ours)
    other = _dense_net(np.random.default_rng(1), [NeuronParams("if", "subtract")])
    write_nir(other, ours)  # an earlier snncosim .nir is replaced
    assert import_nir(ours).digest() == other.digest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.nir", "ours.nir", "user.nir"]


# ----------------------------------------------------------------------------------------------- CLI
def _export_args(argv):
    from cosim.app.nir_commands import add_export_nir_parser

    parser = argparse.ArgumentParser(prog="snncosim")
    add_export_nir_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def _convert_args(source, output, **kw):
    return argparse.Namespace(source=source, output=output, weight_bits=kw.get("weight_bits", 8),
                              membrane_bits=kw.get("membrane_bits", 24), force=kw.get("force", False), quiet=True,
                              **{k: v for k, v in kw.items() if k in ("dt", "scale")})


def test_cli_export_then_convert_round_trip(tmp_path, capsys):
    from cosim.app.nir_commands import convert_nir

    net = _dense_net(np.random.default_rng(3), [NeuronParams("lif", "subtract", 2)])
    net.save(tmp_path / "net.snn")
    args = _export_args(["export-nir", str(tmp_path / "net.snn"), "-o", str(tmp_path / "g.nir")])
    assert args.func(args) == 0
    assert capsys.readouterr().out.startswith(f"wrote {tmp_path / 'g.nir'} (10 -> 8 -> 6 -> 4, lif-subtract")
    assert convert_nir(_convert_args(tmp_path / "g.nir", tmp_path / "back.snn")) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "from " in out and "nodes, exact, scale 1" in out
    assert IntegerNetwork.load(tmp_path / "back.snn").digest() == net.digest()
    # a foreign graph: scales in the line; an LIF note on stderr unless quiet
    rng = np.random.default_rng(0)
    nir.write(tmp_path / "snntorch.nir", snntorch_dense(rng, beta=0.9))
    args = _convert_args(tmp_path / "snntorch.nir", tmp_path / "s.snn")
    args.quiet = False
    assert convert_nir(args) == 0
    captured = capsys.readouterr()
    assert "12 -> 20 -> 5" in captured.out and "scale " in captured.out
    assert captured.err.startswith("note: 1: LIF leak dt/tau = 0.1 per step mapped to 2^-3")


def test_cli_errors_are_one_line_and_write_nothing(tmp_path):
    from cosim.app.nir_commands import convert_nir

    (tmp_path / "bad.nir").write_bytes(b"\x89HDF\r\n garbage")
    cases = [
        lambda: convert_nir(_convert_args(tmp_path / "bad.nir", tmp_path / "out.snn")),
        lambda: convert_nir(_convert_args(tmp_path / "missing.nir", tmp_path / "out.snn")),
        lambda: convert_nir(_convert_args(tmp_path / "bad.nir", tmp_path / "out.snn", weight_bits=1)),
        lambda: convert_nir(_convert_args(tmp_path / "bad.nir", tmp_path / "out.snn", dt=-1.0)),
    ]
    nir.write(tmp_path / "cuba.nir", _small(nir.CubaLIF(tau_syn=np.full(3, 2e-3), tau_mem=np.full(3, 1e-2),
                                                        r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3))))
    cases.append(lambda: convert_nir(_convert_args(tmp_path / "cuba.nir", tmp_path / "out.snn")))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    nir.write(tmp_path / "ok.nir", _small(nir.IF(np.ones(3), np.ones(3))))
    cases.append(lambda: convert_nir(_convert_args(tmp_path / "ok.nir", tmp_path / "mine")))
    weighted = IntegerNetwork((4,), [DenseLayer(np.ones((3, 4), np.int64), np.zeros(3, np.int64), np.full(3, 5),
                                                NeuronParams("ws", "subtract")),
                                     DenseLayer(np.ones((2, 3), np.int64), np.zeros(2, np.int64), np.full(2, 5),
                                                NeuronParams("acc"))],
                              input_coding="weighted", input_bits=4, phases=4)
    weighted.save(tmp_path / "w.snn")
    cases.append(lambda: _run_export(["export-nir", str(tmp_path / "w.snn"), "-o", str(tmp_path / "w.nir")]))
    cases.append(lambda: _run_export(["export-nir", str(tmp_path / "nothing.snn"), "-o", str(tmp_path / "n.nir")]))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for case in cases:
        with pytest.raises(SnnCosimError) as info:
            case()
        assert "\n" not in str(info.value) and str(info.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def _run_export(argv):
    args = _export_args(argv)
    return args.func(args)


def _wired(command: str, text: str) -> bool:
    from cosim.app import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return command in sub.choices and text in sub.choices[command].format_help()


def test_cli_main_convert_nir(tmp_path, capsys):
    """``snncosim convert GRAPH.nir -o NET.snn`` through cosim.app.cli.main: exit 0 / exit 2 with one error line and
    nothing written."""
    from cosim.app import cli

    if not _wired("convert", "GRAPH.nir"):
        pytest.skip("convert GRAPH.nir is not wired into cosim/app/cli.py yet")
    nir.write(tmp_path / "g.nir", _small(nir.IF(np.ones(3), np.ones(3))))
    assert cli.main(["convert", str(tmp_path / "g.nir"), "-o", str(tmp_path / "n.snn")]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {tmp_path / 'n.snn'} (4 -> 3, if, from ")
    (tmp_path / "bad.nir").write_bytes(b"junk")
    nir.write(tmp_path / "delay.nir", _small(nir.Delay(np.ones(3))))
    for bad in ("bad.nir", "delay.nir", "missing.nir"):
        assert cli.main(["convert", str(tmp_path / bad), "-o", str(tmp_path / "m.snn")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("snncosim: error: ") and err.count("\n") == 1, err
        assert not (tmp_path / "m.snn").exists()


def test_cli_main_export_nir(tmp_path, capsys):
    from cosim.app import cli

    if not _wired("export-nir", "GRAPH.nir"):
        pytest.skip("export-nir is not wired into cosim/app/cli.py yet")
    _dense_net(np.random.default_rng(0), [NeuronParams("if", "zero")]).save(tmp_path / "n.snn")
    assert cli.main(["export-nir", str(tmp_path / "n.snn"), "-o", str(tmp_path / "n.nir")]) == 0
    (tmp_path / "user.nir").write_text("mine")
    assert cli.main(["export-nir", str(tmp_path / "n.snn"), "-o", str(tmp_path / "user.nir")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "never replaces it" in err
    assert (tmp_path / "user.nir").read_text() == "mine"


# ----------------------------------------------------------------------------------------------- RTL (Verilator)
def test_nir_imported_network_cosimulates_equivalent(tmp_path):
    """Verilator: a graph written with the nir package (Conv2d + IF, Flatten, Affine + LIF, snnTorch/sinabs
    conventions) converts and co-simulates EQUIVALENT to the golden model. Skipped without the toolchain."""
    from golden.core.errors import ToolchainError

    try:
        from cosim.toolchain import ensure_verilator

        ensure_verilator()
    except ToolchainError as exc:
        pytest.skip(f"Verilator toolchain: {exc}")
    from cosim.session import check_equivalence, cosimulate, golden_reference

    rng = np.random.default_rng(11)
    dt = 1e-4
    tau = np.full(5, dt / (1 - 0.75))
    nodes = {"input": nir.Input(np.array([1, 5, 5])),
             "conv": nir.Conv2d((5, 5), rng.normal(size=(3, 1, 3, 3)), 1, 1, 1, 1, rng.normal(size=3) * 0.1),
             "iaf": nir.IF(r=np.ones((3, 5, 5)), v_threshold=np.full((3, 5, 5), 1.0)),
             "flatten": nir.Flatten(input_type=None, start_dim=0, end_dim=-1),
             "fc": nir.Affine(rng.normal(size=(5, 75)), np.zeros(5)),
             "lif": nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(5), v_threshold=np.full(5, 1.5)),
             "output": nir.Output(np.array([5]))}
    nir.write(tmp_path / "g.nir", _graph(nodes, ["input", "conv", "iaf", "flatten", "fc", "lif", "output"]))
    net = import_nir(tmp_path / "g.nir", weight_bits=8, membrane_bits=16)
    spikes = _spikes(rng, 10, 3, net.n_inputs, 0.5)
    rtl = cosimulate(net, spikes, lanes=4, work_dir=tmp_path / "rtl")
    golden = golden_reference(net, spikes, lanes=4)
    comparison = check_equivalence(golden, rtl.trace, tmp_path / "mismatch")
    assert comparison.equivalent, comparison.summary()
    assert all(s.any() for s in rtl.trace.spikes)


def test_nir_convert_options_parse():
    from cosim.app.nir_commands import add_nir_convert_options

    parser = argparse.ArgumentParser()
    add_nir_convert_options(parser)
    args = parser.parse_args(["--dt", "0.001", "--scale", "20"])
    assert (args.dt, args.scale) == (0.001, 20.0)
    assert parser.parse_args([]).dt is None


def test_file_that_nir_type_inference_refuses_is_still_read(tmp_path):
    """sinabs writes Flatten(input_type=[0, 0, 0, 0]); nir.read's type check refuses the file, the importer reads it
    without the check and does its own."""
    rng = np.random.default_rng(12)
    nodes = {"input": nir.Input(np.array([1, 4, 4])),
             "conv": nir.Conv2d((4, 4), rng.normal(size=(2, 1, 3, 3)), 1, 1, 1, 1, np.zeros(2)),
             "iaf": nir.IF(r=np.ones((2, 4, 4)), v_threshold=np.ones((2, 4, 4))),
             "flatten": nir.Flatten(input_type={"input": np.array([0, 0, 0, 0])}, start_dim=1, end_dim=-1),
             "fc": nir.Affine(rng.normal(size=(3, 32)), np.zeros(3)),
             "iaf2": nir.IF(r=np.ones(3), v_threshold=np.ones(3)), "output": nir.Output(np.array([3]))}
    graph = _graph(nodes, ["input", "conv", "iaf", "flatten", "fc", "iaf2", "output"], type_check=False)
    nir.write(tmp_path / "sinabs.nir", graph)
    with pytest.raises(Exception):
        nir.read(tmp_path / "sinabs.nir")
    net = import_nir(tmp_path / "sinabs.nir")
    assert [layer.kind for layer in net.layers] == ["conv2d", "dense"]


def test_graph_traced_by_nirtorch_imports():
    """nirtorch (as Norse's to_nir uses it) traces a torch model through a module map; before a convolution it
    leaves the Input node's shape None, so the shape is given (or read from a first Affine/Linear)."""
    nirtorch = pytest.importorskip("nirtorch")
    import torch

    class Spiking(torch.nn.Module):  # a stand-in for norse.torch.IAFCell / LIFBoxCell
        def __init__(self, shape, lif=False):
            super().__init__()
            self.threshold, self.lif = torch.full(shape, 0.8), lif

        def forward(self, x):
            return (x > self.threshold).float()

    def spiking(module):
        ones = np.ones(tuple(module.threshold.shape))
        if module.lif:  # Norse: tau = 1 / tau_mem_inv (seconds), r = 1
            return nir.LIF(tau=ones / 100.0, r=ones, v_leak=0 * ones, v_threshold=module.threshold.numpy() * 1.0,
                           v_reset=0 * ones)
        return nir.IF(r=ones, v_threshold=module.threshold.numpy() * 1.0, v_reset=0 * ones)

    def conv(module):
        return nir.Conv2d(None, module.weight.detach().numpy(), module.stride, module.padding, module.dilation,
                          module.groups, module.bias.detach().numpy())

    def flatten(module):
        return nir.Flatten(input_type=None, start_dim=module.start_dim - 1, end_dim=module.end_dim)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), Spiking((3, 6, 6)), torch.nn.Flatten(),
                                torch.nn.Linear(108, 4), Spiking((4,), lif=True))
    module_map = {Spiking: spiking, torch.nn.Conv2d: conv, torch.nn.Flatten: flatten}
    graph = nirtorch.torch_to_nir(model, module_map, type_check=False)
    with pytest.raises(NirImportError, match="has no usable shape .*give the input shape"):
        import_nir(graph, dt=1e-3)
    net = import_nir(graph, dt=1e-3, input_shape=(1, 6, 6))
    assert [layer.kind for layer in net.layers] == ["conv2d", "dense"] and net.layers[1].neuron.leak_shift == 3
    IntegerSimulator(net).run(_spikes(np.random.default_rng(0), 5, 2, 36))
    dense = nirtorch.torch_to_nir(torch.nn.Sequential(torch.nn.Linear(10, 4), Spiking((4,))), module_map,
                                  type_check=False)
    assert import_nir(dense).input_shape == (10,)


def test_cli_convert_nir_refuses_torch_conversion_options(tmp_path, capsys):
    """The torch-conversion options would be silently ignored for a NIR graph: refused, naming them, nothing written."""
    from cosim.app import cli

    nir.write(tmp_path / "g.nir", _small(nir.IF(np.ones(3), np.ones(3))))
    for extra, named in ((["--coding", "fs"], "--coding"), (["--data", "mnist", "--norm", "model"], "--data, --norm"),
                         (["--model", "m.py:f"], "--model")):
        assert cli.main(["convert", str(tmp_path / "g.nir"), "-o", str(tmp_path / "n.snn"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"snncosim: error: {named} appl") and err.count("\n") == 1, err
        assert not (tmp_path / "n.snn").exists()

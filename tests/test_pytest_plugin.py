"""The pytest plugin as a user meets it (issue 13): a user's own test file, run by pytest in a subprocess with the
installed ``snncosim`` plugin, passes on a good network and fails, with the first divergence (image, step, layer,
neuron, golden and RTL value) in the message, when the RTL trace is tampered with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
# the co-simulation tests' build directory: the user's run reuses the build cosim/tests/test_plugin.py made
BUILD_DIR = Path(os.environ.get("SNNCOSIM_BUILD_DIR") or REPO / ".snncosim" / "build")

USER_TEST = '''
from pathlib import Path

import numpy as np
import pytest

import cosim.session

HERE = Path(__file__).parent
SPIKES = np.load(HERE / "spikes.npy")  # bool [T, N, n_in], time-major


def test_network_matches_rtl(rtl_equivalence):
    result = rtl_equivalence.check(HERE / "net.snn", SPIKES)
    assert result.equivalent


@pytest.fixture
def tampered_rtl(monkeypatch):
    """Flip the lowest bit of one RTL membrane (image 1, step 3, layer 1, neuron 4) as the trace is decoded. A real
    RTL fault changes the harness's per-image digest with it; this flip comes after the harness, so the digests it
    wrote are dropped (else the run stops at "the RTL's own output is inconsistent", before comparing)."""
    decode = cosim.session.decode_trace

    def flipped(*args, **kwargs):
        parsed = decode(*args, **kwargs)
        parsed.membranes[0][1, 2, 4] ^= 1
        parsed.digests = None
        return parsed

    monkeypatch.setattr(cosim.session, "decode_trace", flipped)


def test_tampered_rtl_fails(rtl_equivalence, tampered_rtl):
    rtl_equivalence.check(HERE / "net.snn", SPIKES)
'''


def test_plugin_is_registered():
    """The entry point is installed (``pip install -e .``) and the module imports nothing heavy."""
    from importlib.metadata import entry_points

    assert "cosim.pytest_plugin" in {e.value for e in entry_points(group="pytest11", name="snncosim")}
    code = "import cosim.pytest_plugin, sys; print(sorted({'torch', 'amaranth', 'cocotb', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_user_test_file_passes_and_names_the_first_divergence(pytester):
    from cosim.session import golden_reference
    from cosim.tests.test_plugin import small_network

    net = small_network()
    net.save(pytester.path / "net.snn")
    spikes = np.random.default_rng(4).random((8, 2, net.n_inputs)) < 0.5
    np.save(pytester.path / "spikes.npy", spikes)
    golden = int(golden_reference(net, spikes, lanes=8).membranes[0][1, 2, 4])
    pytester.makepyfile(test_user=USER_TEST)

    result = pytester.runpytest_subprocess(f"--snncosim-build-dir={BUILD_DIR}", "-p", "no:cacheprovider",
                                           timeout=900)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*RtlMismatch: RTL differs from the golden model at image 1, step 3, layer 1, neuron 4: "
        f"membrane golden={golden} rtl={golden ^ 1} (2 images x 8 steps x 2 layers)*",
        "*traces and report saved in *snncosim-1*mismatch.txt*",
    ])
    result.stdout.fnmatch_lines(["*snncosim: 2 check(s), 4 image(s) co-simulated on the RTL*1 mismatch(es)*"])
    saved = list(pytester.path.rglob("mismatch.txt"))  # under the user run's basetemp (runpytest-N)
    assert saved and "image 1, step 3, layer 1, neuron 4" in saved[0].read_text()


def test_options_command_line_then_environment_then_ini(pytester, monkeypatch):
    from cosim.pytest_plugin import Options

    pytester.makeini("[pytest]\nsnncosim_lanes = 4\nsnncosim_keep = true\nsnncosim_build_dir = builds\n")
    monkeypatch.delenv("SNNCOSIM_BUILD_DIR", raising=False)
    options = Options.from_config(pytester.parseconfig())
    assert options == Options((pytester.path / "builds").resolve(), 4, False, True)
    monkeypatch.setenv("SNNCOSIM_BUILD_DIR", str(pytester.path / "env"))
    assert Options.from_config(pytester.parseconfig()).build_dir == (pytester.path / "env").resolve()
    options = Options.from_config(pytester.parseconfig("--snncosim-build-dir=cli", "--snncosim-lanes=3",
                                                       "--snncosim-waves"))
    assert (options.build_dir, options.lanes, options.waves) == (Path("cli").resolve(), 3, True)

"""The one helper around cocotb's runner, on a tiny Verilog module: cached builds, passing and failing cocotb
tests, and one-line errors for broken sources."""

from __future__ import annotations

import pytest

from cosim import runner
from golden.core.errors import SnnCosimError

COUNTER = """`timescale 1ns/1ps
module counter_top;
  logic clk = 1'b0;
  always #5 clk = ~clk;
  logic [31:0] count = 0;
  logic done = 1'b0;
  always @(posedge clk) begin
    if (count != 1000) count <= count + 1;
    done <= (count == 1000);
  end
endmodule
"""


@pytest.fixture(scope="module")
def counter(tmp_path_factory, build_dir, toolchain):
    source = tmp_path_factory.mktemp("counter") / "counter_top.sv"
    source.write_text(COUNTER)
    return source, runner.build([source], "counter_top", build_dir)


def test_build_is_cached(counter, build_dir):
    source, handle = counter
    assert handle.binary.is_file()
    again = runner.build([source], "counter_top", build_dir)
    assert again.cached and again.build_dir == handle.build_dir and again.seconds == 0.0
    assert again.key == handle.key


def test_passing_test(counter, tmp_path):
    _, handle = counter
    result = runner.run(handle, "cosim.tests.tb_counter", test_dir=tmp_path)
    assert (result.tests, result.failed) == (1, 0)
    assert result.log_file.is_file()


def test_failing_test_raises_with_its_message(counter, tmp_path):
    _, handle = counter
    with pytest.raises(runner.SimulationError, match="counter stopped at 1000, expected 7") as err:
        runner.run(handle, "cosim.tests.tb_counter", test_dir=tmp_path, plusargs=["+expect=7"])
    assert "\n" not in str(err.value)


def test_broken_verilog_is_a_build_error(tmp_path, build_dir, toolchain):
    source = tmp_path / "broken.sv"
    source.write_text("module broken_top; logic x; assign x = ; endmodule\n")
    with pytest.raises(runner.BuildError, match="broken_top.*failed.*Error"):
        runner.build([source], "broken_top", build_dir)


def test_bad_arguments(tmp_path, build_dir, counter):
    with pytest.raises(SnnCosimError, match="no such Verilog source"):
        runner.build([tmp_path / "missing.sv"], "x", build_dir)
    with pytest.raises(SnnCosimError, match="waves"):
        runner.run(counter[1], "cosim.tests.tb_counter", waves=True)

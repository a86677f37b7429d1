"""The main job's check mode (cosim/app/options.py): full traces for small runs (the run directory keeps both
traces for `snncosim compare` and the report's rasters), per-image digests for large ones, either on request."""

import pytest

from cosim.app.cli import build_parser
from cosim.app.options import FULL_TRACE_AUTO_IMAGES, JobOptions

AUTO = FULL_TRACE_AUTO_IMAGES


@pytest.mark.parametrize("full_trace, images, waves, expected", [
    (None, 20, False, True), (None, AUTO, False, True), (None, AUTO + 1, False, False), (True, 10_000, False, True),
    (False, 20, False, False), (False, 20, True, True), (None, 5000, True, True)])
def test_check_mode(full_trace, images, waves, expected):
    assert JobOptions(rtl_images=images, full_trace=full_trace, waves=waves).check_mode_full_trace() is expected


@pytest.mark.parametrize("command", ["run", "cosim"])
def test_full_trace_and_digest_flags(command):
    parser = build_parser()
    head = [command] + (["net.snn"] if command == "cosim" else [])
    assert parser.parse_args(head).full_trace is None
    assert parser.parse_args(head + ["--full-trace"]).full_trace is True
    assert parser.parse_args(head + ["--digest"]).full_trace is False
    with pytest.raises(SystemExit):  # one or the other
        parser.parse_args(head + ["--digest", "--full-trace"])

"""snncosim hardware: the Amaranth network engine, its configuration image and its Verilog.

``EngineConfig`` (``hw.config``) fixes sizes and widths; ``NetworkEngine`` (``hw.engine``) is the RTL;
``config_words`` (``hw.config_image``) turns an integer network into configuration-port writes; ``hw.verilog``
writes ``snn_engine.v``, the configuration image and a synthesizable FPGA top. Micro-architecture:
docs/hardware.md.
"""

import hashlib as _hashlib
from pathlib import Path as _Path


def _sources_digest() -> str:
    digest = _hashlib.sha256()
    for path in sorted(_Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# The hardware generator's sources as this process imports them (taken before any submodule is imported): keys
# the on-disk Verilog cache, so that Verilog made by this process is never stored under the key of sources that
# were edited while it ran.
SOURCE_DIGEST = _sources_digest()

from .config import EngineConfig, check_supported  # noqa: E402

__all__ = ["EngineConfig", "SOURCE_DIGEST", "check_supported"]

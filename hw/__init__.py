"""snncosim hardware: the Amaranth network engine, its configuration image and its Verilog.

``EngineConfig`` (``hw.config``) fixes sizes and widths; ``NetworkEngine`` (``hw.engine``) is the RTL;
``config_words`` (``hw.config_image``) turns an integer network into configuration-port writes; ``hw.verilog``
writes ``snn_engine.v``, the configuration image and a synthesizable FPGA top. Micro-architecture:
docs/hardware.md.
"""

from .config import EngineConfig, check_supported

__all__ = ["EngineConfig", "check_supported"]

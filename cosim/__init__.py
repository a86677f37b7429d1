"""snncosim co-simulation: the Amaranth engine under cocotb + Verilator, checked against the golden model.

The public entry points live in :mod:`cosim.session` (``RtlSimulator``, ``cosimulate``, ``golden_reference``,
``check_equivalence``, ``compare_files``, ``prepare_engine``, ``config_for_networks``) and are re-exported here
lazily; :mod:`cosim.toolchain` finds Verilator and :mod:`cosim.runner` is the one helper around cocotb's runner.
Importing this package imports neither cocotb, torch nor amaranth. See docs/cosim.md.
"""

_SESSION_API = ("RtlSimulator", "cosimulate", "golden_reference", "check_equivalence", "compare_files",
                "prepare_engine", "config_for_networks", "RtlRun", "Engine")

__all__ = list(_SESSION_API)


def __getattr__(name: str):
    if name in _SESSION_API:
        from . import session

        return getattr(session, name)
    raise AttributeError(f"module 'cosim' has no attribute {name!r}")

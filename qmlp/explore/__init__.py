"""``qmlp explore``: design-space exploration of quantized MLPs on Ray.

A spec (``spec``) expands into trials; each trial (``trial``, run as a Ray task by ``engine``)
trains, exports, lowers, verifies and estimates one model at every target; the driver
(``sweep``) writes every result at once to the SQLite store (``store``), prunes hopeless
trials by successive halving, runs Yosys and the RTL check on the Pareto front (``pareto``)
and writes the summary and plots (``report``)."""

from __future__ import annotations

__all__ = ["read_spec", "run_sweep", "write_report"]


def __getattr__(name: str):
    # Lazy: the CLI imports this package to build its parser; Ray and matplotlib load on use.
    if name == "read_spec":
        from .spec import read_spec
        return read_spec
    if name == "run_sweep":
        from .sweep import run_sweep
        return run_sweep
    if name == "write_report":
        from .report import write_report
        return write_report
    raise AttributeError(f"module 'qmlp.explore' has no attribute {name!r}")

"""The virtual board: the uploaded RTL under Verilator, timed in cycles at the board clock.

Each RUN streams the batch through a fresh simulation of ``qmlp_top`` with an always-ready
output (as a DMA engine behaves), so outputs, per-inference latency and the AXI-Lite counters
come from the exact RTL that would go into the bitstream. ``modelled_s`` converts the measured
cycles at the design's clock (``Dataflow.clock_mhz``, else the backend's ``clock_mhz``); it covers
the fabric only, not a DMA engine or the host driver.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import QmlpError
from ..ir import Dataflow
from .backend import Backend, BackendError, RunOutput

__all__ = ["EngineRun", "Engine", "rtl_engine", "SimBackend", "DEFAULT_CLOCK_MHZ"]

DEFAULT_CLOCK_MHZ = 200.0


@dataclass(frozen=True, eq=False)
class EngineRun:
    """What a simulation engine reports for one batch."""

    outputs: np.ndarray  # int64 (batch, out)
    cycles: int | None = None  # whole batch, first input beat to last output beat
    latency_cycles: np.ndarray | None = None  # per inference
    registers: Mapping[str, int] = field(default_factory=dict)  # AXI-Lite values at the end


Engine = Callable[[Dataflow, Path, np.ndarray], EngineRun]


def rtl_engine(df: Dataflow, rtl_dir: Path, q: np.ndarray) -> EngineRun:
    """Run ``q`` through the Verilog in ``rtl_dir`` with ``qmlp.sim.rtl.simulate_rtl``."""
    try:
        from ..sim.rtl import simulate_rtl
    except ImportError as error:  # the RTL simulator is part of qmlp; missing means a broken install
        raise BackendError(f"virtual board needs qmlp.sim.rtl (RTL simulation): {error}") from None
    result = simulate_rtl(df, rtl_dir, q, backpressure=False, seed=0)
    return EngineRun(
        outputs=np.asarray(result.outputs, dtype=np.int64),
        cycles=int(result.total_cycles),
        latency_cycles=np.asarray(result.latency, dtype=np.int64),
        registers={k: int(v) for k, v in result.registers.items()},
    )


class SimBackend(Backend):
    """Virtual board. ``engine`` is the RTL simulation; tests of the agent alone may pass
    another engine with the same contract."""

    name = "sim"

    def __init__(self, *, clock_mhz: float | None = None, engine: Engine = rtl_engine) -> None:
        self._clock_option = clock_mhz
        self._engine = engine
        self._df: Dataflow | None = None
        self._rtl_dir: Path | None = None

    @property
    def clock_mhz(self) -> float:
        if self._df is not None and self._df.clock_mhz:
            return float(self._df.clock_mhz)
        return float(self._clock_option or DEFAULT_CLOCK_MHZ)

    def describe(self) -> dict[str, Any]:
        engine = "verilator" if self._engine is rtl_engine else getattr(self._engine, "__name__", "custom")
        return {"board": "virtual", "rails": [], "clock_mhz": self.clock_mhz, "engine": engine}

    def required_files(self, df: Dataflow) -> tuple[str, ...]:
        return ("rtl/",)

    def load(self, design_dir: Path, df: Dataflow) -> dict[str, Any]:
        rtl_dir = design_dir / "rtl"
        if not any(rtl_dir.glob("*.v")) and not any(rtl_dir.glob("*.sv")):
            raise BackendError("upload has no Verilog under rtl/: send OUT/rtl from `qmlp compile`")
        self._df, self._rtl_dir = df, rtl_dir
        return {"clock_mhz": self.clock_mhz}

    def run(self, q: np.ndarray) -> RunOutput:
        if self._df is None or self._rtl_dir is None:
            raise BackendError("virtual board: no design loaded; send LOAD before RUN")
        start = time.perf_counter()
        try:
            result = self._engine(self._df, self._rtl_dir, q)
        except QmlpError as error:
            raise BackendError(f"RTL simulation failed: {error}") from None
        wall = time.perf_counter() - start
        timings: dict[str, float] = {"wall_s": wall}
        if result.cycles is not None:
            timings["cycles"] = result.cycles
            timings["modelled_s"] = result.cycles / (self.clock_mhz * 1e6)
        counters = {}
        if "INFERENCES" in result.registers:
            counters["inferences"] = result.registers["INFERENCES"]
        if "LAST_LATENCY" in result.registers:
            counters["last_latency_cycles"] = result.registers["LAST_LATENCY"]
        return RunOutput(outputs=result.outputs, timings=timings, counters=counters,
                         latency_cycles=result.latency_cycles)

    def reset(self) -> None:
        # Every RUN starts a fresh simulation from reset, so there is no state to clear.
        return None

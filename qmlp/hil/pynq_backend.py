"""The real board: the uploaded deploy folder (driver, bitstream, hardware handoff) under PYNQ.

``pynq`` is imported only when the backend is created, so this module loads anywhere. The design
runs through the driver that ``qmlp compile`` generated for it (``qmlp_driver.Accelerator``),
imported from the uploaded folder itself, so the agent never carries a second copy of the
quantize/pack/DMA code. Timing is what a board can measure honestly: host wall-clock seconds
around the driver's DMA call, and the fabric's own LAST_LATENCY / INFERENCES counters.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..ir import Dataflow
from .backend import Backend, BackendError, NoRails, RunOutput

__all__ = ["PynqBackend", "DRIVER_PACKAGE"]

DRIVER_PACKAGE = "qmlp_driver"
_COUNTER_WRAP = 1 << 32  # the AXI-Lite counters are 32-bit


def _import_driver(design_dir: Path) -> ModuleType:
    """Import ``qmlp_driver`` from ``design_dir``, dropping any previously loaded copy first so a
    reload really runs the new upload's code."""
    for name in [n for n in sys.modules if n == DRIVER_PACKAGE or n.startswith(DRIVER_PACKAGE + ".")]:
        del sys.modules[name]
    sys.path.insert(0, str(design_dir))
    try:
        module = importlib.import_module(DRIVER_PACKAGE)
        importlib.import_module(DRIVER_PACKAGE + ".check")
    except Exception as error:  # any failure of uploaded code is the upload's fault
        raise BackendError(f"uploaded {DRIVER_PACKAGE} does not import: {type(error).__name__}: {error}") from None
    finally:
        sys.path.remove(str(design_dir))
    return module


class PynqBackend(Backend):
    name = "pynq"

    def __init__(self, *, batch_size: int = 1024) -> None:
        """``batch_size``: vectors per DMA transfer (the driver's chunk; bounds buffer memory)."""
        self._batch_size = batch_size
        try:
            import pynq
        except ImportError:
            raise BackendError("--backend pynq needs the pynq package: run `qmlp agent --backend pynq` on the board "
                               "(PYNQ image), or use --backend sim for the virtual board") from None
        self._pynq = pynq
        self._acc: Any = None
        self._driver: ModuleType | None = None
        self._recorder: Any = None
        self._marks = 0
        self._rail_names: list[str] = []

    def _rails(self) -> dict[str, Any]:
        try:
            return dict(self._pynq.get_rails())
        except Exception:  # boards without PMBus/libsensors support simply have no rails
            return {}

    def describe(self) -> dict[str, Any]:
        config = {} if self._acc is None else self._acc.config
        return {"board": config.get("board", platform.node()), "rails": sorted(self._rails()),
                "clock_mhz": config.get("clock_mhz"), "engine": f"pynq {getattr(self._pynq, '__version__', '?')}"}

    def required_files(self, df: Dataflow) -> tuple[str, ...]:
        return (f"{DRIVER_PACKAGE}/", "bitstream/qmlp.bit", "bitstream/qmlp.hwh", "manifest.json")

    def load(self, design_dir: Path, df: Dataflow) -> dict[str, Any]:
        self.close()
        driver = _import_driver(design_dir)
        problems = sys.modules[DRIVER_PACKAGE + ".check"].check_manifest(design_dir)
        if problems:
            raise BackendError(f"deploy folder fails its manifest check: {'; '.join(problems)}")
        try:
            acc = driver.Accelerator(root=design_dir, batch_size=self._batch_size)
            acc.identify()
            acc.clear_counters()
        except Exception as error:
            raise BackendError(f"overlay did not load: {type(error).__name__}: {error}") from None
        self._acc, self._driver = acc, driver
        return {"clock_mhz": acc.config.get("clock_mhz"), "board": acc.config.get("board")}

    def run(self, q: np.ndarray) -> RunOutput:
        if self._acc is None:
            raise BackendError("pynq board: no design loaded; send LOAD before RUN")
        before = self._acc.counters()
        start = time.perf_counter()
        try:
            out = self._acc.execute(q)
        except Exception as error:
            raise BackendError(f"DMA run failed: {type(error).__name__}: {error}") from None
        wall = time.perf_counter() - start
        after = self._acc.counters()
        clock = float(self._acc.config.get("clock_mhz") or 0)
        timings = {"wall_s": wall}
        if clock:
            timings["fabric_latency_s"] = after["LAST_LATENCY"] / (clock * 1e6)
        counters = {"inferences": (after["INFERENCES"] - before["INFERENCES"]) % _COUNTER_WRAP,
                    "last_latency_cycles": after["LAST_LATENCY"], "padding_vectors": self._padding(len(q))}
        return RunOutput(outputs=np.asarray(out, dtype=np.int64), timings=timings, counters=counters)

    def _padding(self, batch: int) -> int:
        """Zero vectors the driver adds so every DMA transfer is whole stream beats: the fabric
        computes (and counts) them too. Mirrors ``Accelerator.execute``'s chunking."""
        group = int(getattr(self._acc.input, "vector_group", 1))
        size = int(getattr(self._acc, "batch_size", batch))
        chunk = max(group, size - size % group)
        sent = sum(-(-min(chunk, batch - start) // group) * group for start in range(0, batch, chunk))
        return sent - batch

    def reset(self) -> None:
        if self._acc is not None:
            self._acc.clear_counters()

    def power(self, action: str, label: str | None = None, interval_s: float = 0.1) -> dict[str, Any]:
        if action == "start":
            rails = self._rails()
            sensors = {name: rail.power for name, rail in sorted(rails.items()) if getattr(rail, "power", None) is not None}
            if not sensors:
                raise NoRails("this board exposes no power rails to PYNQ (pynq.get_rails() is empty)")
            if self._recorder is not None:
                self._recorder.stop()
            self._recorder = self._pynq.DataRecorder(*sensors.values())
            self._rail_names = list(sensors)
            self._recorder.record(interval_s)
            self._marks = 0  # record() starts the recorder's Mark column at 0
            return {"action": "start", "rails": self._rail_names, "interval_s": interval_s, "label": label}
        if self._recorder is None:
            raise BackendError(f"POWER {action} without POWER start")
        if action == "mark":
            # PYNQ's DataRecorder.mark() returns None; it bumps the Mark column by one, so count here.
            self._recorder.mark()
            self._marks += 1
            return {"action": "mark", "mark": self._marks, "label": label}
        self._recorder.stop()
        frame, self._recorder = self._recorder.frame, None
        # DataRecorder's frame: timestamp index, a 'Mark' session column, one column per sensor.
        columns = [c for c in frame.columns if c != "Mark"]
        stamps = np.asarray([t.timestamp() if hasattr(t, "timestamp") else float(t) for t in frame.index], dtype=np.float64)
        arrays = {"t_s": stamps - (stamps[0] if len(stamps) else 0.0),
                  "mark": np.asarray(frame["Mark"], dtype=np.int64) if "Mark" in frame.columns else np.zeros(len(frame), np.int64),
                  "power_w": np.asarray(frame[columns], dtype=np.float64).reshape(len(frame), len(columns))}
        return {"action": "stop", "samples": len(frame), "columns": columns, "rails": self._rail_names, "arrays": arrays}

    def close(self) -> None:
        if self._recorder is not None:
            self._recorder.stop()
            self._recorder = None
        if self._acc is not None:
            self._acc.close()
            self._acc = None

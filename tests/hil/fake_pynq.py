"""A stand-in for the ``pynq`` package on the host, for testing the PYNQ backend end to end.

``Overlay`` forwards the AXI DMA to the real RTL (``qmlp.sim.rtl.run_beats`` on ``RTL_DIR``):
each MM2S transfer streams its bytes through a fresh simulation, S2MM transfers hand out the
output vectors in order, and the AXI-Lite counters accumulate the values the simulation read
from ``qmlp_top``'s register file. ``get_rails``/``DataRecorder`` return fixed readings at PYNQ's
1/8 W resolution. Only what the generated driver and the backend call is implemented."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import ModuleType

import numpy as np

RTL_DIR: Path | None = None
RAILS = {"12V": 9.875, "INT": 1.25, "1V8": 0.375}
REG = {0x00: "ID", 0x04: "VERSION", 0x08: "LAST_LATENCY", 0x0C: "INFERENCES", 0x10: "CYCLES"}


class _Buffer(np.ndarray):
    def flush(self) -> None:
        pass

    def invalidate(self) -> None:
        pass


def allocate(shape, dtype):
    return np.zeros(shape, dtype=dtype).view(_Buffer)


class _Registers:
    def __init__(self, registers: dict[str, int]) -> None:
        self.values = dict(registers)

    def read(self, offset: int) -> int:
        return self.values.get(REG[offset], 0)

    def write(self, offset: int, value: int) -> None:
        if offset == 0x14 and value & 1:
            self.values.update(LAST_LATENCY=0, INFERENCES=0, CYCLES=0)


class _Send:
    def __init__(self, dma: "_Dma") -> None:
        self.dma = dma

    def transfer(self, buf) -> None:
        self.dma.stream(np.array(buf, dtype=np.uint8))

    def wait(self) -> None:
        pass


class _Recv:
    def __init__(self, dma: "_Dma") -> None:
        self.dma = dma

    def transfer(self, buf) -> None:
        buf[:] = self.dma.pending.pop(0)

    def wait(self) -> None:
        pass


class _Dma:
    def __init__(self, config: dict, regs: _Registers) -> None:
        self.config, self.regs, self.pending = config, regs, []
        self.sendchannel, self.recvchannel = _Send(self), _Recv(self)

    def stream(self, data: np.ndarray) -> None:
        from qmlp.sim.rtl import run_beats

        inp, out = self.config["input"], self.config["output"]
        # The AXI DMA moves whole stream words; a partial last word would reach the width
        # converter with TKEEP holes, which qmlp_top does not accept.
        assert len(data) % inp["dma_bytes"] == 0, f"MM2S transfer of {len(data)} bytes is not whole {inp['dma_bytes']}-byte words"
        out_beats = -(-out["elems"] // out["elems_per_beat"])
        vectors = len(data) // (-(-inp["elems"] // inp["elems_per_beat"]) * inp["beat_bytes"])
        result = run_beats(RTL_DIR, data.reshape(-1, inp["beat_bytes"]), out_bytes=out["beat_bytes"],
                           n_out_beats=vectors * out_beats, out_beats_per_vector=out_beats, backpressure=False)
        per_vector = result.out_beats.reshape(vectors, -1)
        self.pending.extend(per_vector[i] for i in range(vectors))
        values = self.regs.values
        values.update(ID=result.registers["ID"], VERSION=result.registers["VERSION"],
                      LAST_LATENCY=result.registers["LAST_LATENCY"])
        values["INFERENCES"] = (values.get("INFERENCES", 0) + result.registers["INFERENCES"]) % (1 << 32)
        values["CYCLES"] = (values.get("CYCLES", 0) + result.registers["CYCLES"]) % (1 << 32)


class Overlay:
    def __init__(self, bitfile: str, download: bool = True) -> None:
        root = Path(bitfile).resolve().parent.parent
        config = json.loads((root / "qmlp_driver" / "driver_config.json").read_text())
        # Before any transfer the register file reads what the RTL reports right after reset.
        self.qmlp_0 = _Registers({})
        from qmlp.sim.rtl import run_beats

        inp, out = config["input"], config["output"]
        idle = run_beats(RTL_DIR, np.zeros((0, inp["beat_bytes"]), np.uint8), out_bytes=out["beat_bytes"],
                         n_out_beats=0, out_beats_per_vector=1, backpressure=False)
        self.qmlp_0.values.update(ID=idle.registers["ID"], VERSION=idle.registers["VERSION"])
        self.axi_dma_0 = _Dma(config, self.qmlp_0)


class _Sensor:
    def __init__(self, name: str, watts: float) -> None:
        self.name, self.value = f"{name}_power", watts


class _Rail:
    def __init__(self, name: str, watts: float) -> None:
        self.power = _Sensor(name, watts)


def get_rails() -> dict[str, _Rail]:
    return {name: _Rail(name, watts) for name, watts in RAILS.items()}


class DataRecorder:
    def __init__(self, *sensors: _Sensor) -> None:
        self.sensors, self.rows, self.session = sensors, [], 0

    def _sample(self) -> None:
        self.rows.append((time.time(), self.session, [s.value for s in self.sensors]))

    def record(self, interval: float) -> None:
        self._sample()

    def mark(self) -> None:  # like pynq's: bumps the Mark column, returns nothing
        self._sample()
        self.session += 1
        self._sample()

    def stop(self) -> None:
        self._sample()

    @property
    def frame(self):
        import pandas as pd

        index = pd.to_datetime([r[0] for r in self.rows], unit="s")
        data = {s.name: [r[2][i] for r in self.rows] for i, s in enumerate(self.sensors)}
        data["Mark"] = [r[1] for r in self.rows]
        return pd.DataFrame(data, index=index)


def install(monkeypatch, rtl_dir: Path) -> ModuleType:
    """Put this module in sys.modules as ``pynq`` for the duration of a test."""
    import sys

    global RTL_DIR
    RTL_DIR = Path(rtl_dir)
    module = sys.modules[__name__]
    monkeypatch.setitem(sys.modules, "pynq", module)
    return module

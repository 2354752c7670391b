"""A stand-in for the parts of ``pynq`` the qmlp driver uses (Overlay, allocate, AXI DMA channels,
MMIO register access), forwarding DMA traffic to a simulation backend.

It models what matters for correctness on a real board: DMA buffers must come from ``allocate``;
MM2S bytes reach the accelerator as whole beats; qmlp_top's per-vector TLASTs pass the block
design's qmlp_tlast_batch (set through its AXI GPIO); an S2MM transfer completes at the TLAST that
reaches it and fails if the packet does not fit the buffer or if no data will ever arrive (the
hardware would hang); registers are read at their byte offsets."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Callable, Protocol

import numpy as np


class Backend(Protocol):
    def stream(self, data: np.ndarray) -> list[np.ndarray]: ...  # MM2S bytes -> output packets (TLAST-delimited)
    def read(self, offset: int) -> int: ...
    def write(self, offset: int, value: int) -> None: ...


class FakeBuffer(np.ndarray):
    """What ``pynq.allocate`` returns: a numpy array with a physical address and cache calls."""

    def flush(self) -> None:
        self.base_obj().flushes += 1

    def invalidate(self) -> None:
        self.base_obj().invalidates += 1

    def freebuffer(self) -> None:
        self.base_obj().freed = True

    def base_obj(self) -> "FakeBuffer":
        return self if self.base is None or not isinstance(self.base, FakeBuffer) else self.base


def allocate(shape, dtype=np.uint8) -> FakeBuffer:
    buf = np.zeros(shape, dtype=dtype).view(FakeBuffer)
    buf.flushes = buf.invalidates = 0
    buf.freed = False
    buf.physical_address = 0x1000_0000
    return buf


class _Send:
    def __init__(self, backend: Backend, pending: list[np.ndarray]) -> None:
        self.backend, self.pending, self.transfers = backend, pending, 0

    def transfer(self, buf: np.ndarray) -> None:
        if not isinstance(buf, FakeBuffer) or buf.freed:
            raise TypeError("MM2S transfer from memory not obtained with pynq.allocate (or freed)")
        self.transfers += 1
        self.pending.extend(self.backend.stream(np.array(buf, dtype=np.uint8)))

    def wait(self) -> None:
        pass


class TlastBatch:
    """Python model of qmlp/boards/hdl/qmlp_tlast_batch.v (the same rule; the Verilog itself is
    checked by tests/boards/tb_qmlp_tlast_batch.v): keep every ``frames``-th TLAST, restart the
    count when ``frames`` changes, 0 or 1 keeps all."""

    def __init__(self) -> None:
        self.frames = self.frames_q = self.seen = 0

    def set_frames(self, value: int) -> None:
        self.frames = int(value) & 0xFFFFFFFF
        if self.frames != self.frames_q:
            self.seen, self.frames_q = 0, self.frames

    def keeps_tlast(self) -> bool:
        end = self.frames <= 1 or self.seen == self.frames - 1
        self.seen = 0 if end else self.seen + 1
        return end


class FakeGPIO:
    """AXI GPIO channel 1 (data register at 0x0) driving qmlp_tlast_batch's frame count."""

    def __init__(self, batch: TlastBatch) -> None:
        self.batch, self.writes = batch, []

    def write(self, offset: int, value: int) -> None:
        if offset != 0x0:
            raise ValueError(f"AXI GPIO: write to 0x{offset:X}; the frame count is channel 1 data at 0x0")
        self.writes.append(value)
        self.batch.set_frames(value)


class _Recv:
    def __init__(self, pending: list[np.ndarray], batch: TlastBatch | None) -> None:
        self.pending, self.batch, self.armed, self.transfers = pending, batch, None, 0

    def transfer(self, buf: np.ndarray) -> None:
        if not isinstance(buf, FakeBuffer) or buf.freed:
            raise TypeError("S2MM transfer into memory not obtained with pynq.allocate (or freed)")
        if self.armed is not None:
            raise RuntimeError("S2MM transfer started while the previous one is still running")
        self.armed = buf

    def wait(self) -> None:
        if self.armed is None:
            raise RuntimeError("S2MM wait() without transfer()")
        # Vector packets (TLAST from qmlp_top) up to the TLAST the batch block lets through.
        parts = []
        while True:
            if not self.pending:
                raise RuntimeError("S2MM would hang: no output data will arrive")
            parts.append(self.pending.pop(0))
            if self.batch is None or self.batch.keeps_tlast():
                break
        packet = np.concatenate(parts)
        if packet.size > self.armed.size:
            raise RuntimeError(f"S2MM overflow: {packet.size}-byte packet into a {self.armed.size}-byte buffer")
        self.armed[: packet.size] = packet
        self.armed, self.transfers = None, self.transfers + 1


class FakeDMA:
    def __init__(self, backend: Backend, batch: TlastBatch | None) -> None:
        pending: list[np.ndarray] = []
        self.sendchannel = _Send(backend, pending)
        self.recvchannel = _Recv(pending, batch)


class FakeMMIO:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def read(self, offset: int) -> int:
        return self.backend.read(offset)

    def write(self, offset: int, value: int) -> None:
        self.backend.write(offset, value)


def make_pynq(backend_for: Callable[[Path], Backend], *, ip_name: str = "qmlp_0", dma_name: str = "axi_dma_0",
              batch_gpio: str | None = "qmlp_batch_gpio"):
    """A module object to install as ``sys.modules['pynq']``; Overlay(bitfile) builds the backend.
    ``batch_gpio=None`` models a block design without qmlp_tlast_batch (TLAST after every vector)."""

    class Overlay:
        def __init__(self, bitfile: str, download: bool = True) -> None:
            path = Path(bitfile)
            if not path.is_file() or not path.with_suffix(".hwh").is_file():
                raise OSError(f"fake pynq: {bitfile} or its .hwh missing")
            backend = backend_for(path)
            batch = TlastBatch() if batch_gpio else None
            setattr(self, dma_name, FakeDMA(backend, batch))
            setattr(self, ip_name, FakeMMIO(backend))
            if batch_gpio:
                setattr(self, batch_gpio, FakeGPIO(batch))
            self.downloaded = download

    module = types.ModuleType("pynq")
    module.Overlay = Overlay
    module.allocate = allocate
    return module

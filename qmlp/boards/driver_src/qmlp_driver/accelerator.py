"""Run a compiled qmlp design through its AXI DMA and read its counters over AXI-Lite.

Host-side arithmetic (quantize, pack, unpack, dequantize) is qmlp's own code, copied into
``_core`` when the driver was generated, so the board computes exactly what the compiler's
bit-accurate simulator computes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ._core import bitaccurate, interface, ir, packing, untrusted
from ._core.datatypes import DataType

__all__ = ["Accelerator", "DriverError", "REGISTERS", "load_config"]

PACKAGE_DIR = Path(__file__).resolve().parent
# Byte offsets of qmlp_top's AXI-Lite registers, from the compiler's one table (qmlp/interface.py,
# bundled in _core); CTRL bit 0 clears counters.
REGISTERS = interface.offsets()
ID_VALUE = interface.ID_VALUE


class DriverError(RuntimeError):
    """The deployment or the hardware is not what this driver was generated for."""


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """The generation-time facts: stream layout, block-design names, bitstream location."""
    return json.loads(Path(path or PACKAGE_DIR / "driver_config.json").read_text())


class _Side:
    """One stream direction: element type and beat geometry."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.dtype = DataType.parse(spec["dtype"])
        self.elems = int(spec["elems"])
        self.per_beat = int(spec["elems_per_beat"])
        self.beat_bytes = int(spec["beat_bytes"])
        self.beats = -(-self.elems // self.per_beat)
        self.vector_bytes = self.beats * self.beat_bytes
        # Vectors per MM2S transfer must make whole DMA stream beats, so a width converter
        # between the DMA and qmlp_top never sees a partial (TKEEP) beat.
        dma_bytes = int(spec["dma_bytes"])
        self.vector_group = dma_bytes // math.gcd(self.vector_bytes, dma_bytes)


class Accelerator:
    """The accelerator in a loaded overlay.

    ``root`` is the deployment directory holding ``dataflow.json`` and ``bitstream/`` (default: the
    directory containing this package). Pass ``overlay`` to reuse an already loaded
    ``pynq.Overlay`` (or a stand-in with the same attributes); otherwise ``bitfile`` (default
    ``root/bitstream/qmlp.bit``) is loaded. ``batch_size`` bounds one DMA transfer."""

    def __init__(self, bitfile: str | Path | None = None, *, root: str | Path | None = None,
                 overlay: Any = None, download: bool = True, batch_size: int = 1024) -> None:
        self.root = Path(root) if root is not None else PACKAGE_DIR.parent
        self.config = load_config()
        self.dataflow = ir.load(self.root / "dataflow.json")
        ir.verify(self.dataflow)
        self.input = _Side(self.config["input"])
        self.output = _Side(self.config["output"])
        if self.input.elems != self.dataflow.input.features:
            raise DriverError(f"{self.root / 'dataflow.json'} has {self.dataflow.input.features} inputs but the "
                              f"driver was generated for {self.input.elems}; regenerate with 'qmlp compile'")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        if overlay is None:
            import pynq  # only on the board

            bitfile = Path(bitfile) if bitfile is not None else self.root / self.config["bitstream"]
            if not bitfile.is_file() or not bitfile.with_suffix(".hwh").is_file():
                raise DriverError(f"{bitfile} (and its .hwh) not found; build it with 'make bitstream' in "
                                  f"OUT/vivado and copy deploy/bitstream/ next to this driver")
            overlay = pynq.Overlay(str(bitfile), download=download)
        self.overlay = overlay
        self.dma = getattr(overlay, self.config["dma_name"])
        self.regs = getattr(overlay, self.config["ip_name"])
        # The AXI GPIO setting how many vectors make one S2MM packet (qmlp_tlast_batch); a design
        # without it gets one S2MM transfer per vector.
        self.batch_gpio = getattr(overlay, self.config["batch_gpio_name"], None)
        self._buffers: dict[tuple[str, int], Any] = {}

    # --- host-side arithmetic (exactly the compiler's) -------------------------------------
    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float input (batch, *input_shape) -> the integers the fabric receives. NaN and
        infinities are refused (InputError, a ValueError), as by ``qmlp simulate`` and the agent."""
        x = untrusted.finite_floats(np.asarray(x), "input")
        shape = tuple(self.dataflow.input_shape)
        if x.shape[1:] != shape:
            raise ValueError(f"input shape {x.shape} does not match (batch, {', '.join(map(str, shape))})")
        return bitaccurate.quantize_input(self.dataflow.input, x.reshape(x.shape[0], -1))

    def pack(self, q: np.ndarray) -> np.ndarray:
        """(batch, features) integers -> (batch * vector_bytes,) uint8, the MM2S byte stream."""
        return packing.pack(q, self.input.dtype, self.input.per_beat).reshape(-1)

    def unpack(self, data: np.ndarray, batch: int) -> np.ndarray:
        """(batch * vector_bytes,) uint8 from S2MM -> (batch, out elements) integers."""
        beats = np.asarray(data, dtype=np.uint8).reshape(batch, self.output.beats, self.output.beat_bytes)
        return packing.unpack(beats, self.output.dtype, self.output.per_beat, self.output.elems)

    def dequantize(self, out: np.ndarray) -> np.ndarray:
        """Integer outputs -> float outputs shaped like the ONNX output (``y = out*scale + bias``)."""
        y = bitaccurate.dequantize_output(self.dataflow, out)
        return y.reshape((out.shape[0], *self.dataflow.output_shape))

    # --- hardware --------------------------------------------------------------------------
    def _buffer(self, role: str, nbytes: int) -> Any:
        """A DMA buffer of exactly ``nbytes`` for ``role`` (in/out), kept for reuse."""
        buf = self._buffers.get((role, nbytes))
        if buf is None:
            buf = self._buffers[(role, nbytes)] = self._allocate(nbytes)
        return buf

    @staticmethod
    def _allocate(nbytes: int) -> Any:
        import pynq  # physically contiguous, cache-managed memory the DMA can reach

        return pynq.allocate(shape=(nbytes,), dtype=np.uint8)

    def execute(self, q: np.ndarray) -> np.ndarray:
        """Integer inputs (batch, features) -> integer outputs (batch, out elements) via DMA.

        Each chunk of up to ``batch_size`` vectors is one MM2S transfer, padded with zero vectors
        (outputs discarded) to a whole number of DMA stream beats so a width converter never sees
        a partial beat. qmlp_top ends every output vector with TLAST; the block design's
        qmlp_tlast_batch keeps only the chunk's last one (its GPIO is set to the chunk size), so
        the chunk comes back in one S2MM transfer. Without that block, outputs are received one
        vector per transfer (re-armed at once; the stream stalls, never drops, in between)."""
        q = np.asarray(q, dtype=np.int64)
        if q.ndim != 2 or q.shape[1] != self.input.elems:
            raise ValueError(f"integer input must be (batch, {self.input.elems}), got {q.shape}")
        if not self.input.dtype.allows(q):
            raise ValueError(f"integer input outside {self.input.dtype}")
        out = np.empty((q.shape[0], self.output.elems), dtype=np.int64)
        start = 0
        for n, padded in self.transfer_plan(q.shape[0]):
            chunk = q[start:start + n]
            if padded != n:
                chunk = np.concatenate([chunk, np.zeros((padded - n, chunk.shape[1]), dtype=np.int64)])
            inbuf = self._buffer("in", padded * self.input.vector_bytes)
            inbuf[:] = self.pack(chunk)
            _flush(inbuf)
            raw = self._transfer(inbuf, padded)
            out[start:start + n] = self.unpack(raw, padded)[:n]
            start += n
        return out

    def transfer_plan(self, batch: int) -> list[tuple[int, int]]:
        """How ``execute`` splits ``batch`` vectors: one (vectors, vectors sent incl. zero padding)
        per MM2S transfer. The fabric computes and counts the padding vectors too."""
        group = self.input.vector_group
        fits = int(self.config["dma_max_bytes"]) // max(self.input.vector_bytes, self.output.vector_bytes)
        chunk = max(group, min(self.batch_size, fits) // group * group)
        sizes = [min(chunk, batch - start) for start in range(0, batch, chunk)]
        return [(n, -(-n // group) * group) for n in sizes]

    def _transfer(self, inbuf: Any, vectors: int) -> np.ndarray:
        """One MM2S transfer of ``vectors`` packed inputs; returns their packed outputs."""
        send, recv = self.dma.sendchannel, self.dma.recvchannel
        size = self.output.vector_bytes
        if self.batch_gpio is not None:
            # 0 first restarts qmlp_tlast_batch's count even if the size did not change.
            self.batch_gpio.write(0x0, 0)
            self.batch_gpio.write(0x0, vectors)
            outbuf = self._buffer("out", vectors * size)
            recv.transfer(outbuf)
            send.transfer(inbuf)
            send.wait()
            recv.wait()
            _invalidate(outbuf)
            return np.array(outbuf, dtype=np.uint8)
        outbuf = self._buffer("out", size)
        raw = np.empty(vectors * size, dtype=np.uint8)
        send.transfer(inbuf)
        for i in range(vectors):
            recv.transfer(outbuf)
            recv.wait()
            _invalidate(outbuf)
            raw[i * size:(i + 1) * size] = outbuf
        send.wait()
        return raw

    def predict(self, x: np.ndarray, *, argmax: bool = False) -> np.ndarray:
        """Float inputs -> float outputs shaped like the ONNX output; ``argmax=True`` returns the
        index of the largest output per sample. A design compiled with the hardware argmax unit
        always returns class indices."""
        out = self.execute(self.quantize(x))
        if self.config["argmax"]:
            return out[:, 0]
        y = self.dequantize(out)
        return np.argmax(y.reshape(y.shape[0], -1), axis=1) if argmax else y

    # --- registers -------------------------------------------------------------------------
    def read_register(self, name: str) -> int:
        return int(self.regs.read(REGISTERS[name]))

    def counters(self) -> dict[str, int]:
        """The hardware counters: LAST_LATENCY (cycles), INFERENCES, CYCLES (low 32 bits)."""
        return {name: self.read_register(name) for name in ("LAST_LATENCY", "INFERENCES", "CYCLES")}

    def clear_counters(self) -> None:
        self.regs.write(REGISTERS["CTRL"], 1)

    def identify(self) -> dict[str, int]:
        """Check that the loaded bitstream is this design: ID and VERSION registers."""
        ident, version = self.read_register("ID"), self.read_register("VERSION")
        expected = interface.version_value(self.config["schema_version"], len(self.dataflow.layers))
        if ident != ID_VALUE:
            raise DriverError(f"ID register reads 0x{ident:08X}, not 0x{ID_VALUE:08X}: the overlay is not a qmlp design")
        if version != expected:
            raise DriverError(f"VERSION register reads 0x{version:08X}, expected 0x{expected:08X} for "
                              f"{len(self.dataflow.layers)} layers: bitstream and dataflow.json differ")
        return {"ID": ident, "VERSION": version}

    def latency_us(self) -> float:
        """LAST_LATENCY in microseconds at the design's clock."""
        return self.read_register("LAST_LATENCY") / float(self.config["clock_mhz"])

    def selftest(self, samples: int = 256, seed: int = 0) -> int:
        """Random integer vectors through the hardware and through the bit-accurate model shipped
        in ``_core``; returns the number of vectors that differ (0 when the hardware is right)."""
        rng = np.random.default_rng(seed)
        quant = self.dataflow.input
        if self.input.dtype.name == "BIPOLAR":
            q = rng.choice(np.array([-1, 1]), size=(samples, self.input.elems))
        else:
            q = rng.integers(quant.qmin, quant.qmax + 1, size=(samples, self.input.elems))
        hw = self.execute(q)
        expected = bitaccurate.fabric_run(self.dataflow, q)  # the compiler's golden model, bundled
        return int(np.sum(np.any(hw != expected, axis=1)))

    def close(self) -> None:
        for buf in self._buffers.values():
            if hasattr(buf, "freebuffer"):
                buf.freebuffer()
        self._buffers.clear()


def _flush(buf: Any) -> None:
    if hasattr(buf, "flush"):  # PYNQ >= 2.6; older releases: sync_to_device
        buf.flush()
    elif hasattr(buf, "sync_to_device"):
        buf.sync_to_device()


def _invalidate(buf: Any) -> None:
    if hasattr(buf, "invalidate"):
        buf.invalidate()
    elif hasattr(buf, "sync_from_device"):
        buf.sync_from_device()


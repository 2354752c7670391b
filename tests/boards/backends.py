"""Simulation backends behind the fake pynq: the bit-accurate simulator (golden model), and the
Verilator RTL simulation of the emitted qmlp_top when qmlp.sim.rtl is available."""

from __future__ import annotations

import numpy as np

from qmlp import packing
from qmlp.boards.stream import dma_stream_bytes, stream_layout
from qmlp.ir import SCHEMA_VERSION, Dataflow
from qmlp.sim.bitaccurate import run_integer

ID_VALUE = 0x514D4C50


def check_mm2s(layout, data: np.ndarray) -> int:
    """Whole input vectors, and whole DMA stream beats when a width converter sits in front of
    qmlp_top (the driver must never rely on the converter's handling of a partial TKEEP beat).
    Returns the number of vectors."""
    side = layout.input
    if data.size % side.vector_bytes:
        raise RuntimeError(f"MM2S sent {data.size} bytes, not whole input vectors of {side.vector_bytes}")
    dma = dma_stream_bytes(side.beat_bytes)
    if dma != side.beat_bytes and data.size % dma:
        raise RuntimeError(f"MM2S sent {data.size} bytes: a partial {dma}-byte DMA beat into the width converter")
    return data.size // side.vector_bytes


class BitAccurateBackend:
    """Unpacks MM2S beats, runs the IR's integer pipeline, packs one TLAST packet per vector.
    Counters: INFERENCES counts vectors; cycle counts are not modelled (read as 0)."""

    def __init__(self, df: Dataflow, *, corrupt: bool = False) -> None:
        self.df, self.layout, self.corrupt = df, stream_layout(df), corrupt
        self.inferences = 0

    def stream(self, data: np.ndarray) -> list[np.ndarray]:
        side, out = self.layout.input, self.layout.output
        check_mm2s(self.layout, data)
        beats = data.reshape(-1, side.beats, side.beat_bytes)
        q = packing.unpack(beats, side.dtype, side.elems_per_beat, side.elems)
        result = run_integer(self.df, q)[1][-1]
        if self.df.argmax:
            result = np.argmax(result, axis=1)[:, None]
        packed = packing.pack(result, out.dtype, out.elems_per_beat)
        if self.corrupt:
            packed[0, 0, 0] ^= 1
        self.inferences += q.shape[0]
        return [vector.reshape(-1) for vector in packed]

    def read(self, offset: int) -> int:
        return {0x00: ID_VALUE, 0x04: (SCHEMA_VERSION << 16) | len(self.df.layers), 0x08: 0,
                0x0C: self.inferences, 0x10: 0}[offset]

    def write(self, offset: int, value: int) -> None:
        if offset == 0x14 and value & 1:
            self.inferences = 0


class RtlBackend:
    """Forwards each MM2S transfer to a Verilator run of the emitted qmlp_top (qmlp.sim.rtl.run_beats,
    with random back-pressure on both streams) and splits its output into S2MM packets where the
    RTL raised TLAST. Registers are the RTL's own, read at the end of the last run; each run starts
    from reset, so INFERENCES is summed over runs to model one board that is never reset."""

    def __init__(self, df: Dataflow, rtl_dir, *, seed: int = 0) -> None:
        from qmlp.sim.rtl import run_beats

        self.df, self.rtl_dir, self.seed = df, rtl_dir, seed
        self.layout = stream_layout(df)
        self.inferences = 0
        self.runs = 0
        # Power-on: registers as the RTL shows them after reset with no traffic.
        self.registers = run_beats(rtl_dir, np.zeros((0, self.layout.input.beat_bytes), np.uint8),
                                   out_bytes=self.layout.output.beat_bytes, n_out_beats=0,
                                   out_beats_per_vector=self.layout.output.beats).registers

    def stream(self, data: np.ndarray) -> list[np.ndarray]:
        from qmlp.sim.rtl import run_beats

        side, out = self.layout.input, self.layout.output
        vectors = check_mm2s(self.layout, data)
        result = run_beats(self.rtl_dir, data.reshape(-1, side.beat_bytes), out_bytes=out.beat_bytes,
                           n_out_beats=vectors * out.beats, out_beats_per_vector=out.beats,
                           backpressure=True, seed=self.seed + self.runs)
        self.runs += 1
        self.registers = result.registers
        self.inferences += result.registers["INFERENCES"]
        ends = np.flatnonzero(result.out_last) + 1
        packets = np.split(result.out_beats, ends[:-1]) if len(ends) else [result.out_beats]
        if len(ends) == 0 or ends[-1] != len(result.out_beats):
            raise RuntimeError("RTL output does not end with TLAST: the last S2MM transfer would never finish")
        return [packet.reshape(-1) for packet in packets]

    def read(self, offset: int) -> int:
        name = {0x00: "ID", 0x04: "VERSION", 0x08: "LAST_LATENCY", 0x0C: "INFERENCES", 0x10: "CYCLES"}[offset]
        return self.inferences if name == "INFERENCES" else self.registers[name]

    def write(self, offset: int, value: int) -> None:
        if offset == 0x14 and value & 1:  # the RTL run showed CTRL clears them (checked in the test)
            self.inferences = 0
            self.registers = {**self.registers, "LAST_LATENCY": 0, "CYCLES": self.registers["CYCLES_AFTER_CLEAR"]}

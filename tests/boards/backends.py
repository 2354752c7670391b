"""Simulation backends behind the fake pynq: the bit-accurate simulator (golden model), and the
Verilator RTL simulation of the emitted qmlp_top when qmlp.sim.rtl is available."""

from __future__ import annotations

import numpy as np

from qmlp import packing
from qmlp.boards.stream import stream_layout
from qmlp.ir import SCHEMA_VERSION, Dataflow
from qmlp.sim.bitaccurate import run_integer

ID_VALUE = 0x514D4C50


class BitAccurateBackend:
    """Unpacks MM2S beats, runs the IR's integer pipeline, packs one TLAST packet per vector.
    Counters: INFERENCES counts vectors; cycle counts are not modelled (read as 0)."""

    def __init__(self, df: Dataflow, *, corrupt: bool = False) -> None:
        self.df, self.layout, self.corrupt = df, stream_layout(df), corrupt
        self.inferences = 0

    def stream(self, data: np.ndarray) -> list[np.ndarray]:
        side, out = self.layout.input, self.layout.output
        if data.size % side.vector_bytes:
            raise RuntimeError(f"MM2S sent {data.size} bytes, not whole input vectors of {side.vector_bytes}")
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

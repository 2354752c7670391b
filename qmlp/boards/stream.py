"""The AXI-Stream layout of a folded Dataflow as the board sees it: element types, elements per
beat, TDATA bytes, and the AXI DMA stream width that carries it (rules in docs/interfaces.md)."""

from __future__ import annotations

from dataclasses import dataclass

from ..datatypes import DataType
from ..errors import ConfigError
from ..ir import Dataflow

__all__ = ["StreamSide", "StreamLayout", "stream_layout", "dma_stream_bytes", "MAX_DMA_STREAM_BYTES"]

# AXI DMA streams are 8..1024 bits wide, a power of two.
MAX_DMA_STREAM_BYTES = 128


@dataclass(frozen=True)
class StreamSide:
    dtype: DataType
    elems: int  # elements per vector
    elems_per_beat: int
    beat_bytes: int  # TDATA bytes of qmlp_top on this side

    @property
    def beats(self) -> int:
        return -(-self.elems // self.elems_per_beat)

    @property
    def vector_bytes(self) -> int:
        return self.beats * self.beat_bytes


@dataclass(frozen=True)
class StreamLayout:
    input: StreamSide
    output: StreamSide


def dma_stream_bytes(tdata_bytes: int) -> int:
    """Narrowest legal AXI DMA stream width (bytes) that is at least ``tdata_bytes``."""
    width = 1
    while width < tdata_bytes:
        width *= 2
    if width > MAX_DMA_STREAM_BYTES:
        raise ConfigError(f"stream beat of {tdata_bytes} bytes is wider than the AXI DMA's "
                          f"{MAX_DMA_STREAM_BYTES}-byte maximum; fold with a smaller SIMD/PE at the stream ends")
    return width


def stream_layout(df: Dataflow) -> StreamLayout:
    """Input: ``df.input.dtype`` x ``in_elems_per_beat``; output: the last layer's output type x
    ``out_elems_per_beat``, or one class index UINT(ceil(log2(classes))) with argmax."""
    if df.stream is None:
        raise ConfigError(f"dataflow {df.name!r} is not folded (no stream format); run the fold pass "
                          f"before emitting board files")
    from ..hwgen.plan import build_plan  # the stream ends as the hardware plan builds them

    hw = build_plan(df)
    return StreamLayout(*(StreamSide(end.dtype, end.features, end.elems, end.tdata_bits // 8)
                          for end in (hw.input, hw.output)))

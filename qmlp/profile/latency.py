"""Latency in three layers, and the statistics of repeated runs.

* **fabric**: cycles from the first input beat to the last output beat (the ``LAST_LATENCY``
  counter on a board, the RTL simulation's count on the virtual board), converted at the clock.
* **call**: the accelerator call including the DMA. On a board it is timed around the driver's
  DMA call; on the virtual board it is *modelled* (``model_call``): the driver's DMA transfers
  (one MM2S + one S2MM per chunk), each the cycle-accurate stream timing, stretched where the
  DMA's memory port is narrower than the stream's TDATA, plus the DMA's fixed costs, which are
  stated assumptions.
* **end to end**: the call plus the driver's host work (quantize + pack, unpack + dequantize),
  timed in Python around the host steps.

Warm-up runs are dropped before any statistic is taken.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = [
    "MIN_RUNS", "LatencyStats", "latency_stats", "cycles_to_seconds", "DmaModel", "CallModel",
    "model_call", "time_calls", "throughput",
]

MIN_RUNS = 1000  # the issue asks for a batch-1 distribution over at least 1,000 runs


@dataclass(frozen=True)
class LatencyStats:
    """Distribution of ``runs`` latencies in seconds (warm-up already excluded)."""

    runs: int
    warmup: int
    p50_s: float
    p90_s: float
    p99_s: float
    max_s: float
    min_s: float
    mean_s: float

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def latency_stats(samples_s: Sequence[float] | np.ndarray, *, warmup: int = 0) -> LatencyStats:
    """Percentiles of ``samples_s[warmup:]``.

    Expects: ``samples_s`` in run order, seconds. Guarantees: the first ``warmup`` samples (caches,
    page faults, lazy imports) are dropped; percentiles use numpy's default linear interpolation,
    so the same samples always give the same numbers."""
    data = np.asarray(samples_s, dtype=np.float64)
    if warmup < 0 or warmup >= data.size:
        raise ConfigError(f"latency statistics: warm-up {warmup} leaves no runs out of {data.size}")
    kept = data[warmup:]
    if not np.all(np.isfinite(kept)) or np.any(kept < 0):
        raise ConfigError("latency statistics: samples must be finite and non-negative seconds")
    p50, p90, p99 = np.percentile(kept, [50, 90, 99])
    return LatencyStats(runs=int(kept.size), warmup=int(warmup), p50_s=float(p50), p90_s=float(p90),
                        p99_s=float(p99), max_s=float(kept.max()), min_s=float(kept.min()),
                        mean_s=float(kept.mean()))


def cycles_to_seconds(cycles: float | np.ndarray, clock_mhz: float) -> float | np.ndarray:
    if not clock_mhz > 0:
        raise ConfigError(f"clock must be > 0 MHz, got {clock_mhz}")
    return np.asarray(cycles, dtype=np.float64) / (clock_mhz * 1e6) if np.ndim(cycles) else float(cycles) / (clock_mhz * 1e6)


@dataclass(frozen=True)
class DmaModel:
    """What the virtual board assumes about the AXI DMA between DDR and the accelerator.

    It follows the generated block design and driver (docs/boards.md): each chunk of a batch is
    one MM2S transfer and, thanks to ``qmlp_tlast_batch``, one S2MM transfer, so the fixed costs
    are paid once per transfer, never per vector. ``port_bits`` is the board's high-performance
    port width (DESIGN.md: 128 on the UltraScale+ boards, 64 on the PYNQ-Z2); the other fields
    are assumptions, stated in every report."""

    port_bits: int = 128
    # 2 GPIO writes (batch size) + ~6 DMA register writes to start S2MM and MM2S + completion polls
    setup_ns: float = 1000.0
    read_latency_ns: float = 200.0  # DDR read latency through the HP port before the first MM2S beat
    write_ns: float = 100.0  # last S2MM beat until the write response lands in DDR

    def assumptions(self) -> list[str]:
        return [
            f"DMA memory port {self.port_bits} bit (board data), one transfer per PL cycle",
            "one MM2S and one S2MM transfer per driver chunk (qmlp_tlast_batch keeps only the chunk's last "
            "TLAST), chunks and zero padding as the generated driver's transfer_plan",
            f"per transfer: start-up (batch-size GPIO + DMA register writes + completion poll) {self.setup_ns:g} ns, "
            f"DDR read latency before the first input beat {self.read_latency_ns:g} ns, last output beat to DDR "
            f"write response {self.write_ns:g} ns (assumptions)",
            "PYNQ's Python-level DMA API overhead is not modelled (measured on a board only)",
        ]


@dataclass(frozen=True)
class CallModel:
    """A modelled accelerator call: stream cycles at the clock plus the DMA's fixed costs."""

    batch: int
    transfers: int
    vectors_sent: int  # batch + the driver's zero padding
    stream_cycles: int  # summed over transfers: first input beat to last output beat, DMA beat rate included
    in_cycles_per_beat: int
    out_cycles_per_beat: int
    fixed_s: float
    seconds: float


def model_call(*, latency_cycles: float, ii_cycles: float, plan: Sequence[tuple[int, int]], in_beats: int,
               out_beats: int, in_beat_bytes: int, out_beat_bytes: int, clock_mhz: float,
               dma: DmaModel) -> CallModel:
    """Model one driver call made of the DMA transfers in ``plan``.

    Expects: ``latency_cycles`` = first input beat to last output beat of one vector and
    ``ii_cycles`` = cycles between vectors, both with one beat offered per cycle (the RTL
    simulation's counts); ``plan`` = (vectors, vectors sent incl. zero padding) per transfer, as
    the driver's ``transfer_plan``; ``in_beats`` / ``out_beats`` per vector. Guarantees: a
    transfer of ``p`` vectors streams ``latency + (p - 1) * II`` cycles; where a beat is wider
    than the DMA port, every beat takes ``ceil(beat / port)`` cycles and the stream stretches by
    the extra cycles of every beat (an upper bound: the fabric may hide part of it); the fixed
    costs are paid once per transfer, and transfers run one after another (the driver waits)."""
    if not plan:
        raise ConfigError("DMA model: the transfer plan is empty")
    port = dma.port_bits // 8
    in_cpb = max(1, math.ceil(in_beat_bytes / port))
    out_cpb = max(1, math.ceil(out_beat_bytes / port))
    stretch = in_beats * (in_cpb - 1) + out_beats * (out_cpb - 1)
    stream = sum(math.ceil(latency_cycles + (sent - 1) * ii_cycles) + sent * stretch for _, sent in plan)
    fixed = len(plan) * (dma.setup_ns + dma.read_latency_ns + dma.write_ns) * 1e-9
    return CallModel(batch=sum(n for n, _ in plan), transfers=len(plan), vectors_sent=sum(s for _, s in plan),
                     stream_cycles=int(stream), in_cycles_per_beat=in_cpb, out_cycles_per_beat=out_cpb,
                     fixed_s=fixed, seconds=fixed + float(cycles_to_seconds(stream, clock_mhz)))


def time_calls(call: Callable[[], object], *, runs: int, warmup: int) -> np.ndarray:
    """Wall time in seconds of ``warmup + runs`` calls of ``call`` (perf_counter_ns), in order."""
    if runs < 1 or warmup < 0:
        raise ConfigError(f"need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    out = np.empty(warmup + runs, dtype=np.float64)
    for index in range(out.size):
        start = time.perf_counter_ns()
        call()
        out[index] = (time.perf_counter_ns() - start) * 1e-9
    return out


def throughput(batch: int, seconds: float) -> float:
    """Inferences per second of a batch of ``batch`` vectors done in ``seconds``."""
    if batch < 1 or not seconds > 0:
        raise ConfigError(f"throughput needs batch >= 1 and seconds > 0, got {batch}, {seconds}")
    return batch / seconds

"""Latency in three layers, and the statistics of repeated runs.

* **fabric**: cycles from the first input beat to the last output beat (the ``LAST_LATENCY``
  counter on a board, the RTL simulation's count on the virtual board), converted at the clock.
* **call**: the accelerator call including the DMA. On a board it is timed around the driver's
  DMA call; on the virtual board it is *modelled* (``model_call``): the cycle-accurate stream
  timing, stretched where the DMA's memory port is narrower than the stream's TDATA, plus the
  DMA's fixed costs, which are stated assumptions.
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

    ``port_bits`` is the board's high-performance port width (DESIGN.md: 128 on the UltraScale+
    boards, 64 on the PYNQ-Z2); the other fields are assumptions, stated in every report."""

    port_bits: int = 128
    setup_ns: float = 1000.0  # ~8 AXI-Lite register writes from the PS to start MM2S and S2MM + a completion poll
    read_latency_ns: float = 200.0  # DDR read latency through the HP port before the first MM2S beat
    write_ns: float = 100.0  # last S2MM beat until the write response lands in DDR
    # The qmlp driver ends every output vector with TLAST, so S2MM completes once per vector and
    # is re-armed (a few register writes + a status poll) before the next vector can leave.
    rearm_ns: float = 500.0

    def assumptions(self) -> list[str]:
        return [
            f"DMA memory port {self.port_bits} bit (board data), one transfer per PL cycle",
            f"DMA start-up (register writes + completion poll) {self.setup_ns:g} ns (assumption)",
            f"DDR read latency before the first input beat {self.read_latency_ns:g} ns (assumption)",
            f"last output beat to DDR write response {self.write_ns:g} ns (assumption)",
            f"S2MM re-armed per output vector (TLAST ends each transfer) in {self.rearm_ns:g} ns at register "
            "level (assumption); the output stream stalls meanwhile",
            "PYNQ's Python-level DMA API overhead is not modelled (measured on a board only)",
        ]


@dataclass(frozen=True)
class CallModel:
    """A modelled accelerator call: stream cycles at the clock plus the DMA's fixed costs."""

    batch: int
    stream_cycles: int  # first input beat to last output beat, DMA beat rate included
    in_cycles_per_beat: int
    out_cycles_per_beat: int
    fixed_s: float
    seconds: float


def model_call(*, fabric_cycles: int, batch: int, in_beats: int, out_beats: int, in_beat_bytes: int,
               out_beat_bytes: int, clock_mhz: float, dma: DmaModel) -> CallModel:
    """Model one DMA call of ``batch`` vectors.

    Expects: ``fabric_cycles`` = cycles from the first input beat to the last output beat for the
    whole batch with one beat offered per cycle (the RTL simulation's count); ``in_beats`` /
    ``out_beats`` per vector. Guarantees: where a beat is wider than the DMA port, every beat takes
    ``ceil(beat / port)`` cycles and the stream stretches by the extra cycles of every beat (an
    upper bound: the fabric may hide part of it); the DMA's fixed costs are added once per call;
    when re-arming S2MM for each of the ``batch - 1`` later output vectors takes longer than the
    stream, the re-arms set the pace."""
    port = dma.port_bits // 8
    in_cpb = max(1, math.ceil(in_beat_bytes / port))
    out_cpb = max(1, math.ceil(out_beat_bytes / port))
    stream = int(fabric_cycles) + batch * (in_beats * (in_cpb - 1) + out_beats * (out_cpb - 1))
    fixed = (dma.setup_ns + dma.read_latency_ns + dma.write_ns) * 1e-9
    stream_s = float(cycles_to_seconds(stream, clock_mhz))
    return CallModel(batch=batch, stream_cycles=stream, in_cycles_per_beat=in_cpb, out_cycles_per_beat=out_cpb,
                     fixed_s=fixed, seconds=fixed + max(stream_s, (batch - 1) * dma.rearm_ns * 1e-9))


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

"""Latency statistics, the modelled DMA call and host timing."""

from __future__ import annotations

import numpy as np
import pytest

from qmlp.errors import ConfigError
from qmlp.profile.latency import (DmaModel, cycles_to_seconds, latency_stats, model_call, throughput,
                                  time_calls)


def test_stats_drop_warmup_and_use_numpy_percentiles():
    samples = np.concatenate([[1.0, 0.9], np.arange(1, 1001) * 1e-6])  # two slow warm-up calls
    stats = latency_stats(samples, warmup=2)
    assert stats.runs == 1000 and stats.warmup == 2
    assert stats.max_s == pytest.approx(1000e-6)
    assert stats.min_s == pytest.approx(1e-6)
    assert stats.p50_s == pytest.approx(500.5e-6)
    assert stats.p90_s == pytest.approx(900.1e-6)
    assert stats.p99_s == pytest.approx(990.01e-6)
    assert stats.p50_s <= stats.p90_s <= stats.p99_s <= stats.max_s


def test_stats_refuse_nothing_left():
    with pytest.raises(ConfigError, match="warm-up 3 leaves no runs out of 3"):
        latency_stats([1.0, 2.0, 3.0], warmup=3)
    with pytest.raises(ConfigError, match="finite and non-negative"):
        latency_stats([1.0, -2.0])


def test_cycles_to_seconds():
    assert cycles_to_seconds(200, 200.0) == pytest.approx(1e-6)
    assert np.allclose(cycles_to_seconds(np.array([100, 300]), 100.0), [1e-6, 3e-6])
    with pytest.raises(ConfigError, match="clock must be > 0 MHz"):
        cycles_to_seconds(1, 0.0)


def test_model_call_narrow_beats_add_only_fixed_costs():
    dma = DmaModel(port_bits=128, setup_ns=1000, read_latency_ns=200, write_ns=100)
    call = model_call(latency_cycles=50, ii_cycles=10, plan=[(1, 1)], in_beats=10, out_beats=1, in_beat_bytes=4,
                      out_beat_bytes=8, clock_mhz=200.0, dma=dma)
    assert call.stream_cycles == 50 and call.transfers == 1
    assert call.in_cycles_per_beat == call.out_cycles_per_beat == 1
    assert call.seconds == pytest.approx(1.3e-6 + 50 / 200e6)


def test_model_call_wide_beats_stretch_the_stream():
    # 40 INT8 inputs in one 40-byte beat through a 64-bit port: 5 port cycles per beat.
    dma = DmaModel(port_bits=64, setup_ns=0, read_latency_ns=0, write_ns=0)
    call = model_call(latency_cycles=20, ii_cycles=0, plan=[(3, 3)], in_beats=1, out_beats=1, in_beat_bytes=40,
                      out_beat_bytes=2, clock_mhz=100.0, dma=dma)
    assert call.in_cycles_per_beat == 5 and call.out_cycles_per_beat == 1
    assert call.stream_cycles == 20 + 3 * 4
    assert call.seconds == pytest.approx(32 / 100e6)
    assert any("assumption" in line for line in dma.assumptions())


def test_model_call_pays_fixed_costs_per_transfer_not_per_vector():
    """The block design returns a whole chunk in one S2MM transfer (qmlp_tlast_batch): 10,000
    vectors at II 10 cost the stream plus the fixed costs of the driver's transfers only."""
    dma = DmaModel(port_bits=128, setup_ns=1000, read_latency_ns=200, write_ns=100)
    plan = [(1024, 1024)] * 9 + [(784, 784)]
    call = model_call(latency_cycles=100, ii_cycles=10, plan=plan, in_beats=1, out_beats=1, in_beat_bytes=4,
                      out_beat_bytes=4, clock_mhz=200.0, dma=dma)
    assert call.batch == call.vectors_sent == 10_000 and call.transfers == 10
    assert call.stream_cycles == 9 * (100 + 1023 * 10) + (100 + 783 * 10)
    assert call.seconds == pytest.approx(10 * 1.3e-6 + call.stream_cycles / 200e6)
    assert 10_000 / call.seconds > 15e6  # stream-bound (20 M/s at II 10), not capped near 2 M/s


def test_model_call_counts_the_drivers_padding_vectors():
    dma = DmaModel(port_bits=128, setup_ns=0, read_latency_ns=0, write_ns=0)
    call = model_call(latency_cycles=100, ii_cycles=10, plan=[(1, 4)], in_beats=1, out_beats=1, in_beat_bytes=4,
                      out_beat_bytes=4, clock_mhz=200.0, dma=dma)
    assert call.batch == 1 and call.vectors_sent == 4 and call.stream_cycles == 130
    with pytest.raises(ConfigError, match="transfer plan is empty"):
        model_call(latency_cycles=1, ii_cycles=1, plan=[], in_beats=1, out_beats=1, in_beat_bytes=1,
                   out_beat_bytes=1, clock_mhz=1.0, dma=dma)


def test_time_calls_counts_every_call():
    calls = []
    times = time_calls(lambda: calls.append(1), runs=20, warmup=5)
    assert len(calls) == 25 and times.shape == (25,) and np.all(times >= 0)
    with pytest.raises(ConfigError, match="runs >= 1"):
        time_calls(lambda: None, runs=0, warmup=0)


def test_throughput():
    assert throughput(1000, 0.5) == 2000
    with pytest.raises(ConfigError):
        throughput(0, 1.0)

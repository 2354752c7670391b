"""Cycle model of the emitted RTL: the exact handshake cycle of every beat, without simulating data.

The generated ``qmlp_top`` is a chain of units (``HardwarePlan.stages``); each unit's
control (counters, valid bits, occupancy) is mirrored here one to one, so the model reproduces the
RTL's timing exactly when s_axis offers a beat every cycle and m_axis is always ready (the
conditions of the latency / II figures; tests compare it with Verilator cycle for cycle). The rules
per unit are written out in ``qmlp/hwgen/rtl/README.md``:

* layer (``qmlp_mvau``): one (nf, sf) issue per cycle, fold 0 waits for input beats; an output
  beat is valid ``3 + sum_stages + threshold_latency`` cycles after its last issue; everything
  stalls while the output is held.
* layer (``qmlp_const_layer``): one vector per cycle, valid ``latency`` (graph stages + search
  levels) cycles after it is accepted.
* ``qmlp_fifo``: an item accepted in cycle t can leave in cycle t + 1; full at DEPTH items;
  DEPTH 1 (a register slice) also takes an item while its held one leaves.
* ``qmlp_dwc``: accepts while it holds <= 3B - 1 elements; emits when it holds the next beat's
  real elements (both visible the cycle after the update).
* ``qmlp_gather``: the beat is valid the cycle after its last group (or the vector's last input
  beat) is taken; takes a beat while empty or while its beat leaves.
* ``qmlp_argmax``: the index is valid the cycle after the last beat.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..ir import Dataflow
from .plan import HardwarePlan, LayerPlan, StageKind, StagePlan, Unit, build_plan

__all__ = ["CycleModel", "cycle_model", "simulate_cycles"]


class _Unit(ABC):
    """One streaming unit's handshake behaviour, cycle by cycle."""

    @abstractmethod
    def m_valid(self) -> bool: ...

    @abstractmethod
    def s_ready(self, m_ready: bool) -> bool: ...

    @abstractmethod
    def step(self, s_valid: bool, m_ready: bool) -> None:
        """Advance one clock given the upstream valid and the downstream ready."""


class _Mvau(_Unit):
    def __init__(self, plan: LayerPlan) -> None:
        self.NF, self.SF, self.D = plan.nf, plan.sf, plan.sum_stages
        self.nf = self.sf = 0
        # v1, the D sum stages, v3 (accumulated), the threshold search's stages, v4 (output)
        self.v = [False] * (self.D + 3 + plan.threshold_latency)
        self.last = [False] * (self.D + 1)  # last1 and its copies along the sum stages

    def m_valid(self) -> bool:
        return self.v[-1]

    def s_ready(self, m_ready: bool) -> bool:
        return (not self.v[-1] or m_ready) and self.nf == 0

    def step(self, s_valid: bool, m_ready: bool) -> None:
        if self.v[-1] and not m_ready:
            return  # en = 0: the whole pipeline holds
        issue = s_valid if self.nf == 0 else True
        last_sf = self.sf == self.SF - 1
        d = self.D
        self.v = [issue] + self.v[:d] + [self.v[d] and self.last[d]] + self.v[d + 1:-1]
        self.last = [last_sf] + self.last[:d]
        if issue:
            self.sf = 0 if last_sf else self.sf + 1
            if last_sf:
                self.nf = 0 if self.nf == self.NF - 1 else self.nf + 1


class _Const(_Unit):
    def __init__(self, plan: LayerPlan) -> None:
        # valid stages before the output register: graph banks + search levels
        self.pipe = [False] * (plan.latency - 1)
        self.vout = False

    def m_valid(self) -> bool:
        return self.vout

    def s_ready(self, m_ready: bool) -> bool:
        return not self.vout or m_ready

    def step(self, s_valid: bool, m_ready: bool) -> None:
        if self.vout and not m_ready:
            return
        self.pipe = [s_valid] + self.pipe
        self.vout = self.pipe.pop()


class _Fifo(_Unit):
    def __init__(self, depth: int) -> None:
        self.depth, self.count = depth, 0

    def m_valid(self) -> bool:
        return self.count > 0

    def s_ready(self, m_ready: bool) -> bool:
        return self.count < self.depth

    def step(self, s_valid: bool, m_ready: bool) -> None:
        self.count += int(s_valid and self.count < self.depth) - int(self.count > 0 and m_ready)


class _Slice(_Fifo):
    def __init__(self) -> None:
        super().__init__(1)

    def s_ready(self, m_ready: bool) -> bool:
        return self.count == 0 or m_ready

    def step(self, s_valid: bool, m_ready: bool) -> None:
        push = s_valid and self.s_ready(m_ready)
        self.count += int(push) - int(self.count > 0 and m_ready)


class _Dwc(_Unit):
    def __init__(self, stage: StagePlan) -> None:
        self.a, self.b, self.n = stage.elems_in, stage.elems_out, stage.real
        self.in_beats, self.out_beats = stage.beats_in, stage.beats_out
        self.cnt = self.ib = self.ob = 0

    def _need(self) -> int:
        return max(0, min(self.b, self.n - self.ob * self.b))

    def m_valid(self) -> bool:
        return self.cnt >= self._need()

    def s_ready(self, m_ready: bool) -> bool:
        return self.cnt <= 3 * self.b - 1

    def step(self, s_valid: bool, m_ready: bool) -> None:
        fire_in = s_valid and self.cnt <= 3 * self.b - 1
        fire_out = self.m_valid() and m_ready
        take = max(0, min(self.a, self.n - self.ib * self.a))
        self.cnt += (take if fire_in else 0) - (self._need() if fire_out else 0)
        if fire_in:
            self.ib = (self.ib + 1) % self.in_beats
        if fire_out:
            self.ob = (self.ob + 1) % self.out_beats


class _Gather(_Unit):
    def __init__(self, stage: StagePlan) -> None:
        self.k_beats, self.in_beats = stage.elems_out // stage.elems_in, stage.beats_in
        self.k = self.ib = 0
        self.full = False

    def m_valid(self) -> bool:
        return self.full

    def s_ready(self, m_ready: bool) -> bool:
        return not self.full or m_ready

    def step(self, s_valid: bool, m_ready: bool) -> None:
        fire = s_valid and self.s_ready(m_ready)
        done = fire and (self.k == self.k_beats - 1 or self.ib == self.in_beats - 1)
        if fire:
            self.k = 0 if done else self.k + 1
            self.ib = (self.ib + 1) % self.in_beats
        if done:
            self.full = True
        elif m_ready:
            self.full = False


class _Argmax(_Unit):
    def __init__(self, beats: int) -> None:
        self.beats, self.beat, self.out_valid = beats, 0, False

    def m_valid(self) -> bool:
        return self.out_valid

    def s_ready(self, m_ready: bool) -> bool:
        return not self.out_valid or m_ready

    def step(self, s_valid: bool, m_ready: bool) -> None:
        fire = s_valid and (not self.out_valid or m_ready)
        last = self.beat == self.beats - 1
        if fire:
            self.beat = 0 if last else self.beat + 1
        if fire and last:
            self.out_valid = True
        elif m_ready:
            self.out_valid = False


def _unit(hw: HardwarePlan, stage: StagePlan) -> _Unit:
    if stage.kind is StageKind.LAYER:
        plan = hw.layers[stage.layer]
        return _Const(plan) if plan.unit is Unit.CONST else _Mvau(plan)
    if stage.kind is StageKind.FIFO:
        return _Slice() if stage.is_slice else _Fifo(stage.depth)
    if stage.kind is StageKind.DWC:
        return _Gather(stage) if stage.is_gather else _Dwc(stage)
    return _Argmax(stage.beats_in)


def simulate_cycles(hw: HardwarePlan | Dataflow, vectors: int, *,
                    max_cycles: int = 50_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Handshake cycles of every input beat and every output beat for ``vectors`` back-to-back
    inferences (s_axis always valid, m_axis always ready), cycle 0 = first cycle after reset."""
    hw = hw if isinstance(hw, HardwarePlan) else build_plan(hw)
    units = [_unit(hw, s) for s in hw.stages]
    in_total = hw.input.beats * vectors
    out_total = hw.output.beats * vectors
    in_cycles, out_cycles = [], []
    sent = cycle = 0
    while len(out_cycles) < out_total:
        if cycle >= max_cycles:
            raise RuntimeError(f"cycle model of {hw.name}: no progress after {max_cycles} cycles")
        valids = [sent < in_total] + [u.m_valid() for u in units]
        readies = [True] * (len(units) + 1)  # readies[k] = m_ready of unit k-1 / s_ready of unit k
        for k in range(len(units) - 1, -1, -1):
            readies[k] = units[k].s_ready(readies[k + 1])
        if valids[0] and readies[0]:
            in_cycles.append(cycle)
            sent += 1
        if valids[-1] and readies[-1]:
            out_cycles.append(cycle)
        for k, unit in enumerate(units):
            unit.step(valids[k], readies[k + 1])
        cycle += 1
    return np.array(in_cycles, dtype=np.int64), np.array(out_cycles, dtype=np.int64)


@dataclass(frozen=True)
class CycleModel:
    latency: int  # cycles from the first input beat to the last output beat of one inference
    ii: int  # steady-state cycles between consecutive inference completions
    layer_cycles: tuple[int, ...]  # (MH'/PE) * (MW'/SIMD) per layer


def cycle_model(hw: HardwarePlan | Dataflow, vectors: int = 4) -> CycleModel:
    """Latency of an inference entering an idle pipeline and the steady-state initiation interval
    (the gap between the last two of ``vectors`` back-to-back inferences)."""
    hw = hw if isinstance(hw, HardwarePlan) else build_plan(hw)
    in_cycles, out_cycles = simulate_cycles(hw, vectors)
    per_out = hw.output.beats
    last_out = out_cycles[per_out - 1::per_out]
    latency = int(last_out[0] - in_cycles[0])
    ii = int(last_out[-1] - last_out[-2]) if vectors > 1 else latency
    return CycleModel(latency=latency, ii=ii, layer_cycles=tuple(l.cycles for l in hw.layers))

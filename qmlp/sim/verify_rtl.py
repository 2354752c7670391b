"""``qmlp verify OUT``: QONNX reference == bit-accurate simulator == RTL, on every vector.

OUT is a compiled output directory (``dataflow.json``, ``rtl/``, optionally ``model.onnx`` and
``report/estimate_network_performance.json``). Stages:

1. simulator: ``qmlp.sim.bitaccurate.simulate`` on float inputs covering the input quantizer;
2. reference: qonnx ``execute_onnx`` on ``model.onnx`` (``qmlp.sim.reference``), every layer's
   integer activations compared with the simulator under the DESIGN.md agreement rule — skipped,
   and said so, when there is no model.onnx or the reference module is missing;
3. RTL: Verilator with random back-pressure on both streams; the output of every vector must equal
   the simulator's bit for bit;
4. timing: a back-to-back run without back-pressure; measured latency and II against the cycle
   model (``qmlp.hwgen.cycles``) and the estimate report when present.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import ConfigError
from ..ir import Dataflow
from .bitaccurate import fabric_outputs, simulate

if TYPE_CHECKING:  # pragma: no cover
    from ..build import Build

__all__ = ["VerifyReport", "verify_compiled", "expected_outputs", "TIMING_VECTORS"]

TIMING_VECTORS = 8  # back-to-back inferences for the latency / II measurement


@dataclass(frozen=True)
class VerifyReport:
    samples: int
    reference: object | None  # qmlp.sim.reference.Agreement, or None when not run
    reference_note: str  # why the reference stage was skipped ("" when it ran)
    rtl_mismatches: int  # output vectors where RTL != simulator (must be 0)
    rtl_latency: int  # measured, idle pipeline, cycles (first input beat -> last output beat)
    rtl_ii: float  # measured, back-to-back, cycles between completions
    model_latency: int  # qmlp.hwgen.cycles prediction
    model_ii: int
    estimate: dict = field(default_factory=dict)  # latency_cycles / ii_cycles from the report, if any
    registers: dict = field(default_factory=dict)  # AXI-Lite values after the back-pressure run

    @property
    def timing_ok(self) -> bool:
        same = self.rtl_latency == self.model_latency and self.rtl_ii == self.model_ii
        if "latency_cycles" in self.estimate:
            same = same and self.estimate["latency_cycles"] == self.rtl_latency
        if "ii_cycles" in self.estimate:
            same = same and self.estimate["ii_cycles"] == self.rtl_ii
        return same

    @property
    def ok(self) -> bool:
        """Bit-exactness everywhere (timing differences are reported, not failures)."""
        reference_ok = self.reference is None or bool(self.reference.ok)
        return self.rtl_mismatches == 0 and reference_ok


def expected_outputs(df: Dataflow, last_activations: np.ndarray) -> np.ndarray:
    """What m_axis carries for the simulator's last-layer values (``bitaccurate.fabric_outputs``)."""
    return fabric_outputs(df, last_activations)


def _inputs(df: Dataflow, samples: int, seed: int) -> np.ndarray:
    try:
        from .reference import sample_inputs
    except ImportError:  # the frontend's module is optional here
        rng = np.random.default_rng(seed)
        lo, hi = (-1, 1) if df.input.dtype.kind == "BIPOLAR" else (df.input.qmin, df.input.qmax)
        x = rng.uniform(lo - 2, hi + 2, size=(samples, df.input.features)) * df.input.scale
        return x.astype(np.float32).reshape((samples, *df.input_shape))
    return sample_inputs(df, samples, seed)


def _reference(model_path: Path, df: Dataflow, x: np.ndarray, sim) -> tuple[object | None, str]:
    if not model_path.exists():
        return None, f"no {model_path.name} in the output directory"
    try:
        from ..frontend.load import load_model
        from .reference import compare, run_reference
    except ImportError as error:
        return None, f"QONNX reference not available ({error})"
    ref = run_reference(model_path, x)
    return compare(load_model(model_path), df, ref, sim), ""


def verify_compiled(out_dir: "str | Path | Build", *, samples: int = 1000, seed: int = 0,
                    log: Callable[[str], None] | None = print) -> VerifyReport:
    """Check a compiled OUT directory end to end; prints a per-stage summary through ``log``
    (None = silent). Raises ConfigError when OUT is not a compiled output directory."""
    from ..hwgen.cycles import cycle_model
    from .rtl import simulate_rtl

    from ..build import Build

    say = log or (lambda _line: None)
    build = out_dir if isinstance(out_dir, Build) else Build.open(out_dir, folded=False)
    rtl_dir = build.require_rtl()
    if samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {samples}")
    df = build.dataflow

    start = time.monotonic()
    x = _inputs(df, samples, seed)
    sim = simulate(df, x)
    say(f"[1/4] simulator: {samples} vectors through {len(df.layers)} layers ({time.monotonic() - start:.1f} s)")

    agreement, note = _reference(build.model_path, df, x, sim)
    if agreement is None:
        say(f"[2/4] reference: skipped, {note}")
    else:
        worst = ", ".join(f"{l.name} {l.mismatches}/{l.compared}" for l in agreement.layers)
        say(f"[2/4] reference == simulator: {'yes' if agreement.ok else 'NO'} "
            f"(input mismatches {agreement.input_mismatches}; per layer {worst}) ({time.monotonic() - start:.1f} s)")

    say("[3/4] RTL: building / running Verilator with random back-pressure ...")
    rtl = simulate_rtl(df, rtl_dir, sim.inputs, backpressure=True, seed=seed)
    expected = expected_outputs(df, sim.activations[-1])
    mismatches = int(np.sum(np.any(rtl.outputs != expected, axis=1)))
    say(f"[3/4] RTL == simulator: {'yes' if mismatches == 0 else 'NO'} "
        f"({samples - mismatches}/{samples} vectors bit-exact) ({time.monotonic() - start:.1f} s)")

    # Timing: back to back, no back-pressure; inputs repeated when fewer than TIMING_VECTORS.
    q_timing = np.resize(sim.inputs, (TIMING_VECTORS, sim.inputs.shape[1]))
    timing = simulate_rtl(df, rtl_dir, q_timing, backpressure=False, seed=seed)
    completions = timing.beats.out_cycles[timing.beats.out_last]
    model = cycle_model(df, vectors=TIMING_VECTORS)
    estimate = {}
    performance = build.reports.performance
    if performance is not None:
        estimate = {"latency_cycles": performance.latency_cycles, "ii_cycles": performance.ii_cycles}
    report = VerifyReport(
        samples=samples, reference=agreement, reference_note=note, rtl_mismatches=mismatches,
        rtl_latency=int(timing.latency[0]), rtl_ii=float(completions[-1] - completions[-2]),
        model_latency=model.latency, model_ii=model.ii, estimate=estimate, registers=rtl.registers)
    est = (f"; estimate {estimate.get('latency_cycles', '?')} / {estimate.get('ii_cycles', '?')}" if estimate
           else "; no estimate report")
    say(f"[4/4] timing: latency {report.rtl_latency} cycles, II {report.rtl_ii:g} cycles measured; "
        f"cycle model {model.latency} / {model.ii}{est}")
    say(f"verify: {'PASS' if report.ok else 'FAIL'} ({time.monotonic() - start:.1f} s)")
    return report

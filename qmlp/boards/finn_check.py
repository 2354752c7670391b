"""Cross-check: FINN's hardware-layer graph, executed in FINN's Python mode (``finn_runner.py
--crosscheck`` in the FINN environment), against qmlp's bit-accurate simulator on the same inputs.

Compared exactly: the integers FINN's input Thresholding produces vs qmlp's host quantizer, and
each MVAU's output vs the matching qmlp layer (threshold levels, or raw accumulators for a last
layer without activation). The float outputs are compared against qonnx ``execute_onnx`` of the
original model (FINN's output scale is float arithmetic in another order)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ir import Dataflow
from ..sim.bitaccurate import simulate
from ..sim.reference import OUTPUT_RTOL, run_reference, sample_inputs
from .finn import run_finn

__all__ = ["FinnAgreement", "finn_crosscheck", "compare_finn"]


@dataclass(frozen=True)
class FinnAgreement:
    samples: int
    input_mismatch_samples: int  # samples whose fabric input integers differ
    input_tie_samples: int  # ... of which every differing value is an exact rounding tie x/scale = k + 0.5
    layer_mismatch_samples: tuple[int, ...]  # per qmlp layer: samples with equal inputs but differing integers
    output_mismatch_samples: int  # samples with equal inputs whose FINN output differs from execute_onnx
    finn_ops: tuple[str, ...]
    error: str | None = None  # FINN failed, or its graph does not map onto qmlp's layers

    @property
    def agrees_except_ties(self) -> bool:
        """FINN == qmlp everywhere except inputs on exact rounding ties (FINN's thresholds round
        ties upward where QONNX rounds half to even: a FINN lowering defect, DESIGN.md)."""
        return (self.error is None and self.input_mismatch_samples == self.input_tie_samples
                and not any(self.layer_mismatch_samples) and self.output_mismatch_samples == 0)

    def one_line(self) -> str:
        if self.error:
            return f"FINN cross-check: {self.error}"
        layers = ", ".join(f"fc{i} {n}" for i, n in enumerate(self.layer_mismatch_samples))
        return (f"FINN execute_onnx (Python mode) vs qmlp simulator, {self.samples} samples: input quantizer differs "
                f"in {self.input_mismatch_samples} ({self.input_tie_samples} only on exact .5 ties); with equal inputs, "
                f"layers differ in {layers}; outputs vs QONNX in {self.output_mismatch_samples}")


def _input_levels(finn: dict[str, np.ndarray], ops: tuple[str, ...], x: np.ndarray) -> np.ndarray:
    """The integers FINN's fabric receives: its input Thresholding's output, or FINN's input itself
    when FINN has no input node (a bipolar or integer input)."""
    if ops and ops[0].startswith("Thresholding"):
        return finn["node_0"].astype(np.int64)
    return x.reshape(x.shape[0], -1).astype(np.int64)


def compare_finn(df: Dataflow, x: np.ndarray, finn: dict[str, np.ndarray], reference_out: np.ndarray) -> FinnAgreement:
    """Compare FINN's per-node values (finn_runner's npz) with qmlp's simulation of ``x``."""
    ops = tuple(str(op) for op in finn["op_types"])
    sim = simulate(df, x)
    n = x.shape[0]
    mvaus = [i for i, op in enumerate(ops) if op.startswith("MVAU")]
    if len(mvaus) != len(df.layers):
        return FinnAgreement(n, 0, 0, (), 0, ops, f"FINN's graph has {len(mvaus)} MVAUs for qmlp's {len(df.layers)} "
                                                  f"layers ({', '.join(ops)})")
    differ = _input_levels(finn, ops, x) != sim.inputs
    scaled = x.reshape(n, -1).astype(np.float32)
    for op in df.input.pre:
        scaled = op.apply(scaled)
    scaled = scaled / df.input.scale
    tie = np.abs(scaled - np.floor(scaled)) == np.float32(0.5)
    same_input = ~np.any(differ, axis=1)
    per_layer = tuple(int(np.sum(np.any(finn[f"node_{i}"].astype(np.int64) != sim.activations[k], axis=1) & same_input))
                      for k, i in enumerate(mvaus))
    got = finn["outputs"].reshape(n, -1).astype(np.float64)
    want = reference_out.reshape(n, -1).astype(np.float64)
    bound = OUTPUT_RTOL * (np.abs(want) + np.abs(want).max(axis=0, initial=0.0))
    outputs = int(np.sum(np.any(np.abs(got - want) > bound, axis=1) & same_input))
    ties_only = int(np.sum(np.any(differ, axis=1) & ~np.any(differ & ~tie, axis=1)))
    return FinnAgreement(n, int((~same_input).sum()), ties_only, per_layer, outputs, ops)


def finn_crosscheck(model: Path, df: Dataflow, build_dir: Path, python: str, *, samples: int = 200,
                    seed: int = 0, x: np.ndarray | None = None) -> FinnAgreement:
    """Run FINN's hardware graph of the build in ``build_dir`` (FINN's steps already ran there) on
    ``x`` (default: ``sample_inputs(df, samples, seed)``) and compare with qmlp."""
    x = sample_inputs(df, samples, seed) if x is None else np.asarray(x, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="qmlp-finn-") as scratch:
        inputs, result = Path(scratch) / "x.npy", Path(scratch) / "finn.npz"
        np.save(inputs, x)
        run = run_finn(build_dir, python, log=lambda line: None, crosscheck=(inputs, result), skip_build=True)
        if run.error or not result.is_file():
            return FinnAgreement(len(x), 0, 0, (), 0, (), f"FINN failed ({run.error or 'no result'})")
        with np.load(result) as data:
            finn = {key: data[key] for key in data.files}
    return compare_finn(df, x, finn, run_reference(model, x).outputs)

"""Cross-check: FINN's hardware-layer graph, executed in FINN's Python mode (``finn_runner.py
--crosscheck`` in the FINN environment), against qmlp's bit-accurate simulator on the same inputs.

Compared exactly: the integers FINN's input Thresholding produces vs qmlp's host quantizer, and
each MVAU's output vs the matching qmlp layer (threshold levels, or raw accumulators for a last
layer without activation). The float outputs are compared against qonnx ``execute_onnx`` of the
original model (FINN's output scale is float arithmetic in another order)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..datatypes import BIPOLAR, DataType
from ..ir import Dataflow, Layer
from ..sim.bitaccurate import run_integer, simulate
from ..sim.reference import OUTPUT_RTOL, TIE_TOLERANCE, run_reference, sample_inputs
from .finn import run_finn

__all__ = ["CROSSCHECK_SAMPLES", "FinnAgreement", "finn_crosscheck", "compare_finn", "write_crosscheck"]

CROSSCHECK_SAMPLES = 200  # FINN's Python execution takes ~10-50 ms per sample


@dataclass(frozen=True)
class FinnAgreement:
    samples: int
    input_mismatch_samples: int  # samples whose fabric input integers differ
    input_tie_samples: int  # ... of which every differing value is a rounding tie: x/scale = k + 0.5 in exact
    # arithmetic (float32 may give 127.49999 for 0.5 / (1/255)), where FINN's thresholds round up
    layer_mismatch_samples: tuple[int, ...]  # per qmlp layer: samples with differing integers, qmlp's layers fed
    # with the integers FINN's input quantizer produced (the fabrics compared on the same inputs)
    output_mismatch_samples: int  # samples with equal inputs whose FINN output differs from execute_onnx
    finn_ops: tuple[str, ...]
    error: str | None = None  # FINN failed, or its graph does not map onto qmlp's layers

    @property
    def agrees_except_ties(self) -> bool:
        """FINN == qmlp everywhere except inputs on rounding ties (FINN's thresholds, derived in
        exact arithmetic, round them up; QONNX rounds the float32 quotient: a FINN lowering defect)."""
        return (self.error is None and self.input_mismatch_samples == self.input_tie_samples
                and not any(self.layer_mismatch_samples) and self.output_mismatch_samples == 0)

    def short(self) -> str:
        """The verdict for a compile's progress line."""
        if self.error:
            return f"cross-check failed: {self.error}"
        if not self.agrees_except_ties:
            return "FINN's hardware graph differs from qmlp (see report/finn/crosscheck.json)"
        ties = (f", its input quantizer rounds .5 ties up where QONNX rounds half to even ({self.input_tie_samples} "
                "samples hit one)" if self.input_tie_samples else "")
        return f"FINN's layers == qmlp's on {self.samples} samples{ties}"

    def one_line(self) -> str:
        if self.error:
            return f"FINN cross-check: {self.error}"
        layers = ", ".join(f"fc{i} {n}" for i, n in enumerate(self.layer_mismatch_samples))
        return (f"FINN execute_onnx (Python mode) vs qmlp simulator, {self.samples} samples: input quantizer differs "
                f"in {self.input_mismatch_samples} ({self.input_tie_samples} only on rounding ties); on FINN's input "
                f"integers, layers differ in {layers}; outputs vs QONNX (equal inputs) in {self.output_mismatch_samples}")


def _as_levels(values: np.ndarray, dtype: DataType) -> np.ndarray:
    """FINN streams a BIPOLAR value between its nodes as a bit (0 = -1, 1 = +1) but emits +-1 from
    the graph's last node; qmlp's simulator gives +-1."""
    values = values.astype(np.int64)
    return 2 * values - 1 if dtype == BIPOLAR and not np.any(values < 0) else values


def _finn_layer_output(values: np.ndarray, layer: Layer) -> np.ndarray:
    """A FINN MVAU's output in qmlp's terms: a binary (XNOR) MVAU without activation emits the
    popcount p of matching signs, whose +-1 dot product is 2p - MW."""
    if layer.activation is None and layer.in_dtype == BIPOLAR and layer.weight_dtype == BIPOLAR:
        return 2 * values.astype(np.int64) - layer.in_features
    return _as_levels(values, layer.out_dtype)


def _layer_ends(ops: tuple[str, ...], mvaus: list[int], df: Dataflow) -> list[int]:
    """Per qmlp layer, the FINN node whose output is that layer's output: the MVAU, or for a layer
    with an activation the last Thresholding before the next MVAU (FINN leaves the thresholds
    standalone, behind a float ElementwiseMul, where it cannot absorb a per-channel scale)."""
    ends = []
    for k, start in enumerate(mvaus):
        stop = mvaus[k + 1] if k + 1 < len(mvaus) else len(ops)
        thresholds = [i for i in range(start + 1, stop) if ops[i].startswith("Thresholding")]
        ends.append(thresholds[-1] if thresholds and df.layers[k].activation is not None else start)
    return ends


def compare_finn(df: Dataflow, x: np.ndarray, finn: dict[str, np.ndarray], reference_out: np.ndarray) -> FinnAgreement:
    """Compare FINN's per-node values (finn_runner's npz) with qmlp's simulation of ``x``."""
    ops = tuple(str(op) for op in finn["op_types"])
    sim = simulate(df, x)
    n = x.shape[0]
    mvaus = [i for i, op in enumerate(ops) if op.startswith("MVAU")]
    if len(mvaus) != len(df.layers):
        return FinnAgreement(n, 0, 0, (), 0, ops, f"FINN's graph has {len(mvaus)} MVAUs for qmlp's {len(df.layers)} "
                                                  f"layers ({', '.join(ops)})")
    quantizer = next((i for i, op in enumerate(ops[:mvaus[0]]) if op.startswith("Thresholding")), None)
    # FINN without an input Thresholding takes the integers as they come: nothing to compare there
    fabric_in = sim.inputs if quantizer is None else _as_levels(finn[f"node_{quantizer}"], df.input.dtype)
    differ = fabric_in != sim.inputs
    scaled = x.reshape(n, -1).astype(np.float32)
    for op in df.input.pre:
        scaled = op.apply(scaled)
    scaled = (scaled / df.input.scale).astype(np.float64)
    tie = np.abs(scaled - np.floor(scaled) - 0.5) <= TIE_TOLERANCE  # within float32 noise of k + 0.5
    same_input = ~np.any(differ, axis=1)
    # The fabric on its own: qmlp's integer pipeline fed with the integers FINN's fabric received.
    _, activations = run_integer(df, fabric_in)
    per_layer = tuple(int(np.sum(np.any(_finn_layer_output(finn[f"node_{i}"], layer) != activations[k], axis=1)))
                      for k, (i, layer) in enumerate(zip(_layer_ends(ops, mvaus, df), df.layers)))
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


def write_crosscheck(agreement: FinnAgreement, path: Path) -> None:
    """The agreement as JSON (report/finn/crosscheck.json), with its one-line summary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**asdict(agreement), "agrees_except_ties": agreement.agrees_except_ties, "summary": agreement.one_line()}
    path.write_text(json.dumps(data, indent=2) + "\n")

"""The float reference: qonnx ``execute_onnx`` on the original model, plus the integer levels
each quantizer produced, mapped onto the IR's layers so they compare directly with
``SimResult.activations`` (the IR's activation values are ``count + bias`` = the quantizer's
integer level, and its accumulators are the model's: weights keep their trained sign)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from ..errors import ModelError
from ..frontend import to_chain
from ..frontend.chain import QuantStep
from ..frontend.requant import RequantStep
from ..frontend.load import graph_inputs, graph_outputs, load_model
from ..datatypes import BIPOLAR
from ..frontend.lower import LayerSpec, prequant_function, split_layers, uniform_scale
from ..ir import Dataflow
from .bitaccurate import SimResult

__all__ = ["Reference", "run_reference", "CHUNK", "sample_inputs", "LayerAgreement", "Agreement", "compare",
           "TIE_TOLERANCE", "OUTPUT_RTOL"]

CHUNK = 2048  # samples per execute_onnx call: one call is ~ms per node, so batch generously


@dataclass(frozen=True)
class Reference:
    inputs: np.ndarray  # int64 (batch, features): the input quantizer's levels
    activations: tuple[np.ndarray, ...]  # per IR layer, int64 (batch, out_features)
    outputs: np.ndarray  # float32, exactly what execute_onnx returned


def _levels(context: dict, quant: QuantStep) -> np.ndarray:
    value = np.asarray(context[quant.tensor], dtype=np.float64)
    value = value.reshape(value.shape[0], -1)
    levels = np.round(value / quant.scale.astype(np.float64))
    return levels.astype(np.int64)


def _raw_accumulators(context: dict, spec: LayerSpec) -> np.ndarray:
    """The last layer without quantizer: its MatMul output over the accumulator's unit, rounded."""
    value = np.asarray(context[spec.matmul.tensor], dtype=np.float64)
    if spec.matmul.bias is not None:
        value = value - spec.matmul.bias
    unit = uniform_scale(spec.in_quant, spec.matmul) * spec.matmul.scale
    return np.round(value / unit).astype(np.int64)


def _batched_model(model: onnx.ModelProto, batch: int):
    """A ModelWrapper whose input/output batch axis is ``batch``, with shapes re-inferred."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    proto = copy.deepcopy(model)
    del proto.graph.value_info[:]
    computed = [copy.deepcopy(out) for out in graph_outputs(proto)]
    del proto.graph.output[:]  # drop constant pseudo-outputs (see graph_outputs)
    proto.graph.output.extend(computed)
    for value in (graph_inputs(proto)[0], proto.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = batch
    _keep_batch_in_reshapes(proto)
    return ModelWrapper(proto).transform(InferShapes())


def _keep_batch_in_reshapes(proto: onnx.ModelProto) -> None:
    """A model traced with batch 1 (``x.view(x.shape[0], -1)``) reshapes to a constant ``[1, -1]``;
    make that leading 1 a 0 ("copy the input's batch"), which is the same for batch 1."""
    from onnx import numpy_helper

    shapes = {init.name: init for init in proto.graph.initializer}
    shapes.update({node.output[0]: attr.t for node in proto.graph.node if node.op_type == "Constant"
                   for attr in node.attribute if attr.name == "value"})
    for node in proto.graph.node:
        allowzero = any(a.name == "allowzero" and a.i for a in node.attribute)
        tensor = shapes.get(node.input[1]) if node.op_type == "Reshape" and len(node.input) > 1 else None
        if tensor is None or allowzero:
            continue
        shape = numpy_helper.to_array(tensor)
        if shape.ndim == 1 and shape.size >= 2 and shape[0] == 1:
            tensor.CopyFrom(numpy_helper.from_array(np.concatenate([[0], shape[1:]]).astype(shape.dtype), tensor.name))


def run_reference(model: str | Path | onnx.ModelProto, x: np.ndarray) -> Reference:
    """Run ``execute_onnx`` on ``x`` (float, shaped (batch, *input_shape)) in chunks of CHUNK and
    read every quantizer's integer levels from the execution context."""
    from qonnx.core.onnx_exec import execute_onnx

    proto = model if isinstance(model, onnx.ModelProto) else load_model(model)
    chain = to_chain(proto)
    in_quant, specs = split_layers(chain)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 1 or x.shape[1:] != chain.input_shape:
        raise ModelError(f"input of shape {x.shape} does not match the model input "
                         f"'{chain.input_name}' (batch, {', '.join(map(str, chain.input_shape))})")
    wrappers: dict[int, object] = {}
    inputs, outputs, acts = [], [], [[] for _ in specs]
    for start in range(0, x.shape[0], CHUNK):
        chunk = x[start:start + CHUNK]
        if chunk.shape[0] not in wrappers:
            wrappers[chunk.shape[0]] = _batched_model(proto, chunk.shape[0])
        context = _execute(execute_onnx, wrappers[chunk.shape[0]], {chain.input_name: chunk},
                           "model" if isinstance(model, onnx.ModelProto) else str(model))
        inputs.append(_levels(context, in_quant))
        outputs.append(np.asarray(context[chain.output_name], dtype=np.float32))
        for index, spec in enumerate(specs):
            acts[index].append(_levels(context, spec.out_quant) if spec.out_quant is not None
                               else _raw_accumulators(context, spec))
    return Reference(inputs=np.concatenate(inputs), activations=tuple(np.concatenate(a) for a in acts),
                     outputs=np.concatenate(outputs))


def _execute(execute_onnx, model, feed: dict, where: str) -> dict:
    """execute_onnx, with a failure inside qonnx/onnxruntime (a graph the frontend accepts but
    onnxruntime cannot run, e.g. a BatchNorm statistic given as a scalar) as one ModelError."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(4)  # its C++ log line would break the one-line error
    try:
        return execute_onnx(model, feed, return_full_exec_context=True)
    except Exception as error:  # onnxruntime raises its own pybind types (Fail, InvalidArgument, ...)
        reason = (str(error).splitlines() or [""])[0][-200:]
        raise ModelError(f"{where}: the QONNX reference (qonnx execute_onnx) cannot run this model ({type(error).__name__}: "
                         f"{reason}); check it with onnx.checker.check_model and re-export it") from error


# --- inputs that exercise the whole quantizer, and the DESIGN.md agreement rule ---------------

def sample_inputs(df: Dataflow, n: int, seed: int = 0) -> np.ndarray:
    """``n`` float32 inputs shaped (n, *input_shape) covering the input quantizer: uniform over
    [qmin - 2, qmax + 2] * scale (so clipping happens), with 10% exact rounding ties
    (k + 0.5) * scale and 5% exact zeros (the bipolar decision point)."""
    rng = np.random.default_rng(seed)
    quant = df.input
    scale = quant.scale.astype(np.float32)
    lo, hi = (-1, 1) if quant.dtype == BIPOLAR else (quant.qmin, quant.qmax)
    x = rng.uniform(lo - 2, hi + 2, size=(n, quant.features)).astype(np.float32) * scale
    ties = (rng.integers(lo, max(hi, lo + 1), size=x.shape) + np.float32(0.5)).astype(np.float32) * scale
    pick = rng.random(x.shape)
    x = np.where(pick < 0.10, ties, x)
    x = np.where((pick >= 0.10) & (pick < 0.15), np.float32(0.0), x)
    return _undo_preprocessing(df, x).astype(np.float32).reshape((n, *df.input_shape))


def _undo_preprocessing(df: Dataflow, y: np.ndarray) -> np.ndarray:
    """Model inputs whose preprocessing (``df.input.pre``) gives about ``y``: exact for the
    usual ``2x - 1`` and ``(x + 1) / 2`` on these values, close elsewhere (only coverage matters)."""
    inverse = {"Add": np.subtract, "Sub": np.add, "Mul": np.divide, "Div": np.multiply}
    x = y.astype(np.float64)
    for op in reversed(df.input.pre):
        c = op.const.astype(np.float64)
        x = c - x if op.op == "RSub" else inverse[op.op](x, c)
    return x.astype(np.float32)


@dataclass(frozen=True)
class LayerAgreement:
    name: str
    compared: int  # integer values compared
    mismatches: int  # all differing values
    propagated: int  # ... in samples whose input to this layer already differed
    ties: int  # ... where the float reference sits within float32 noise of a rounding boundary
    unexplained: int  # the rest: a real disagreement

    @property
    def rate(self) -> float:
        return self.mismatches / self.compared if self.compared else 0.0


@dataclass(frozen=True)
class Agreement:
    samples: int
    input_mismatches: int
    layers: tuple[LayerAgreement, ...]
    max_abs_diff: float  # over samples whose integers all agree
    output_ok: bool

    @property
    def ok(self) -> bool:
        return self.input_mismatches == 0 and self.output_ok and all(l.unexplained == 0 for l in self.layers)


TIE_TOLERANCE = 1e-4  # in quantizer levels: float32 evaluation noise near x.5 (resp. 0 for bipolar)
OUTPUT_RTOL = 1e-5  # float32 MatMul/affine rounding on the host side is ~1e-7 relative; 100x margin


def _near_boundary(y: np.ndarray, bipolar: bool) -> np.ndarray:
    if bipolar:
        return np.abs(y) <= TIE_TOLERANCE * np.maximum(1.0, np.abs(y))
    return np.abs(y - np.floor(y) - 0.5) <= TIE_TOLERANCE * np.maximum(1.0, np.abs(y))


def _prequant_at(spec: LayerSpec, channels: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """The float64 pre-rounding value of the reference chain at accumulator ``acc`` of each
    ``channels`` entry."""
    original = spec.matmul.weights
    prequant, out = prequant_function(spec), np.empty(acc.size)
    for start in range(0, acc.size, 4096):  # every channel at every value: bound the grid's memory
        part = acc[start:start + 4096]
        grid = np.broadcast_to(part[None, :], (original.shape[0], part.size))
        out[start:start + part.size] = prequant(grid)[channels[start:start + part.size], np.arange(part.size)]
    return out


def _inner_tie(spec: LayerSpec, channels: np.ndarray, acc: np.ndarray,
               reference_level: np.ndarray) -> np.ndarray:
    """A tie at a quantizer inside the layer (requant.py: QuantReLU then QuantIdentity): nudging
    its pre-rounding values by TIE_TOLERANCE levels, down or up, gives the reference's level."""
    if not any(isinstance(op, RequantStep) for op in spec.post):
        return np.zeros(acc.shape, dtype=bool)
    found = np.zeros(acc.shape, dtype=bool)
    for nudge in (-TIE_TOLERANCE, TIE_TOLERANCE):
        post = tuple(replace(op, nudge=nudge) if isinstance(op, RequantStep) else op for op in spec.post)
        y = _prequant_at(replace(spec, post=post), channels, acc)
        found |= spec.out_quant.levels(y, 1.0) == reference_level
    return found


def compare(model: onnx.ModelProto, df: Dataflow, ref: Reference, sim: SimResult) -> Agreement:
    """Apply the DESIGN.md rule: integer activations identical except where float32 rounding
    sits on a threshold (``ties``: the IR equals the float64 chain there, the value is within
    TIE_TOLERANCE of a rounding boundary and the reference holds the level on the other side of
    that boundary; later layers of that sample count as ``propagated``);
    float outputs within OUTPUT_RTOL of the reference on samples whose integers agree."""
    _, specs = split_layers(to_chain(model))
    upstream = np.any(ref.inputs != sim.inputs, axis=1)
    layers = []
    for index, (spec, layer) in enumerate(zip(specs, df.layers)):
        differ = ref.activations[index] != sim.activations[index]
        propagated = differ & upstream[:, None]
        fresh = differ & ~upstream[:, None]
        ties = np.zeros_like(fresh)
        if spec.out_quant is not None and fresh.any():
            rows, cols = np.nonzero(fresh)
            y = _prequant_at(spec, cols, sim.accumulators[index][rows, cols])
            # a tie: the IR agrees with the float64 chain, and that value sits on a rounding
            # boundary, so only the float32 evaluation in the reference fell the other way
            quant = spec.out_quant
            agrees = quant.levels(y, 1.0) == sim.activations[index][rows, cols]
            # ... and the reference chose the level on the other side of that same boundary
            other = ref.activations[index][rows, cols]
            if not quant.bipolar:
                below = np.clip(np.floor(y), quant.qmin, quant.qmax)
                above = np.clip(np.floor(y) + 1, quant.qmin, quant.qmax)
                agrees &= (other == below) | (other == above)
            ties[rows, cols] = agrees & (_near_boundary(y, quant.bipolar)
                                         | _inner_tie(spec, cols, sim.accumulators[index][rows, cols],
                                                      other))
        layers.append(LayerAgreement(layer.name, differ.size, int(differ.sum()), int(propagated.sum()),
                                     int(ties.sum()), int((fresh & ~ties).sum())))
        upstream = upstream | np.any(differ, axis=1)
    clean = ~upstream
    diff = np.abs(ref.outputs.astype(np.float64) - sim.outputs.astype(np.float64)).reshape(len(clean), -1)[clean]
    magnitude = np.abs(ref.outputs.astype(np.float64)).reshape(len(clean), -1)[clean]
    bound = OUTPUT_RTOL * (magnitude + magnitude.max(axis=0, initial=0.0))
    return Agreement(samples=len(clean), input_mismatches=int(np.sum(ref.inputs != sim.inputs)),
                     layers=tuple(layers), max_abs_diff=float(diff.max(initial=0.0)),
                     output_ok=bool(np.all(diff <= bound)))

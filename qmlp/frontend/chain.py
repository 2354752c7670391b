"""Pass: ONNX graph -> a linear chain of typed steps (the only shapes of graph qmlp lowers).

Each step records the ONNX tensor it produces so the reference runner can read the same point
of an ``execute_onnx`` run. Constant parameters are folded into numpy arrays here; nothing is
approximated (weights become exact integers plus their float scales)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import onnx

from ..datatypes import BIPOLAR, INT, TERNARY, UINT, DataType, smallest_type_for_range
from ..errors import ModelError, UnsupportedOpError
from ..untrusted import LIMITS
from .graph import GraphView, attribute, node_label
from .load import graph_outputs

__all__ = ["QuantStep", "MatMulStep", "AffineStep", "BatchNormStep", "ReluStep", "Step", "Chain",
           "SUPPORTED_OPS", "check_supported_ops", "extract_chain", "quantized_weight"]

SUPPORTED_OPS = ("Quant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear", "Clip", "MatMul", "Gemm",
                 "Transpose", "Add", "Mul", "Sub", "Div", "BatchNormalization", "Relu", "Identity",
                 "Flatten", "Reshape", "Constant")
_ROUNDING = ("ROUND", "HALF_EVEN")  # qonnx maps both to numpy's round-half-even


@dataclass(frozen=True, eq=False)
class QuantStep:
    """A quantizer: integer level ``q`` in [qmin, qmax] (or +-1 when ``bipolar``); the ONNX
    tensor ``tensor`` holds ``q * scale``."""

    node: str
    tensor: str
    scale: np.ndarray  # float32, flattened; size 1 or one per feature
    qmin: int
    qmax: int
    bipolar: bool

    @property
    def dtype(self) -> DataType:
        if self.bipolar:
            return BIPOLAR
        return smallest_type_for_range(self.qmin, self.qmax) if self.qmin < 0 else UINT(max(1, int(self.qmax).bit_length()))

    def levels(self, value: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
        """Integer levels of float64 ``value`` (qonnx ``int_quant``: divide, clip, round half even)."""
        y = value / scale
        if self.bipolar:
            return np.where(y >= 0, 1, -1).astype(np.int64)
        return np.round(np.clip(y, self.qmin, self.qmax)).astype(np.int64)


@dataclass(frozen=True, eq=False)
class MatMulStep:
    """``y = x @ (weights * scale[:, None]).T (+ bias)``; ``tensor`` is the node's output."""

    node: str
    tensor: str
    weights: np.ndarray  # int64 (out, in)
    scale: np.ndarray  # float64 (out,)
    weight_dtype: DataType
    bias: np.ndarray | None  # float64 (out,) Gemm's C operand, already in the chain as an Add


@dataclass(frozen=True, eq=False)
class AffineStep:
    """Elementwise op with a constant: ``op`` is Add, Sub, RSub (c - x), Mul or Div."""

    node: str
    tensor: str
    op: str
    const: np.ndarray  # float64, flattened (size 1 or one per channel)


@dataclass(frozen=True, eq=False)
class BatchNormStep:
    node: str
    tensor: str
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float


@dataclass(frozen=True, eq=False)
class ReluStep:
    node: str
    tensor: str


Step = Union[QuantStep, MatMulStep, AffineStep, BatchNormStep, ReluStep]


@dataclass(frozen=True, eq=False)
class Chain:
    name: str
    input_name: str
    output_name: str
    input_shape: tuple[int, ...]  # batch axis dropped
    output_shape: tuple[int, ...]
    steps: tuple[Step, ...]
    metadata: dict[str, str]
    pre: tuple[AffineStep, ...] = ()  # input preprocessing the host applies before steps[0] (preprocess.py)


def check_supported_ops(model: onnx.ModelProto) -> onnx.ModelProto:
    """Expects a ModelProto. Guarantees every node's op type is one qmlp lowers, else
    UnsupportedOpError naming the first offending node."""
    for index, node in enumerate(model.graph.node):
        if node.op_type not in SUPPORTED_OPS:
            raise UnsupportedOpError(f"{node_label(node, index)} is not supported; qmlp lowers only "
                                     f"{', '.join(SUPPORTED_OPS)}")
    return model


def _shape(value_info: onnx.ValueInfoProto) -> tuple[int, ...]:
    dims = value_info.type.tensor_type.shape.dim
    if len(dims) < 2:
        raise ModelError(f"tensor '{value_info.name}' has rank {len(dims)}; qmlp needs (batch, features...)")
    shape = []
    for dim in dims[1:]:
        if not dim.HasField("dim_value"):
            raise ModelError(f"tensor '{value_info.name}' has a symbolic non-batch dimension '{dim.dim_param}'; "
                             "export with a fixed feature shape")
        shape.append(int(dim.dim_value))
    return tuple(shape)


def _check_scale(node: onnx.NodeProto, scale: np.ndarray) -> np.ndarray:
    scale = np.asarray(scale, dtype=np.float32)
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        bad = scale[~np.isfinite(scale) | (scale <= 0)].ravel()[0]
        raise ModelError(f"{node_label(node)}: scale must be finite and positive, got {bad}; retrain or re-export "
                         "the quantizer")
    return scale


def _check_zero_point(node: onnx.NodeProto, zero_point: np.ndarray | None) -> None:
    if zero_point is not None and np.any(np.asarray(zero_point) != 0):
        raise ModelError(f"{node_label(node)}: nonzero zero-point {np.asarray(zero_point).ravel()[0]} is not "
                         "supported; use a symmetric quantizer (zero_point=0)")


def _quant_attrs(node: onnx.NodeProto, graph: GraphView) -> tuple[np.ndarray, int, bool, bool]:
    scale = _check_scale(node, graph.require_const(node, 1, "scale"))
    _check_zero_point(node, graph.require_const(node, 2, "zero-point"))
    bits_value = np.asarray(graph.require_const(node, 3, "bit width")).ravel()
    if bits_value.size != 1 or bits_value[0] != np.round(bits_value[0]) or not 1 <= bits_value[0] <= 64:
        raise ModelError(f"{node_label(node)}: bit width must be one integer in 1..64, got {bits_value.tolist()}")
    rounding = str(attribute(node, "rounding_mode", "ROUND")).upper()
    if rounding not in _ROUNDING:
        raise ModelError(f"{node_label(node)}: rounding_mode {rounding} is not supported; qmlp lowers ROUND "
                         "(round half to even) only")
    return scale, int(bits_value[0]), bool(attribute(node, "signed", 1)), bool(attribute(node, "narrow", 0))


def _int_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """qonnx min_int/max_int."""
    if signed:
        return -(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - int(narrow)


def _weight_dtype(values: np.ndarray, lo: int, hi: int, bipolar: bool) -> DataType:
    if bipolar:
        return BIPOLAR
    if lo == -1 and hi == 1 and np.all(np.isin(values, (-1, 0, 1))):
        return TERNARY  # a signed narrow 2-bit quantizer: zeros vanish, +-1 needs no multiplier
    if lo < 0:
        return INT(smallest_type_for_range(lo, hi).bits)
    return UINT(max(1, hi.bit_length()))


def quantized_weight(graph: GraphView, name: str, user: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray, DataType]:
    """Trace a constant weight tensor back to its quantizer.

    Expects the name of a MatMul/Gemm weight operand. Guarantees (integers int64, scale float64
    broadcast to the same shape, weight type) with ``integers * scale`` equal to what the model's
    quantizer computes, or a ModelError naming ``user``."""
    node = graph.producer.get(name)
    if node is None or name in graph.dynamic:
        why = "is not constant" if name in graph.dynamic else "is a float tensor without a quantizer"
        raise ModelError(f"{node_label(user)}: weight input '{name}' {why}; qmlp needs weights quantized by "
                         "Quant, BipolarQuant or QuantizeLinear/DequantizeLinear (brevitas QuantLinear)")
    if node.op_type in ("Identity", "Transpose"):
        ints, scale, dtype = quantized_weight(graph, node.input[0], user)
        if node.op_type == "Transpose":
            perm = attribute(node, "perm", list(range(ints.ndim))[::-1])
            ints, scale = np.transpose(ints, perm), np.transpose(scale, perm)
        return ints, scale, dtype
    if node.op_type == "Quant":
        w = graph.require_const(node, 0, "weight").astype(np.float32)
        scale, bits, signed, narrow = _quant_attrs(node, graph)
        y = w / scale  # float32, as qonnx computes it
        if bits == 1 and signed:  # qonnx turns a 1-bit signed Quant into a bipolar one
            ints, lo, hi, bipolar = np.where(y >= 0, 1, -1), -1, 1, True
        else:
            lo, hi = _int_range(bits, signed, narrow)
            ints, bipolar = np.round(np.clip(y, lo, hi)), False
        ints = ints.astype(np.int64)
        return ints, np.broadcast_to(scale.astype(np.float64), ints.shape), _weight_dtype(ints, lo, hi, bipolar)
    if node.op_type == "BipolarQuant":
        w = graph.require_const(node, 0, "weight").astype(np.float32)
        scale = _check_scale(node, graph.require_const(node, 1, "scale"))
        ints = np.where(w >= 0, 1, -1).astype(np.int64)
        return ints, np.broadcast_to(scale.astype(np.float64), ints.shape), BIPOLAR
    if node.op_type == "DequantizeLinear":
        scale = _check_scale(node, graph.require_const(node, 1, "scale"))
        _check_zero_point(node, graph.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None)
        source = graph.producer.get(node.input[0])
        lo, hi = None, None
        if source is not None and source.op_type == "Clip":
            lo = int(graph.require_const(source, 1, "clip min"))
            hi = int(graph.require_const(source, 2, "clip max"))
            integer_name, source = source.input[0], graph.producer.get(source.input[0])
        else:
            integer_name = node.input[0]
        if source is not None and source.op_type == "QuantizeLinear":  # float weights quantized in the graph
            raw, (q_lo, q_hi) = _quantize_linear_const(graph, source, scale)
        else:
            raw = _const_or_error(graph, integer_name, node)
            info = np.iinfo(raw.dtype)
            q_lo, q_hi = int(info.min), int(info.max)
        lo, hi = (q_lo, q_hi) if lo is None else (max(lo, q_lo), min(hi, q_hi))
        ints = np.clip(raw.astype(np.int64), lo, hi)
        scale = _per_axis(node, scale, ints.ndim)
        return ints, np.broadcast_to(scale.astype(np.float64), ints.shape), _weight_dtype(ints, lo, hi, False)
    raise ModelError(f"{node_label(user)}: weight input '{name}' comes from {node_label(node)}; qmlp needs weights "
                     "quantized by Quant, BipolarQuant or QuantizeLinear/DequantizeLinear")


def _per_axis(node: onnx.NodeProto, scale: np.ndarray, ndim: int) -> np.ndarray:
    """A 1-D (De)QuantizeLinear scale applies along ``axis`` (default 1)."""
    if scale.size > 1 and scale.ndim == 1:
        axis = int(attribute(node, "axis", 1)) % ndim
        shape = [1] * ndim
        shape[axis] = scale.size
        return scale.reshape(shape)
    return scale


def _const_or_error(graph: GraphView, name: str, user: onnx.NodeProto) -> np.ndarray:
    value = graph.const(name)
    if value is None:
        raise ModelError(f"{node_label(user)}: integer weight '{name}' must be a constant")
    return value


def _quantize_linear_const(graph: GraphView, node: onnx.NodeProto, dq_scale: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """ONNX QuantizeLinear of a constant: saturate(round_half_even(w / scale) + zero_point)."""
    w = graph.require_const(node, 0, "weight").astype(np.float32)
    scale = _check_scale(node, graph.require_const(node, 1, "scale"))
    if not np.array_equal(scale.ravel(), dq_scale.ravel()):
        raise ModelError(f"{node_label(node)}: weight scale differs from its DequantizeLinear; re-export the model")
    zero_point = graph.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    _check_zero_point(node, zero_point)
    info = np.iinfo(zero_point.dtype if zero_point is not None else np.uint8)
    ints = np.clip(np.round(w / _per_axis(node, scale, w.ndim)), info.min, info.max)
    return ints.astype(np.int64), (int(info.min), int(info.max))


class _Walker:
    """Follows the data input through the graph, one consumer at a time."""

    def __init__(self, graph: GraphView):
        self.graph = graph
        self.features: int | None = None

    def next_node(self, tensor: str) -> onnx.NodeProto | None:
        users = self.graph.consumers.get(tensor, ())
        if tensor == self.graph.output_name:
            if users:
                raise ModelError(f"graph output '{tensor}' also feeds {node_label(users[0])}; qmlp needs a "
                                 "chain of fully-connected layers")
            return None
        if not users:
            raise ModelError(f"tensor '{tensor}' is not used and is not the graph output; qmlp needs a chain "
                             "of fully-connected layers")
        if len(users) > 1:
            names = ", ".join(node_label(u) for u in users)
            raise ModelError(f"tensor '{tensor}' feeds {len(users)} nodes ({names}); qmlp needs a chain of "
                             "fully-connected layers")
        node = users[0]
        others = [inp for inp in node.input if inp and inp != tensor and inp in self.graph.dynamic]
        if others or list(node.input).count(tensor) > 1:
            raise ModelError(f"{node_label(node)} combines two data-dependent tensors; qmlp needs a chain of "
                             "fully-connected layers (no skip connections)")
        return node


def _activation_quant(node: onnx.NodeProto, graph: GraphView) -> QuantStep:
    if node.op_type == "BipolarQuant":
        scale = _check_scale(node, graph.require_const(node, 1, "scale"))
        return QuantStep(node.name, node.output[0], scale.ravel(), -1, 1, True)
    scale, bits, signed, narrow = _quant_attrs(node, graph)
    if not 1 <= bits <= 8:
        raise ModelError(f"{node_label(node)}: activation bit width {bits} is outside 1..8; qmlp streams "
                         "activations of 1 to 8 bits")
    if bits == 1 and signed:  # qonnx executes a 1-bit signed Quant as bipolar (+-1)
        return QuantStep(node.name, node.output[0], scale.ravel(), -1, 1, True)
    lo, hi = _int_range(bits, signed, narrow)
    return QuantStep(node.name, node.output[0], scale.ravel(), lo, hi, False)


def _qcdq_quant(node: onnx.NodeProto, walker: _Walker) -> tuple[QuantStep, str]:
    """QuantizeLinear [-> Clip] -> DequantizeLinear on the data path, as one quantizer."""
    graph = walker.graph
    scale = _check_scale(node, graph.require_const(node, 1, "scale"))
    zero_point = graph.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    _check_zero_point(node, zero_point)
    info = np.iinfo(zero_point.dtype if zero_point is not None else np.uint8)
    lo, hi = int(info.min), int(info.max)
    nxt = walker.next_node(node.output[0])
    if nxt is not None and nxt.op_type == "Clip":
        lo = max(lo, int(graph.require_const(nxt, 1, "clip min")))
        hi = min(hi, int(graph.require_const(nxt, 2, "clip max")))
        nxt = walker.next_node(nxt.output[0])
    if nxt is None or nxt.op_type != "DequantizeLinear":
        raise ModelError(f"{node_label(node)} is not followed by DequantizeLinear; qmlp needs QCDQ triples "
                         "(QuantizeLinear, optional Clip, DequantizeLinear)")
    dq_scale = _check_scale(nxt, graph.require_const(nxt, 1, "scale"))
    if not np.array_equal(dq_scale.ravel(), scale.ravel()):
        raise ModelError(f"{node_label(nxt)}: scale differs from its QuantizeLinear; re-export the model")
    _check_zero_point(nxt, graph.const(nxt.input[2]) if len(nxt.input) > 2 and nxt.input[2] else None)
    bits = smallest_type_for_range(lo, hi).bits
    if not 1 <= bits <= 8:
        raise ModelError(f"{node_label(node)}: activation bit width {bits} is outside 1..8")
    return QuantStep(node.name, nxt.output[0], scale.ravel(), lo, hi, False), nxt.output[0]


def _matmul(node: onnx.NodeProto, walker: _Walker, tensor: str) -> MatMulStep:
    graph = walker.graph
    if node.input[0] != tensor:
        raise ModelError(f"{node_label(node)}: the data must be the first operand (x @ W); qmlp lowers "
                         "fully-connected layers only")
    bias = None
    if node.op_type == "Gemm":
        if attribute(node, "transA", 0) or attribute(node, "alpha", 1.0) != 1.0 or attribute(node, "beta", 1.0) != 1.0:
            raise ModelError(f"{node_label(node)}: Gemm with transA, alpha or beta != 1 is not supported; "
                             "export with brevitas QuantLinear")
        transposed = bool(attribute(node, "transB", 0))
        if len(node.input) > 2 and node.input[2]:
            bias = graph.require_const(node, 2, "bias").astype(np.float64).ravel()
    else:
        transposed = False
    ints, scale, dtype = quantized_weight(graph, node.input[1], node)
    if dtype.bits > LIMITS.data_bits:
        raise ModelError(f"{node_label(node)}: weight type {dtype} is wider than the {LIMITS.data_bits} bits qmlp "
                         "supports; quantize the weights to fewer bits")
    if ints.ndim != 2:
        raise ModelError(f"{node_label(node)}: weight has shape {ints.shape}; qmlp needs a 2-D weight matrix")
    if not transposed:  # stored (in, out): make it (out, in)
        ints, scale = ints.T, scale.T
    if not np.all(scale == scale[:, :1]):
        raise ModelError(f"{node_label(node)}: weight scale varies along the input axis; qmlp needs per-tensor "
                         "or per-output-channel weight scales")
    if walker.features is not None and ints.shape[1] != walker.features:
        raise ModelError(f"{node_label(node)}: weight takes {ints.shape[1]} inputs but receives {walker.features}")
    if bias is not None and bias.size not in (1, ints.shape[0]):
        raise ModelError(f"{node_label(node)}: bias has {bias.size} entries for {ints.shape[0]} outputs")
    walker.features = ints.shape[0]
    return MatMulStep(node.name, node.output[0], np.ascontiguousarray(ints), np.ascontiguousarray(scale[:, 0]),
                      dtype, None if bias is None else np.broadcast_to(bias, (ints.shape[0],)).copy())


def _channel_const(node: onnx.NodeProto, value: np.ndarray, walker: _Walker, what: str) -> np.ndarray:
    flat = np.asarray(value, dtype=np.float64)
    if flat.size != 1 and (walker.features is None or flat.size != walker.features
                           or max(flat.shape, default=1) != flat.size):
        raise ModelError(f"{node_label(node)}: {what} of shape {flat.shape} is neither a scalar nor one value per "
                         f"channel ({walker.features}); qmlp folds only per-channel constants")
    if not np.all(np.isfinite(flat)):
        raise ModelError(f"{node_label(node)}: {what} is not finite")
    return flat.ravel()


def _affine(node: onnx.NodeProto, walker: _Walker, tensor: str) -> AffineStep:
    first = node.input[0] == tensor
    const = walker.graph.require_const(node, 1 if first else 0, "operand")
    op = node.op_type
    if not first and op == "Sub":
        op = "RSub"
    elif not first and op == "Div":
        raise ModelError(f"{node_label(node)}: dividing a constant by the data is not an affine map; qmlp "
                         "folds only x/c")
    const = _channel_const(node, const, walker, "constant operand")
    if op == "Div" and np.any(const == 0):
        raise ModelError(f"{node_label(node)}: division by zero in the constant operand")
    return AffineStep(node.name, node.output[0], op, const)


def _batchnorm(node: onnx.NodeProto, walker: _Walker) -> BatchNormStep:
    if attribute(node, "training_mode", 0):
        raise ModelError(f"{node_label(node)}: training_mode=1; export the model in eval() mode")
    g = walker.graph
    params = [_channel_const(node, g.require_const(node, i, what), walker, what)
              for i, what in enumerate(("scale", "bias", "mean", "variance"), start=1)]
    epsilon = float(attribute(node, "epsilon", 1e-5))
    if not (np.isfinite(epsilon) and epsilon >= 0 and np.all(params[3] + epsilon > 0)):
        raise ModelError(f"{node_label(node)}: variance + epsilon must be positive (a running variance is never "
                         f"negative), got variance min {params[3].min():g}, epsilon {epsilon:g}; re-export the model")
    return BatchNormStep(node.name, node.output[0], *params, epsilon)


def _check_reshape(node: onnx.NodeProto, walker: _Walker) -> None:
    if node.op_type == "Flatten" and attribute(node, "axis", 1) != 1:
        raise ModelError(f"{node_label(node)}: Flatten axis must be 1 (keep the batch axis)")
    if node.op_type == "Reshape":
        shape = walker.graph.require_const(node, 1, "shape").ravel()
        if shape.size != 2 or (walker.features is not None and shape[1] not in (-1, walker.features)):
            raise ModelError(f"{node_label(node)}: reshape to {shape.tolist()} is not (batch, features)")


def extract_chain(model: onnx.ModelProto, name: str | None = None) -> Chain:
    """Expects a model that passed ``check_supported_ops``. Guarantees a Chain whose steps are
    the data path in order, with all constants folded; Identity/Flatten/Reshape are dropped
    (they do not change values). Raises ModelError for anything that is not a simple chain."""
    graph = GraphView.of(model)
    walker = _Walker(graph)
    steps: list[Step] = []
    tensor = graph.input_name
    inputs = {v.name: v for v in model.graph.input}
    input_shape = _shape(inputs[graph.input_name])
    while (node := walker.next_node(tensor)) is not None:
        op = node.op_type
        if op in ("Quant", "BipolarQuant"):
            if node.input[0] != tensor:
                raise ModelError(f"{node_label(node)}: the data must be the quantized operand")
            steps.append(_activation_quant(node, graph))
        elif op == "QuantizeLinear":
            step, tensor = _qcdq_quant(node, walker)
            steps.append(step)
            continue
        elif op in ("MatMul", "Gemm"):
            step = _matmul(node, walker, tensor)
            steps.append(step)
            if step.bias is not None:  # Gemm's C operand acts like a following Add
                steps.append(AffineStep(node.name, node.output[0], "Add", step.bias))
        elif op in ("Add", "Sub", "Mul", "Div"):
            steps.append(_affine(node, walker, tensor))
        elif op == "BatchNormalization":
            steps.append(_batchnorm(node, walker))
        elif op == "Relu":
            steps.append(ReluStep(node.name, node.output[0]))
        elif op in ("Identity", "Flatten", "Reshape"):
            _check_reshape(node, walker)
        else:
            raise ModelError(f"{node_label(node)} sits on the data path; qmlp needs a chain of fully-connected "
                             "layers (Transpose, Clip and DequantizeLinear only on constant weights)")
        tensor = node.output[0]
    output = graph_outputs(model)[0]
    return Chain(
        name=name or model.graph.name or "model",
        input_name=graph.input_name,
        output_name=output.name,
        input_shape=input_shape,
        output_shape=_shape(output),
        steps=tuple(steps),
        metadata={prop.key: prop.value for prop in model.metadata_props},
    )

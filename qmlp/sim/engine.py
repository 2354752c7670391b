"""The bit-accurate simulator's fast engine: the integer IR itself as one ONNX graph, run by
onnxruntime, exact by construction.

The graph does the arithmetic of ``qmlp.sim.bitaccurate``: the input quantizer (``Div``,
``Clip``, ``Round`` half to even, or ``Where`` for BIPOLAR), then per layer an integer GEMM and
the threshold compares. Every tensor holds integers: the GEMMs run on 8-bit operands with int32
sums (onnxruntime's MatMulIntegerToFloat, fused from DequantizeLinear/MatMul with scale 1) where
the operands fit (``_int8_ok``), float32 MatMul otherwise; float32 represents every integer below
2^24 exactly, so the graph is built only when every partial sum and threshold stays below that
(``_exact_in_float32``), and a layer has at most 16 threshold steps. Instead of forming a
layer's output values, the fast graph hands the next layer the threshold indicators and repeats
its weights once per step (see ``_build``). ``tests/sim/test_engine.py`` checks the engine
against the numpy path bit for bit; bench/sim_throughput.py measures it."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from ..datatypes import BIPOLAR
from ..ir import Dataflow

__all__ = ["Engine", "engine_for", "MAX_STEPS", "CHUNK"]

_FLOAT32_EXACT = 1 << 24
CHUNK = 1024  # rows per onnxruntime call
MAX_STEPS = 16  # beyond this a per-step compare costs more than the numpy path's search


@dataclass(frozen=True, eq=False)
class Engine:
    """An onnxruntime session over the integer IR of one Dataflow. ``outputs`` names what
    ``run`` returns: the last layer's output values, or with ``keep`` the quantized input and
    every layer's accumulators and output values (float32 holding exact integers)."""

    session: object
    outputs: tuple[str, ...]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Float32 (batch, features) -> one array per name in ``outputs``, in blocks of CHUNK rows
        (a block's intermediates stay in the CPU caches)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        unique = list(dict.fromkeys(self.outputs))
        blocks = [self.session.run(unique, {"x": x[start:start + CHUNK]}) for start in range(0, max(len(x), 1), CHUNK)]
        values = {name: np.concatenate([b[k] for b in blocks]) if len(blocks) > 1 else blocks[0][k]
                  for k, name in enumerate(unique)}
        return [values[name] for name in self.outputs]


_ENGINES: "weakref.WeakKeyDictionary[Dataflow, dict[bool, Engine | None]]" = weakref.WeakKeyDictionary()


def engine_for(df: Dataflow, *, keep: bool = False) -> Engine | None:
    """The cached engine of ``df`` (``keep``: with every layer's integers), or None when float32
    is not exact for it or onnxruntime is missing (on a board only numpy is installed)."""
    cache = _ENGINES.setdefault(df, {})
    if keep not in cache:
        cache[keep] = _build(df, keep=keep) if _exact_in_float32(df) else None
    return cache[keep]


def _exact_in_float32(df: Dataflow) -> bool:
    from .bitaccurate import _partial_sum_bound

    for layer in df.layers:
        act = layer.activation
        # x2: the fast graph compares accumulators minus a constant of the same bound
        if 2 * (_partial_sum_bound(layer) + 1) >= _FLOAT32_EXACT or (act is not None and act.steps > MAX_STEPS):
            return False
        if act is not None and np.abs(act.values).max(initial=0) >= _FLOAT32_EXACT:
            return False
    return True


def _int8_ok(weights: np.ndarray, low: int, high: int) -> bool:
    """An 8-bit GEMM gives exact int32 sums on any x86 CPU: inputs in [low, high] fit uint8 or
    int8, and weights stay within +-63, so even kernels that add pairs of u8 x s8 products in
    saturating int16 (AVX2 without VNNI, where int8 inputs are shifted to u8) cannot saturate
    (2 * 255 * 63 < 2^15)."""
    return int(np.abs(weights).max(initial=0)) <= 63 and -128 <= low and high <= 255


@dataclass(frozen=True)
class _Steps:
    """A layer's output kept as threshold indicators: ``name`` is (batch, steps * channels)
    uint8 of ``[acc[c] >= T[k, c]]`` at ``k * channels + c``; the output value is
    ``scale * sum_k indicator + offset`` (``Thresholds.output_value`` is affine in the count)."""

    name: str
    steps: int
    channels: int
    scale: int
    offset: int


def _affine(act) -> tuple[int, int]:  # noqa: ANN001 - Thresholds
    """(scale, offset) with ``act.output_value(count) == scale * count + offset``."""
    zero, one = (int(v) for v in act.output_value(np.array([0, 1], dtype=np.int64)))
    return one - zero, zero


def _build(df: Dataflow, *, keep: bool) -> Engine | None:
    """The graph of ``df``. The fast form (``keep`` False) never forms a layer's output values:
    it hands the next layer the threshold indicators and repeats that layer's weights once per
    step (``sum_c W[j,c] * (a * count_c + b) = sum_k sum_c a W[j,c] [acc_c >= T_kc] + b sum_c W[j,c]``),
    so each layer costs one broadcast compare and one int8 GEMM; the constant ``b sum_c W[j,c]``
    moves into the next thresholds (or is added to the last layer's output). ``keep`` adds the
    accumulators and output values of every layer as graph outputs."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None

    nodes, inits = [], []

    def const(name: str, value: np.ndarray, dtype: type = np.float32) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value).astype(dtype), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: object) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def gemm(i: int, inp: str, small: type, weights_t: np.ndarray) -> str:
        """float32 ``inp`` holding ints of ``small`` (already ``small`` when ``inp`` ends in _u8)
        times integer ``weights_t`` (in, out). DequantizeLinear(scale 1) around an int8 GEMM:
        onnxruntime fuses the pattern into MatMulIntegerToFloat (int32 sums, then float(acc) * 1 * 1)."""
        zp = const(f"zp{i}", 0, small)
        if not inp.endswith("_u8"):
            inp = node("QuantizeLinear", [inp, const(f"one_q{i}", 1), zp], f"in{i}_8")
        a = node("DequantizeLinear", [inp, const(f"one_a{i}", 1), zp], f"a{i}")
        w = node("DequantizeLinear", [const(f"w8_{i}", weights_t, np.int8), const(f"one_w{i}", 1),
                                      const(f"wzp{i}", 0, np.int8)], f"wf{i}")
        return node("MatMul", [a, w], f"gemm{i}")

    def values_of(prev: _Steps | str, tag: str) -> str:
        """A layer's output values (float32) from its indicators; ``tag`` keeps node names unique."""
        if isinstance(prev, str):
            return prev
        ind = node("Cast", [prev.name], f"ind_f_{tag}", to=TensorProto.FLOAT)
        ind = node("Reshape", [ind, const(f"shape3_{tag}", [0, prev.steps, prev.channels], np.int64)], f"ind3_{tag}")
        count = node("ReduceSum", [ind, const(f"axis_{tag}", [1], np.int64)], f"count_{tag}", keepdims=0)
        if (prev.scale, prev.offset) == (1, 0):
            return count
        return node("Add", [node("Mul", [count, const(f"scale_{tag}", prev.scale)], f"scaled_{tag}"),
                            const(f"offset_{tag}", prev.offset)], f"values_{tag}")

    quant = df.input
    if quant.dtype == BIPOLAR:
        ge = node("GreaterOrEqual", ["x", const("zero", 0)], "x_ge0")
        q = node("Where", [ge, const("one", 1), const("minus_one", -1)], "q")
    else:
        scaled = node("Div", ["x", const("scale", quant.scale)], "x_scaled")
        clipped = node("Clip", [scaled, const("qmin", quant.qmin), const("qmax", quant.qmax)], "x_clipped")
        q = node("Round", [clipped], "q")
    outputs = ["q"] if keep else []
    prev: _Steps | str = q
    for i, layer in enumerate(df.layers):
        if isinstance(prev, _Steps) and _int8_ok(prev.scale * layer.weights, 0, 1):
            weights_t = np.tile(prev.scale * layer.weights, (1, prev.steps)).T
            shift = prev.offset * layer.weights.sum(axis=1)  # the constant term, per output channel
            raw = gemm(i, prev.name, np.uint8, weights_t)
        else:
            value = values_of(prev, f"in{i}")
            low, high = layer.in_dtype.min, layer.in_dtype.max
            shift = np.zeros(layer.out_features, dtype=np.int64)
            if _int8_ok(layer.weights, low, high):
                raw = gemm(i, value, np.uint8 if low >= 0 else np.int8, layer.weights.T)
            else:
                raw = node("MatMul", [value, const(f"w{i}", layer.weights.T)], f"gemm{i}")
        acc = raw if not shift.any() else None
        act = layer.activation
        if act is None:
            acc = acc or node("Add", [raw, const(f"shift{i}", shift)], f"acc{i}")
            outputs += [acc, acc] if keep else []
            prev = acc
            continue
        if keep:
            acc = acc or node("Add", [raw, const(f"shift{i}", shift)], f"acc{i}")
        # indicators [raw + shift >= T] = [raw >= T - shift], all steps in one broadcast compare
        raw3 = node("Unsqueeze", [raw, const(f"ax1_{i}", [1], np.int64)], f"raw3_{i}")
        ge = node("GreaterOrEqual", [raw3, const(f"t{i}", act.values.T - shift[None, :])], f"ge{i}")
        flat = node("Reshape", [ge, const(f"flat{i}", [0, -1], np.int64)], f"geflat{i}")
        scale, offset = _affine(act)
        prev = _Steps(node("Cast", [flat], f"ind{i}_u8", to=TensorProto.UINT8), act.steps, layer.out_features,
                      scale, offset)
        if keep:
            outputs += [acc, values_of(prev, f"out{i}")]
    if not keep:
        outputs.append(values_of(prev, "last"))
    graph = helper.make_graph(
        nodes, "qmlp_integer_ir", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", quant.features])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in dict.fromkeys(outputs)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="qmlp")
    options = ort.SessionOptions()
    # one thread: deterministic, and fair on shared machines; the numpy path is single-threaded too
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
    return Engine(session=session, outputs=tuple(outputs))

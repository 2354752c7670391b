"""The bit-accurate simulator's fast engine: the integer IR itself as one ONNX graph, run by
onnxruntime, exact by construction.

The graph does the arithmetic of ``qmlp.sim.bitaccurate``: the input quantizer (``Div``, then
``QuantizeLinear`` when it clips to the whole 8-bit range, else ``Clip`` and ``Round`` half to
even; ``Where`` for BIPOLAR), then per layer an 8-bit GEMM with int32 sums (onnxruntime's
MatMulIntegerToFloat, fused from DequantizeLinear/MatMul with scale 1) where the operands fit
(``_int8_ok``), float32 MatMul otherwise, and the activation in one of two exact forms:

* **staircase**: thresholds that come from BatchNorm + a uniform quantizer (every trained model
  we have) are one rounded line per channel, ``count = clip(round(slope * (acc + add)), 0,
  steps)``. ``_staircase`` finds the line, ``_counts_as_staircase`` runs the very onnxruntime ops
  (BatchNormalization, QuantizeLinear, Clip) on *every* accumulator value the channel can reach
  and keeps the line only if all counts are right, so it is proven, not estimated;
* **indicators** otherwise: one broadcast compare per threshold, and the next layer's GEMM takes
  the indicators with its weights repeated per step (``_build``).

Float32 represents every integer below 2^24 exactly, so the graph is built only when every
partial sum and threshold stays below that (``_exact_in_float32``) and a layer has at most 16
steps. ``tests/sim/test_engine.py`` checks both forms against the numpy path bit for bit;
bench/sim_throughput.py measures them."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from ..datatypes import BIPOLAR
from ..ir import Dataflow, accumulator_range

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
    activations: tuple[str, ...] = ()  # per layer: "staircase", "indicators" or "none" (how it is computed)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Float32 (batch, features) -> one array per name in ``outputs``, in blocks of CHUNK rows
        (a block's intermediates stay in the CPU caches)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        fetch = list(dict.fromkeys(self.outputs))
        if len(x) <= CHUNK:
            got = self.session.run(fetch, {"x": x})
        else:
            blocks = [self.session.run(fetch, {"x": x[start:start + CHUNK]}) for start in range(0, len(x), CHUNK)]
            got = [np.concatenate([b[k] for b in blocks]) for k in range(len(fetch))]
        if len(fetch) == len(self.outputs):
            return got
        return [got[fetch.index(name)] for name in self.outputs]


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


_MARGIN = 2e-5  # distance kept from a rounding tie, in output steps (float32 error here is ~1e-6)
_MAX_RANGE = 1 << 17  # accumulator values per channel checked exhaustively


def _staircase(values: np.ndarray, lo: int, hi: int) -> tuple[float, float] | None:
    """(alpha > 0, beta) with ``round(alpha * a + beta)``, clipped to [0, steps], equal to
    ``#{k: values[k] <= a}`` for every integer ``a`` in [lo, hi], at least _MARGIN from a
    tie; None when no such line exists. Each threshold gives two half-planes in (alpha, beta):
    the line is above ``k + 1/2`` at ``values[k]`` and below it one step earlier."""
    above = [(max(int(t), lo), k + 0.5 + _MARGIN) for k, t in enumerate(values) if t <= hi]
    below = [(min(int(t) - 1, hi), k + 0.5 - _MARGIN) for k, t in enumerate(values) if t - 1 >= lo]
    a_lo, a_hi = 1e-12, np.inf
    for c, r in above:
        for d, q in below:
            if c > d:
                a_lo = max(a_lo, (r - q) / (c - d))
            elif c < d:
                a_hi = min(a_hi, (r - q) / (c - d))
            elif r > q:
                return None
    if a_lo > a_hi:
        return None
    alpha = (a_lo + a_hi) / 2 if np.isfinite(a_hi) else 2 * a_lo
    b_lo = max((r - alpha * c for c, r in above), default=-np.inf)
    b_hi = min((q - alpha * d for d, q in below), default=np.inf)
    if b_lo > b_hi:
        return None
    beta = (b_lo + b_hi) / 2 if np.isfinite(b_lo) and np.isfinite(b_hi) else (b_lo + 1 if np.isfinite(b_lo) else b_hi - 1)
    return alpha, beta


def _staircase_nodes(node, const, i: int, raw: str, add: np.ndarray, slope: np.ndarray, steps: int) -> str:  # noqa: ANN001
    """uint8 counts = Clip(QuantizeLinear((raw + add) * slope), 0, steps), per-channel ``add`` and
    ``slope``, the line as a BatchNormalization (mean ``-add``, scale ``slope``, variance 1,
    epsilon 0): one pass, and onnxruntime keeps it after the fused GEMM (an Add would be fused
    into a float Gemm whose accumulation takes the non-integer term in; a per-axis
    QuantizeLinear scale is scalar code, 10x slower)."""
    zeros = np.zeros(len(add))
    line = node("BatchNormalization", [raw, const(f"slope{i}", slope), const(f"bias0_{i}", zeros),
                                       const(f"mean{i}", -add), const(f"var1_{i}", zeros + 1)], f"line{i}", epsilon=0.0)
    q = node("QuantizeLinear", [line, const(f"one_line{i}", 1), const(f"zero_line{i}", 0, np.uint8)], f"q{i}")
    return node("Clip", [q, const(f"zero_u8_{i}", 0, np.uint8), const(f"top_u8_{i}", steps, np.uint8)], f"count{i}_u8")


def _counts_as_staircase(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(add, slope) per channel, float32, such that the onnxruntime ops of ``_staircase_nodes``
    give exactly the threshold count of every integer in [lo, hi] (checked by running them on
    every such value); None when a channel has no such line or the check fails."""
    lines = [_staircase(values[c], int(lo[c]), int(hi[c])) for c in range(len(values))]
    if any(line is None for line in lines) or int((hi - lo).max(initial=0)) + 1 > _MAX_RANGE:
        return None
    alpha = np.array([a for a, _ in lines])
    add = (np.array([b for _, b in lines]) / alpha).astype(np.float32)
    scale = alpha.astype(np.float32)  # the slope
    span = int((hi - lo).max(initial=0)) + 1
    grid = np.minimum(lo[None, :] + np.arange(span)[:, None], hi[None, :])  # (span, channels), every value
    expected = (grid[:, :, None] >= values[None, :, :]).sum(axis=2)
    got = _run_nodes(lambda node, const: _staircase_nodes(node, const, 0, "x", add, scale, values.shape[1]),
                     grid.astype(np.float32))
    return (add, scale) if got is not None and np.array_equal(got, expected) else None


def _run_nodes(build, x: np.ndarray) -> np.ndarray | None:  # noqa: ANN001
    """Run the nodes ``build(node, const)`` adds on input ``x`` in onnxruntime; None without it."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    nodes, inits = [], []

    def const(name: str, value, dtype: type = np.float32) -> str:  # noqa: ANN001
        inits.append(numpy_helper.from_array(np.asarray(value).astype(dtype), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: object) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    out = build(node, const)
    graph = helper.make_graph(nodes, "check", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info(out, TensorProto.UINT8, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
    return session.run([out], {"x": x})[0].astype(np.int64)


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
        # one scale for all features (the usual per-tensor quantizer): a scalar Div is one vectorized loop
        same = bool(np.all(quant.scale == quant.scale[0]))
        scaled = node("Div", ["x", const("scale", quant.scale[0] if same else quant.scale)], "x_scaled")
        full = {(-128, 127): np.int8, (0, 255): np.uint8}.get((quant.qmin, quant.qmax))
        if full is not None and not keep and _int8_ok(df.layers[0].weights, quant.qmin, quant.qmax):
            # clip to the whole 8-bit range, then round == round half to even, then saturate:
            # QuantizeLinear (scale 1) does both in one pass and hands the GEMM its 8-bit input
            q = node("QuantizeLinear", [scaled, const("one_x", 1), const("zp_x", 0, full)], "x_q_u8")
        else:
            clipped = node("Clip", [scaled, const("qmin", quant.qmin), const("qmax", quant.qmax)], "x_clipped")
            q = node("Round", [clipped], "q")
    outputs = ["q"] if keep else []
    kinds: list[str] = []
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
            acc = acc or node("Sub", [raw, const(f"neg_shift{i}", -shift)], f"acc{i}")  # Sub: see _staircase_nodes
            outputs += [acc, acc] if keep else []
            prev = acc
            kinds.append("none")
            continue
        if keep:
            acc = acc or node("Sub", [raw, const(f"neg_shift{i}", -shift)], f"acc{i}")
        scale, offset = _affine(act)
        low, high = accumulator_range(layer.weights, layer.in_dtype)  # of acc = raw + shift
        line = _counts_as_staircase(act.values - shift[:, None], low - shift, high - shift)
        if line is not None:
            # the activation as one rounded line per channel (exhaustively checked): the next layer
            # gets uint8 counts, so its GEMM is no larger than the layer itself
            prev = _Steps(_staircase_nodes(node, const, i, raw, *line, act.steps), 1, layer.out_features, scale, offset)
            kinds.append("staircase")
        else:
            # indicators [raw + shift >= T] = [raw >= T - shift], all steps in one broadcast compare
            raw3 = node("Unsqueeze", [raw, const(f"ax1_{i}", [1], np.int64)], f"raw3_{i}")
            ge = node("GreaterOrEqual", [raw3, const(f"t{i}", act.values.T - shift[None, :])], f"ge{i}")
            flat = node("Reshape", [ge, const(f"flat{i}", [0, -1], np.int64)], f"geflat{i}")
            prev = _Steps(node("Cast", [flat], f"ind{i}_u8", to=TensorProto.UINT8), act.steps, layer.out_features,
                          scale, offset)
            kinds.append("indicators")
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
    return Engine(session=session, outputs=tuple(outputs), activations=tuple(kinds))

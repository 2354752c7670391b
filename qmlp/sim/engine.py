"""The bit-accurate simulator's fast engine: the integer IR itself as one ONNX graph, run by
onnxruntime, exact by construction.

The graph does the arithmetic of ``qmlp.sim.bitaccurate`` in 8-bit integers end to end:

* the input quantizer is one ``QuantizeLinear`` to uint8 (x / scale, round half to even,
  saturate: MLAS divides, so this is QONNX's ``Quant`` bit for bit), with a zero point for
  signed inputs and a ``Clip`` for ranges narrower than 8 bits; BIPOLAR is a ``Where``; the
  model's preprocessing ops run first, in float32 like numpy;
* each layer is one ``QGemm`` (onnxruntime's 8-bit GEMM: exact int32 sums) whose output stage
  rounds: ``uint8 = clip(round_half_even(float32(acc + C[c]) * M[c]), 0, 255)``, then one
  uint8 ``Clip``. Two exact ways to use it for a multi-threshold activation:

  - **staircase**: one column per channel, when the channel's thresholds are one rounded line
    ``round(M * (unit * acc + C))`` with integers ``unit`` (the channel's weights times it) and
    ``C`` (``_unit_line``; BatchNorm + a uniform quantizer of up to 4 bits, i.e. every trained
    model we have, always are in our tests);
  - **indicators** otherwise (up to MAX_STEPS thresholds): one column per threshold, ``M = 1``
    and ``C = 1 - T``, clipped to 0/1: ``[acc >= T]`` in integers, no rounding anywhere.

  The next layer's GEMM reads those uint8 columns with its weights repeated per column (and
  multiplied by the activation's scale); the activation's offsets move into its integer ``C``;
* the last layer's int32 sums index a table of ``bitaccurate.dequantize_output`` over every
  reachable accumulator, so the graph hands out the host's float32 outputs.

Up to SMALL_ROWS rows a second form of the same graph runs (float32 QGemm sums, then a
QuantizeLinear: the same arithmetic; weights as uint8 + 128 with zero point 128), through
buffers that stay bound: its fixed cost per call is lower, its GEMMs slower on large batches.

Exactness, decided here once: every accumulator, ``C`` and threshold is an integer below 2^24,
so ``float32(acc + C)`` is exact (``_exact_in_float32``, and ``most`` in ``_graph``); weights
stay within +-63 (``_split``), so every x86 8-bit kernel sums exactly, even those adding pairs
of u8 x s8 products in saturating int16; a staircase line is kept only if rounding
``(unit * acc + C) * M`` gives every count right at both ends of every plateau, both in float32
and with a relative error of 2^-20 either way (``_line_holds``): rounding is monotone, so the
ends prove every value between. ``tests/sim/test_engine.py`` checks the engine against the numpy
path bit for bit; bench/sim_throughput.py measures it against onnxruntime on the QCDQ export."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np

from ..datatypes import BIPOLAR
from ..ir import Dataflow, accumulator_range

__all__ = ["Engine", "engine_for", "MAX_STEPS", "CHUNK", "SMALL_ROWS"]

_FLOAT32_EXACT = 1 << 24
_INT8_WEIGHT = 63  # |weight| bound for exact sums in every x86 int8 kernel (see _split)
# rows per onnxruntime call: larger batches run in blocks, whose scratch stays in the caches
# (measured here: 3x the rate of one 16k-row call)
CHUNK = 1024
SMALL_ROWS = 8  # up to this many rows: the small-batch graph, through bound buffers (Engine.run)
MAX_STEPS = 16  # thresholds per channel as indicator columns; beyond, the numpy path's search is faster
_MAX_UNIT = 16  # weight multiples tried for a staircase line (_unit_line)
_TABLE_LIMIT = 1 << 20  # entries of the output lookup table (4 MiB of float32)
_SLACK = 2.0 ** -20  # relative error a staircase line must tolerate (float32 rounding is 2^-24)


@dataclass(frozen=True, eq=False)
class Engine:
    """An onnxruntime session over the integer IR of one Dataflow. ``outputs`` names what
    ``run`` returns: the last layer's output values, or with ``keep`` the quantized input and
    every layer's accumulators and output values (float32 holding exact integers)."""

    session: object
    outputs: tuple[str, ...]
    activations: tuple[str, ...] = ()  # per layer: "staircase", "indicators" or "none" (how it is computed)
    dequantized: bool = False  # the output is already the host's float32 ``dequantize_output``
    small_session: object = None  # the same outputs for up to SMALL_ROWS rows, faster there (``_graph``)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fetch", list(dict.fromkeys(self.outputs)))  # the graph's distinct outputs
        object.__setattr__(self, "_bound", {})  # rows -> (input buffer, output buffer, IOBinding)
        object.__setattr__(self, "_lock", threading.Lock())

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Float32 C-contiguous (batch, features) -> one array per name in ``outputs``; batches
        beyond CHUNK rows run in blocks."""
        fetch = self._fetch
        if len(x) <= CHUNK:
            got = self.session.run(fetch, {"x": x})
        else:
            parts = [self.session.run(fetch, {"x": x[start:start + CHUNK]}) for start in range(0, len(x), CHUNK)]
            got = [np.concatenate([p[k] for p in parts]) for k in range(len(fetch))]
        return got if len(fetch) == len(self.outputs) else [got[fetch.index(name)] for name in self.outputs]

    def run_one(self, x: np.ndarray) -> np.ndarray:
        """``run(x)[0]`` for an engine with one output; up to SMALL_ROWS rows through
        ``small_session`` and bound buffers (unless another thread is using them)."""
        if len(x) <= SMALL_ROWS and self.small_session is not None and self._lock.acquire(blocking=False):
            try:
                return self._run_bound(x)
            finally:
                self._lock.release()
        return self.run(x)[0]

    def _run_bound(self, x: np.ndarray) -> np.ndarray:
        """``small_session`` through an IOBinding whose input and output buffers stay bound (one
        per row count): saves onnxruntime's per-call tensor wrapping, about 1.5 us here."""
        bound = self._bound.get(len(x))
        if bound is None:  # first call with this row count: a plain run tells the output's shape
            y = self.small_session.run(self._fetch, {"x": x})[0]
            xbuf, ybuf = np.empty(x.shape, np.float32), np.empty(y.shape, np.float32)
            binding = self.small_session.io_binding()
            binding.bind_cpu_input("x", xbuf)
            binding.bind_output(self._fetch[0], "cpu", 0, np.float32, list(y.shape), ybuf.ctypes.data)
            self._bound[len(x)] = (xbuf, ybuf, binding)
            return y
        xbuf, ybuf, binding = bound
        xbuf[...] = x
        self.small_session.run_with_iobinding(binding)
        return ybuf.copy()  # the buffer is reused by the next call


# id(df) -> (weak reference to df, {keep: engine}); a plain dict: the lookup is on every call's path
_ENGINES: dict[int, tuple[weakref.ref, dict[bool, Engine | None]]] = {}


def engine_for(df: Dataflow, keep: bool = False) -> Engine | None:
    """The cached engine of ``df`` (``keep``: with every layer's integers), or None when the
    graph would not be exact for it (inputs wider than 8 bits, sums beyond 2^24, more than
    MAX_STEPS thresholds that are not one line) or onnxruntime is missing (on a board only
    numpy is installed)."""
    entry = _ENGINES.get(id(df))
    if entry is None or entry[0]() is not df:
        # the entry leaves with df (its id may then be reused)
        entry = _ENGINES[id(df)] = (weakref.ref(df, lambda _, key=id(df): _ENGINES.pop(key, None)), {})
    cache = entry[1]
    if keep not in cache:
        cache[keep] = _build(df, keep=keep) if _exact_in_float32(df) and _input_zero_point(df) is not None else None
    return cache[keep]


def _exact_in_float32(df: Dataflow) -> bool:
    from .bitaccurate import _partial_sum_bound

    for layer in df.layers:
        act = layer.activation
        # x2: the requantizer adds C (a threshold or a line's offset, of the same bound) to the sum
        if 2 * (_partial_sum_bound(layer) + 1) >= _FLOAT32_EXACT or (act is not None and act.steps > 255):
            return False
        if act is not None and np.abs(act.values).max(initial=0) >= _FLOAT32_EXACT:
            return False
    return True


def _input_zero_point(df: Dataflow) -> int | None:
    """The uint8 zero point that holds the input integers (``q + zp`` in [0, 255]); None when
    the input type is wider than 8 bits. BIPOLAR: {-1, +1} travels as {0, 2} with zero point 1."""
    quant = df.input
    if quant.dtype == BIPOLAR:
        return 1
    zp = -min(quant.qmin, 0)
    return zp if quant.qmax + zp <= 255 else None


def _split(weights_t: np.ndarray) -> list[np.ndarray]:
    """Integer (in, out) weights as a sum of int8 pieces within +-63 (one piece for INT2..INT7
    and ternary/bipolar weights). +-63 keeps even kernels that add pairs of u8 x s8 products in
    saturating int16 (AVX2 without VNNI) exact: 2 * 255 * 63 < 2^15."""
    pieces, rest = [], np.asarray(weights_t, dtype=np.int64)
    while True:
        piece = np.clip(rest, -_INT8_WEIGHT, _INT8_WEIGHT)
        pieces.append(piece.astype(np.int8))
        rest = rest - piece
        if not rest.any():
            return pieces


def _plateaus(values: np.ndarray, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """(first, last, count) of each run of integers in [lo, hi] with the same threshold count
    ``#{k: values[k] <= a}`` (``values`` ascending)."""
    cuts = sorted({int(t) for t in values if lo < t <= hi})
    starts, ends = [lo, *cuts], [c - 1 for c in cuts] + [hi]
    return [(s, e, int(np.searchsorted(values, s, side="right"))) for s, e in zip(starts, ends)]


def _line_holds(plateaus: list[tuple[int, int, int]], scale: np.float32, add: int, steps: int) -> bool:
    """Does ``clip(round_half_even((a + add) * scale), 0, steps)`` give every plateau's count at
    both of its ends, in float32 and with any relative error up to _SLACK? (Every value between
    the extreme ends must also convert to float32 exactly.)"""
    ends = np.array([[s, e] for s, e, _ in plateaus], dtype=np.int64) + add
    if np.abs(ends).max() >= _FLOAT32_EXACT:
        return False
    want = np.array([[c, c] for _, _, c in plateaus])
    exact = ends.astype(np.float64) * np.float64(scale)  # exact: 24-bit scale times an integer < 2^24
    for value in (ends.astype(np.float32) * scale, exact * (1 - _SLACK), exact * (1 + _SLACK)):
        if not np.array_equal(np.clip(np.rint(value), 0, steps), want):
            return False
    return True


def _integer_line(values: np.ndarray, lo: int, hi: int, steps: int, unit: int = 1) -> tuple[np.float32, int] | None:
    """(M > 0, integer C) with ``clip(round((unit * a + C) * M), 0, steps)`` == the threshold
    count of ``values`` (ascending) for every integer ``a`` in [lo, hi], proven by
    ``_line_holds``; None when no such line exists among the candidates. ``unit`` > 1 (weights
    times ``unit``) makes C finer. For each candidate C (near the line through the first and last
    transitions) the plateaus bound M from both sides: a plateau with count v > 0 starting at s
    needs M * (s + C) > v - 1/2, one with v < steps ending at e needs M * (e + C) < v + 1/2."""
    plateaus = [(unit * s, unit * e, v) for s, e, v in _plateaus(values, lo, hi)]
    if len(plateaus) == 1:  # a constant count: 0 (below every threshold) or steps (above all)
        count = plateaus[0][2]
        line = (np.float32(1), -unit * hi - 1) if count == 0 else (np.float32(steps), 1 - unit * lo) if count == steps else None
        return line if line is not None and _line_holds(plateaus, *line, steps) else None
    starts = np.array([s for s, _, v in plateaus if v > 0], dtype=np.float64)
    above = np.array([v - 0.5 for _, _, v in plateaus if v > 0])
    ends = np.array([e for _, e, v in plateaus if v < steps], dtype=np.float64)
    below = np.array([v + 0.5 for _, _, v in plateaus if v < steps])
    # candidate offsets: for slopes M from flat to steep, C must lie in
    # (max(above / M - start), min(below / M - end)); take integers at and between those ends
    slopes = np.geomspace(0.25 / (plateaus[-1][1] - plateaus[0][0] + 1), 2.0 * steps, 96)[:, None]
    c_low = (above / slopes - starts).max(axis=1, initial=-np.inf)
    c_high = (below / slopes - ends).min(axis=1, initial=np.inf)
    ok = c_low < c_high
    mid = np.where(np.isfinite(c_low + c_high), (c_low + c_high) / 2, np.where(np.isfinite(c_low), c_low + 1, c_high - 1))
    candidates = np.concatenate([np.floor(mid[ok]), np.ceil(mid[ok]), np.ceil(c_low[ok] + 1e-9), np.floor(c_high[ok] - 1e-9)])
    # and every integer near the line through the first and last rise
    (first, _, v_first), (last, _, v_last) = plateaus[1], plateaus[-1]
    per_step = (last - first) / (v_last - v_first) if v_last > v_first else 1.0 / max(v_first - plateaus[0][2], 1)
    centre = round(per_step * (v_first - 0.5) - first + 0.5)
    near = centre + np.arange(-64 * unit, 64 * unit + 1)
    adds = np.unique(np.concatenate([candidates[np.isfinite(candidates)], near])).astype(np.int64)
    # for each C the plateaus bound M: M > above / (start + C) needs start + C > 0 (above >= 1/2);
    # M < below / (end + C) binds only where end + C > 0
    shifted_starts, shifted_ends = starts[None, :] + adds[:, None], ends[None, :] + adds[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(shifted_starts > 0, above / np.maximum(shifted_starts, 1), np.inf).max(axis=1, initial=0.0)
        high = np.where(shifted_ends > 0, below / np.maximum(shifted_ends, 1), np.inf).min(axis=1, initial=np.inf)
    feasible = np.nonzero(low < high)[0]
    for k in feasible[np.argsort(-(np.log(high[feasible]) - np.log(low[feasible])))][:8]:  # widest first
        scale = np.float32(np.sqrt(low[k] * high[k]) if np.isfinite(high[k]) else 2 * low[k])
        if scale > 0 and _line_holds(plateaus, scale, int(adds[k]), steps):
            return scale, int(adds[k])
    return None


def _unit_line(values: np.ndarray, lo: int, hi: int, steps: int, most: int) -> tuple[int, np.float32, int] | None:
    """(unit, M, C) of ``_integer_line`` with the smallest ``unit`` in 1..``most`` that has a
    line (thresholds of BatchNorm + a uniform quantizer: about 1 in 5 channels need unit > 1)."""
    for unit in range(1, min(most, _MAX_UNIT) + 1):
        line = _integer_line(values, lo, hi, steps, unit)
        if line is not None:
            return unit, *line
    return None


@dataclass(frozen=True)
class _Columns:
    """A tensor the next GEMM reads: uint8 ``name`` (batch, columns); column j counts toward
    channel ``channel[j]``, and the channel's value is ``scale * (sum of its columns - zp) +
    offset[c]`` (the input: one column per feature, scale 1, zero point ``zp``)."""

    name: str
    channel: np.ndarray
    scale: int
    offset: np.ndarray  # int64, per channel
    zp: int = 0


def _affine(act) -> tuple[int, int]:  # noqa: ANN001 - Thresholds
    """(scale, offset) with ``act.output_value(count) == scale * count + offset``."""
    zero, one = (int(v) for v in act.output_value(np.array([0, 1], dtype=np.int64)))
    return one - zero, zero


def _build(df: Dataflow, *, keep: bool) -> Engine | None:
    """The engine of ``df``: its graph for batches of every size and, without ``keep``, the
    small-batch form of it (``_graph``); None without onnxruntime or for a layer whose
    thresholds never change within its range."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    options = ort.SessionOptions()
    # one thread: deterministic, and fair on shared machines; the numpy path is single-threaded too
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    graphs = [_graph(df, keep=keep, requantize=requantize) for requantize in ((True,) if keep else (True, False))]
    if graphs[0] is None:
        return None
    sessions = [ort.InferenceSession(graphs[0][0], sess_options=options, providers=["CPUExecutionProvider"])]
    if len(graphs) > 1:
        options.enable_cpu_mem_arena = False  # small tensors: plain allocations are quicker (~0.5 us a call)
        sessions.append(ort.InferenceSession(graphs[1][0], sess_options=options, providers=["CPUExecutionProvider"]))
    _, outputs, kinds, dequantized = graphs[0]
    return Engine(session=sessions[0], outputs=outputs, activations=kinds, dequantized=dequantized,
                  small_session=sessions[1] if len(sessions) > 1 else None)


def _graph(df: Dataflow, *, keep: bool, requantize: bool) -> tuple[bytes, tuple[str, ...], tuple[str, ...], bool] | None:
    """The serialized graph of ``df`` (see the module docstring), its output names, how each
    layer's activation is computed and whether the output is already dequantized. ``keep`` adds
    the quantized input and every layer's accumulators and output values as float32 outputs.
    ``requantize``: each layer's rounding inside the QGemm (fastest from a few dozen rows on);
    otherwise float32 QGemm sums then a QuantizeLinear (the same arithmetic, about 1.5 us less
    per call at batch 1, slower from ~16 rows: measured here on the seed topology)."""
    from onnx import TensorProto, helper, numpy_helper

    from .bitaccurate import _partial_sum_bound

    nodes, inits = [], []

    def const(name: str, value: object, dtype: type = np.float32) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value).astype(dtype), name))
        return name

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: object) -> str:
        nodes.append(helper.make_node(op, inputs, [output], domain=domain or None, **attrs))
        return output

    def operands(tag: str, cols: _Columns, weights_t: np.ndarray, shape: tuple[int, ...] = ()) -> tuple[str, str, str]:
        """(A, B, B's zero point shaped ``shape``) of an 8-bit GEMM computing ``cols`` times integer
        ``weights_t`` (columns, out): B stacks ``_split``'s pieces, A repeats ``cols`` once per
        piece. The large-batch graph stores B as int8; the small-batch one as uint8 ``w + 128``
        with zero point 128 (the u8 x u8 kernel: about 0.15 us less per layer at batch 1, much
        slower on large batches here)."""
        pieces = _split(weights_t)
        a = cols.name if len(pieces) == 1 else node("Concat", [cols.name] * len(pieces), f"{tag}_rep", axis=1)
        w, zp, dtype = (np.concatenate(pieces), 0, np.int8) if requantize else (np.concatenate(pieces) + np.int64(128), 128, np.uint8)
        return a, const(f"{tag}_w", w, dtype), const(f"{tag}_wzp", np.full(shape, zp), dtype)

    def qgemm(tag: str, cols: _Columns, weights_t: np.ndarray, add: np.ndarray, scale: np.ndarray | None) -> str:
        """``cols`` times integer ``weights_t`` (columns, out) plus integer ``add``: float32 sums
        (``scale`` None) or uint8 ``clip(round((sum + add) * scale), 0, 255)``."""
        out_scale = scale if scale is not None else np.float32(1)
        a, b, b_zp = operands(tag, cols, weights_t, np.shape(out_scale))
        inputs = [a, const(f"{tag}_one", 1), const(f"{tag}_azp", cols.zp, np.uint8), b, const(f"{tag}_ws", out_scale),
                  b_zp, const(f"{tag}_c", add, np.int32)]
        if scale is not None and requantize:
            inputs += [const(f"{tag}_ys", 1), const(f"{tag}_yzp", 0, np.uint8)]
        out = node("QGemm", inputs, f"{tag}_out", domain="com.microsoft")
        if scale is None or requantize:
            return out
        # float32(sum + add) * scale, then QuantizeLinear's round half to even and [0, 255]: as requantizing
        return node("QuantizeLinear", [out, const(f"{tag}_ys", 1), const(f"{tag}_yzp", 0, np.uint8)], f"{tag}_q")

    def dequantized(cols: _Columns, weights_t: np.ndarray, shift: np.ndarray, layer) -> str | None:  # noqa: ANN001
        """The host's float32 outputs straight from the graph: int32 sums (MatMulInteger), then a
        lookup in a table of ``dequantize_output`` (the golden definition, evaluated ahead) over
        every accumulator value each channel can reach; None when that table is too large."""
        from .bitaccurate import dequantize_output

        low, high = accumulator_range(layer.weights, layer.in_dtype)
        span = int((high - low).max(initial=0)) + 1
        if span * len(low) > _TABLE_LIMIT:
            return None
        grid = np.minimum(low[:, None] + np.arange(span)[None, :], high[:, None])  # (channels, span)
        table = dequantize_output(df, grid.T).T.ravel()  # entry c * span + (acc - low[c])
        a, b, b_zp = operands("out", cols, weights_t)
        sums = node("MatMulInteger", [a, b, const("out_azp", cols.zp, np.uint8), b_zp], "out_sums")
        base = np.arange(len(low)) * span - low + shift
        index = node("Add", [sums, const("out_base", base, np.int32)], "out_index")
        return node("Gather", [const("out_table", table), index], "y", axis=0)

    def values_of(cols: _Columns, channels: int, tag: str) -> str:
        """The float32 values of ``cols`` per channel (keep mode and a last layer with thresholds)."""
        pick = np.zeros((len(cols.channel), channels), np.float32)
        pick[np.arange(len(cols.channel)), cols.channel] = cols.scale
        f = node("Cast", [cols.name], f"{tag}_f", to=TensorProto.FLOAT)
        shifted = f if not cols.zp else node("Sub", [f, const(f"{tag}_zp", cols.zp)], f"{tag}_nozp")
        summed = node("MatMul", [shifted, const(f"{tag}_pick", pick)], f"{tag}_sum")
        return node("Add", [summed, const(f"{tag}_off", cols.offset)], f"{tag}_val") if cols.offset.any() else summed

    cols = _quantizer(df, node, const)
    outputs = [values_of(cols, df.input.features, "q")] if keep else []
    kinds: list[str] = []
    for i, layer in enumerate(df.layers):
        act = layer.activation
        sign = np.where(act.negate, -1, 1) if act is not None else np.ones(layer.out_features, np.int64)
        w = layer.weights.astype(np.int64)
        weights_t = cols.scale * w[:, cols.channel].T  # (columns, out)
        shift = w @ cols.offset  # the offsets' share of the accumulator, per output channel
        if act is None and not keep and i == len(df.layers) - 1:
            y = dequantized(cols, weights_t, shift, layer)
            if y is not None:
                kinds.append("none")
                outputs.append(y)
                break
        if keep or act is None:
            acc = qgemm(f"acc{i}", cols, weights_t, shift, None)
            outputs += [acc] if keep else []
        if act is None:
            kinds.append("none")
            outputs += [acc] if keep else []
            cols = None
            continue
        # the thresholds compare sign * acc: negate those channels' weights and shift
        low, high = accumulator_range(sign[:, None] * w, layer.in_dtype)
        # the largest weight multiple per channel: int8 without splitting, sums still below 2^24
        most = np.maximum(1, np.minimum(_INT8_WEIGHT // np.maximum(np.abs(weights_t).max(axis=0), 1),
                                        (_FLOAT32_EXACT - 1) // (2 * (_partial_sum_bound(layer) + 1))))
        lines = []
        for c in range(layer.out_features):  # stops at the first channel without a line
            lines.append(_unit_line(act.values[c], int(low[c]), int(high[c]), act.steps, int(most[c])))
            if lines[-1] is None:
                break
        step_scale, step_offset = _affine(act)
        if lines[-1] is not None:
            unit, scale, line_add = (np.array(v) for v in zip(*lines))
            add = unit * sign * shift + line_add
            raw = qgemm(f"l{i}", cols, weights_t * (unit * sign), add, scale.astype(np.float32))
            name = node("Clip", [raw, const(f"l{i}_lo", 0, np.uint8), const(f"l{i}_hi", act.steps, np.uint8)], f"l{i}_u8")
            channel, const_count = np.arange(layer.out_features), np.zeros(layer.out_features, np.int64)
            kinds.append("staircase")
        else:
            if act.steps > MAX_STEPS:
                return None
            # one column per threshold that can flip within the channel's range; the others are constant
            live = (act.values > low[:, None]) & (act.values <= high[:, None])
            const_count = (act.values <= low[:, None]).sum(axis=1)
            channel, step = np.nonzero(live)
            if not len(channel):  # every channel constant: nothing for a GEMM to read (numpy takes it)
                return None
            add = sign[channel] * shift[channel] + 1 - act.values[channel, step]
            raw = qgemm(f"l{i}", cols, (weights_t * sign)[:, channel], add, np.ones(len(channel), np.float32))
            name = node("Clip", [raw, const(f"l{i}_lo", 0, np.uint8), const(f"l{i}_hi", 1, np.uint8)], f"l{i}_u8")
            kinds.append("indicators")
        cols = _Columns(name, channel, step_scale, step_offset + step_scale * const_count)
        if keep:
            outputs.append(values_of(cols, layer.out_features, f"v{i}"))
    dequantized_in_graph = outputs[-1:] == ["y"]
    if not keep and not dequantized_in_graph:
        outputs.append(acc if cols is None else values_of(cols, df.layers[-1].out_features, "last"))
    graph = helper.make_graph(
        nodes, "qmlp_integer_ir", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", df.input.features])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in dict.fromkeys(outputs)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              producer_name="qmlp")
    return model.SerializeToString(), tuple(outputs), tuple(kinds), dequantized_in_graph


def _quantizer(df: Dataflow, node, const) -> _Columns:  # noqa: ANN001 - the graph builders of _build
    """The input quantizer's nodes: the model's float32 preprocessing op by op (as numpy does
    it), then uint8 ``q + zp`` (``_input_zero_point``)."""
    quant, x = df.input, "x"
    for k, op in enumerate(quant.pre):
        c = const(f"pre{k}", op.const)
        x = node("Sub", [c, x], f"pre{k}_out") if op.op == "RSub" else node(op.op, [x, c], f"pre{k}_out")
    zp = _input_zero_point(df)
    features = np.arange(quant.features)
    if quant.dtype == BIPOLAR:
        ge = node("GreaterOrEqual", [x, const("zero", 0)], "x_ge0")
        q = node("Where", [ge, const("two", 2, np.uint8), const("nil", 0, np.uint8)], "q_u8")
        return _Columns(q, features, 1, np.zeros(quant.features, np.int64), zp)
    # one scale for all features (the usual per-tensor quantizer): QuantizeLinear divides by it
    # itself; per-feature scales: a float32 Div first (as numpy), then QuantizeLinear by 1
    same = bool(np.all(quant.scale == quant.scale[0]))
    scale = quant.scale[0]
    if not same:
        x, scale = node("Div", [x, const("scale", quant.scale)], "x_scaled"), 1
    q = node("QuantizeLinear", [x, const("x_scale", scale), const("x_zp", zp, np.uint8)], "q_full")
    if (quant.qmin + zp, quant.qmax + zp) != (0, 255):
        q = node("Clip", [q, const("q_lo", quant.qmin + zp, np.uint8), const("q_hi", quant.qmax + zp, np.uint8)], "q_u8")
    return _Columns(q, features, 1, np.zeros(quant.features, np.int64), zp)

"""The Dataflow IR: the single source of truth for hardware semantics.

Immutable values (frozen dataclasses holding read-only numpy arrays); passes return new objects
with ``dataclasses.replace``. Semantics, exactly (see DESIGN.md "IR semantics"):

* ``InputQuant`` (host side): ``q = clip(round_half_even(float32(x) / float32(scale)), qmin, qmax)``
  as QONNX ``Quant`` computes it; for BIPOLAR ``q = +1 if x >= 0 else -1``. An optional ``pre``
  (a model's input preprocessing such as ``2x - 1``) first maps ``x`` elementwise, each op in
  float32 in order, as ``execute_onnx`` does.
* ``Layer`` (MVAU): ``acc[c] = sum_k weights[c, k] * in[k]`` in exact integers.
* ``Thresholds``: ``count[c] = sum_i [sign[c] * acc[c] >= values[c, i]]`` with ``sign[c] = -1``
  where ``negate[c]`` (a channel whose level falls as the accumulator grows, e.g. a negative
  BatchNorm scale) and ``+1`` elsewhere; the output value is ``count + bias``, except BIPOLAR
  outputs where it is ``2 * count - 1``. The direction lives here and not in the weights, so a
  layer keeps its trained weight type (negating an INT2 weight -2 would need INT3); ``-acc``
  may need one bit more than ``acc_dtype`` (the RTL compares ``~acc`` with shifted thresholds
  instead, qmlp/hwgen/thresholds.py). The wire between layers
  carries ``count`` (an unsigned ``steps``-level code); ``bias`` is applied by the consumer's
  interpretation of the code, which for the next layer is folded into its input type.
* Last layer without activation: raw accumulators leave the fabric.
* ``OutputDequant`` (host side): ``y[c] = out[c] * scale[c] + bias[c]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .datatypes import BIPOLAR, DataType

__all__ = [
    "SCHEMA_VERSION", "READABLE_SCHEMA_VERSIONS", "InputQuant", "Thresholds", "Folding", "Layer", "OutputDequant",
    "StreamFormat", "Dataflow", "IRError", "PRE_OPS", "PreOp", "frozen_array", "accumulator_range", "verify", "to_json",
    "from_json",
    "save", "load", "replace",
]

SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)  # version 1 predates Thresholds.negate (all False)


class IRError(ValueError):
    """The IR breaks an invariant: a compiler bug, never the user's input."""


def frozen_array(values: Any, dtype: Any) -> np.ndarray:
    """A read-only copy, so IR values cannot be mutated behind a pass's back."""
    array = np.array(values, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


PRE_OPS = ("Add", "Sub", "RSub", "Mul", "Div")  # RSub: const - x


@dataclass(frozen=True, eq=False)
class PreOp:
    """One elementwise float32 op of the input preprocessing: ``x op const`` (``const - x`` for RSub)."""

    op: str
    const: np.ndarray  # float32, size 1 or one per input feature

    def apply(self, x: np.ndarray) -> np.ndarray:
        c = self.const
        return {"Add": lambda: x + c, "Sub": lambda: x - c, "RSub": lambda: c - x,
                "Mul": lambda: x * c, "Div": lambda: x / c}[self.op]().astype(np.float32)


@dataclass(frozen=True, eq=False)
class InputQuant:
    """Host-side input quantizer producing the integers the fabric receives."""

    dtype: DataType
    scale: np.ndarray  # float32, one per input feature
    qmin: int
    qmax: int
    pre: tuple[PreOp, ...] = ()  # input preprocessing absorbed from the model, applied first

    @property
    def features(self) -> int:
        return int(self.scale.shape[0])


@dataclass(frozen=True, eq=False)
class Thresholds:
    """Multi-threshold activation; ``values`` ascending along each row (channel), compared with
    the accumulator, or with its negation where ``negate`` is set (see the module docstring)."""

    values: np.ndarray  # int64, (channels, steps)
    out_dtype: DataType
    bias: int
    negate: np.ndarray | None = None  # bool, (channels,); None = no channel negated

    def __post_init__(self) -> None:
        if self.negate is None:
            object.__setattr__(self, "negate", frozen_array(np.zeros(self.values.shape[0], bool), bool))

    @property
    def steps(self) -> int:
        return int(self.values.shape[1])

    def oriented(self, acc: np.ndarray) -> np.ndarray:
        """``sign[c] * acc[..., c]``: the values the thresholds are compared with (channel last)."""
        return np.where(self.negate, -np.asarray(acc, dtype=np.int64), acc)

    def output_value(self, count: np.ndarray) -> np.ndarray:
        """Map threshold counts to the integer values the next layer multiplies with."""
        if self.out_dtype == BIPOLAR:
            return 2 * count - 1
        return count + self.bias


@dataclass(frozen=True)
class Folding:
    """PE output channels and SIMD inputs processed per cycle; ``pad_*`` zero-pads a dimension
    so that a cheaper PE/SIMD divides it (0 = no padding); ``levels_per_stage`` adder-tree
    levels sit between two pipeline registers (chosen by the fold pass for the clock)."""

    pe: int = 1
    simd: int = 1
    pad_out: int = 0
    pad_in: int = 0
    levels_per_stage: int = 3


@dataclass(frozen=True, eq=False)
class Layer:
    """One fully-connected layer with its optional activation."""

    name: str
    weights: np.ndarray  # int64, (out_features, in_features)
    weight_dtype: DataType
    in_dtype: DataType
    acc_dtype: DataType
    activation: Thresholds | None = None
    folding: Folding | None = None

    @property
    def in_features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weights.shape[0])

    @property
    def out_dtype(self) -> DataType:
        return self.activation.out_dtype if self.activation is not None else self.acc_dtype


@dataclass(frozen=True, eq=False)
class OutputDequant:
    """Host-side dequantization of the last layer's integer outputs."""

    scale: np.ndarray  # float64, (channels,)
    bias: np.ndarray  # float64, (channels,)


@dataclass(frozen=True)
class StreamFormat:
    """How vectors are packed on the AXI-Stream ports (see qmlp.packing)."""

    in_elems_per_beat: int
    out_elems_per_beat: int


@dataclass(frozen=True, eq=False)
class Dataflow:
    name: str
    input: InputQuant
    layers: tuple[Layer, ...]
    output: OutputDequant
    input_shape: tuple[int, ...]  # one sample's ONNX input shape (batch axis dropped)
    output_shape: tuple[int, ...]
    argmax: bool = False
    stream: StreamFormat | None = None
    clock_mhz: float | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


def accumulator_range(weights: np.ndarray, in_dtype: DataType) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel exact (min, max) of ``weights @ x`` over every x in ``in_dtype``'s range."""
    w = np.asarray(weights, dtype=np.int64)
    lo, hi = in_dtype.min, in_dtype.max
    low = np.minimum(w * lo, w * hi).sum(axis=1)
    high = np.maximum(w * lo, w * hi).sum(axis=1)
    return low, high


def verify(df: Dataflow) -> None:
    """Check every IR invariant; raise IRError naming the layer and the broken rule."""
    if df.input.scale.ndim != 1 or not np.all(np.isfinite(df.input.scale)) or np.any(df.input.scale == 0):
        raise IRError("input: scale must be a finite, nonzero vector")
    if not (df.input.dtype.min <= df.input.qmin <= df.input.qmax <= df.input.dtype.max):
        raise IRError(f"input: clip range [{df.input.qmin}, {df.input.qmax}] outside {df.input.dtype}")
    for op in df.input.pre:
        if op.op not in PRE_OPS or op.const.size not in (1, df.input.features) or not np.all(np.isfinite(op.const)):
            raise IRError(f"input: preprocessing {op.op} needs one of {PRE_OPS} with a finite scalar or "
                          "per-feature constant")
    if not df.layers:
        raise IRError("dataflow has no layers")
    features, in_dtype = df.input.features, df.input.dtype
    for index, layer in enumerate(df.layers):
        where = f"layer {index} ({layer.name})"
        if layer.weights.ndim != 2 or layer.in_features != features:
            raise IRError(f"{where}: weights {layer.weights.shape} do not take {features} inputs")
        if layer.in_dtype != in_dtype:
            raise IRError(f"{where}: in_dtype {layer.in_dtype} but producer gives {in_dtype}")
        if not layer.weight_dtype.allows(layer.weights):
            raise IRError(f"{where}: weights not all in {layer.weight_dtype}")
        low, high = accumulator_range(layer.weights, layer.in_dtype)
        if not (layer.acc_dtype.allows(low) and layer.acc_dtype.allows(high)):
            raise IRError(f"{where}: accumulator type {layer.acc_dtype} cannot hold [{low.min()}, {high.max()}]")
        act = layer.activation
        if act is not None:
            if act.values.shape != (layer.out_features, act.steps) or act.steps < 1:
                raise IRError(f"{where}: thresholds shape {act.values.shape}")
            if act.negate.shape != (layer.out_features,) or act.negate.dtype != bool:
                raise IRError(f"{where}: negate must be one bool per channel, got {act.negate.shape} {act.negate.dtype}")
            if np.any(np.diff(act.values, axis=1) < 0):
                raise IRError(f"{where}: thresholds not ascending per channel")
            expected_steps = 1 if act.out_dtype == BIPOLAR else (1 << act.out_dtype.bits) - 1
            if act.steps > expected_steps:
                raise IRError(f"{where}: {act.steps} thresholds for {act.out_dtype}")
            out_lo = act.output_value(np.int64(0))
            out_hi = act.output_value(np.int64(act.steps))
            if not act.out_dtype.allows(np.array([out_lo, out_hi])):
                raise IRError(f"{where}: outputs [{out_lo}, {out_hi}] outside {act.out_dtype}")
        features, in_dtype = layer.out_features, layer.out_dtype
        if layer.folding is not None:
            f = layer.folding
            if (layer.out_features + f.pad_out) % f.pe or (layer.in_features + f.pad_in) % f.simd:
                raise IRError(f"{where}: folding {f} does not divide {layer.weights.shape}")
            if not isinstance(f.levels_per_stage, int) or f.levels_per_stage < 1:
                raise IRError(f"{where}: folding levels_per_stage {f.levels_per_stage!r} must be an int >= 1")
    if df.output.scale.shape != (features,) or df.output.bias.shape != (features,):
        raise IRError(f"output: dequant vectors must have {features} entries")
    if int(np.prod(df.output_shape)) != features or int(np.prod(df.input_shape)) != df.input.features:
        raise IRError("input/output shapes do not match the layer chain")


# --- JSON -------------------------------------------------------------------------------------

def _layer_to_json(layer: Layer) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": layer.name,
        "weight_dtype": layer.weight_dtype.name,
        "in_dtype": layer.in_dtype.name,
        "acc_dtype": layer.acc_dtype.name,
        "weights": layer.weights.tolist(),
        "activation": None,
        "folding": None if layer.folding is None else vars(layer.folding).copy(),
    }
    if layer.activation is not None:
        data["activation"] = {
            "out_dtype": layer.activation.out_dtype.name,
            "bias": layer.activation.bias,
            "thresholds": layer.activation.values.tolist(),
            "negate": layer.activation.negate.tolist(),
        }
    return data


def _negate_from_json(value: Any, name: Any) -> np.ndarray:
    if not isinstance(value, list) or not all(isinstance(v, bool) for v in value):
        raise IRError(f"layer {name!r}: activation.negate must be a list of true/false, one per channel")
    return frozen_array(value, bool)


def _layer_from_json(data: Mapping[str, Any]) -> Layer:
    act = data.get("activation")
    return Layer(
        name=data["name"],
        weights=frozen_array(data["weights"], np.int64),
        weight_dtype=DataType.parse(data["weight_dtype"]),
        in_dtype=DataType.parse(data["in_dtype"]),
        acc_dtype=DataType.parse(data["acc_dtype"]),
        activation=None if act is None else Thresholds(
            values=frozen_array(act["thresholds"], np.int64).reshape(len(data["weights"]), -1),
            out_dtype=DataType.parse(act["out_dtype"]),
            bias=int(act["bias"]),
            negate=None if "negate" not in act else _negate_from_json(act["negate"], data.get("name")),
        ),
        folding=None if data.get("folding") is None else Folding(**data["folding"]),
    )


def to_json(df: Dataflow) -> dict[str, Any]:
    """A JSON-ready dict; floats are written with repr precision so the round trip is exact."""
    return {
        "schema": "qmlp.dataflow",
        "schema_version": SCHEMA_VERSION,
        "name": df.name,
        "input_shape": list(df.input_shape),
        "output_shape": list(df.output_shape),
        "argmax": df.argmax,
        "clock_mhz": df.clock_mhz,
        "stream": None if df.stream is None else vars(df.stream).copy(),
        "metadata": dict(df.metadata),
        "input": {
            "dtype": df.input.dtype.name,
            "qmin": df.input.qmin,
            "qmax": df.input.qmax,
            "scale": [float(s) for s in df.input.scale],
            **({"pre": [{"op": op.op, "const": [float(c) for c in op.const]} for op in df.input.pre]}
               if df.input.pre else {}),
        },
        "layers": [_layer_to_json(layer) for layer in df.layers],
        "output": {
            "scale": [float(s) for s in df.output.scale],
            "bias": [float(b) for b in df.output.bias],
        },
    }


def from_json(data: Mapping[str, Any]) -> Dataflow:
    if data.get("schema") != "qmlp.dataflow":
        raise IRError("not a qmlp dataflow document (missing schema: qmlp.dataflow)")
    if data.get("schema_version") not in READABLE_SCHEMA_VERSIONS:
        raise IRError(f"dataflow schema version {data.get('schema_version')} not supported "
                      f"(this qmlp reads {', '.join(map(str, READABLE_SCHEMA_VERSIONS))})")
    inp = data["input"]
    return Dataflow(
        name=data["name"],
        input=InputQuant(
            dtype=DataType.parse(inp["dtype"]), scale=frozen_array(inp["scale"], np.float32),
            qmin=int(inp["qmin"]), qmax=int(inp["qmax"]),
            pre=tuple(PreOp(str(op["op"]), frozen_array(op["const"], np.float32)) for op in inp.get("pre", ())),
        ),
        layers=tuple(_layer_from_json(layer) for layer in data["layers"]),
        output=OutputDequant(
            scale=frozen_array(data["output"]["scale"], np.float64),
            bias=frozen_array(data["output"]["bias"], np.float64),
        ),
        input_shape=tuple(data["input_shape"]),
        output_shape=tuple(data["output_shape"]),
        argmax=bool(data.get("argmax", False)),
        stream=None if data.get("stream") is None else StreamFormat(**data["stream"]),
        clock_mhz=data.get("clock_mhz"),
        metadata=dict(data.get("metadata", {})),
    )


def save(df: Dataflow, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_json(df), separators=(",", ":")) + "\n")


def load(path: str | Path) -> Dataflow:
    return from_json(json.loads(Path(path).read_text()))

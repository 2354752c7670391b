"""Hand-built QONNX/QCDQ graphs (onnx.helper) for error cases and models no exporter makes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX_DOMAIN = "qonnx.custom_op.general"


class GraphBuilder:
    """Collects nodes and initializers; ``model()`` wraps them with one input and output."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, value, dtype=np.float32) -> str:
        name = self._name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], domain: str = "", **attrs) -> str:
        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def quant(self, x: str, scale, bits: int, signed: bool = True, narrow: bool = False, zero_point=0.0,
              rounding: str = "ROUND") -> str:
        return self.node("Quant", [x, self.const(scale), self.const(zero_point), self.const(float(bits))],
                         domain=QONNX_DOMAIN, signed=int(signed), narrow=int(narrow), rounding_mode=rounding)

    def bipolar(self, x: str, scale) -> str:
        return self.node("BipolarQuant", [x, self.const(scale)], domain=QONNX_DOMAIN)

    def dense(self, x: str, weight: np.ndarray, scale, bits: int = 2, narrow: bool = True, gemm: bool = False,
              bias=None) -> str:
        """Quantized fully-connected layer; ``weight`` is float (out, in)."""
        w = self.quant(self.const(weight), scale, bits, signed=True, narrow=narrow)
        if gemm:
            inputs = [x, w] + ([self.const(bias)] if bias is not None else [])
            return self.node("Gemm", inputs, transB=1)
        return self.node("MatMul", [x, self.node("Transpose", [w], perm=[1, 0])])

    def model(self, output: str, input_shape: tuple[int, ...], output_shape: tuple[int, ...],
              input_name: str = "x") -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "handmade",
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, *input_shape])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, *output_shape])],
            initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                        helper.make_opsetid(QONNX_DOMAIN, 1)])
        model.ir_version = 8
        return model


def small_mlp(rng: np.random.Generator | None = None, **overrides) -> onnx.ModelProto:
    """x(6) -> Quant INT8 -> ternary MatMul -> BN -> Relu -> Quant UINT2 -> ternary MatMul -> y(3).

    ``overrides`` change one field: in_scale, in_bits, act_bits, act_scale, rounding, zero_point."""
    rng = rng or np.random.default_rng(0)
    o = {"in_scale": 0.05, "in_bits": 8, "act_bits": 2, "act_scale": 0.5, "rounding": "ROUND", "zero_point": 0.0}
    o.update(overrides)
    g = GraphBuilder()
    q = g.quant("x", o["in_scale"], o["in_bits"], signed=True, zero_point=o["zero_point"], rounding=o["rounding"])
    h = g.dense(q, rng.uniform(-1, 1, (5, 6)), 0.5)
    h = g.node("BatchNormalization", [h, g.const(rng.uniform(-1, 1, 5)), g.const(rng.normal(0, 1, 5)),
                                      g.const(rng.normal(0, 1, 5)), g.const(rng.uniform(0.5, 2, 5))])
    h = g.node("Relu", [h])
    h = g.quant(h, o["act_scale"], o["act_bits"], signed=False)
    y = g.dense(h, rng.uniform(-1, 1, (3, 5)), 0.5)
    return g.model(y, (6,), (3,))


def save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)

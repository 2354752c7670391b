"""A read-only view of an ONNX graph: constants, producers and consumers by tensor name.

Only what the frontend needs: constant values (initializers, ``Constant`` nodes, and
Identity/Transpose/Reshape/Cast of constants) and the tensors that depend on the data input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ModelError
from .load import graph_inputs, graph_outputs

__all__ = ["GraphView", "node_label", "attribute"]


def node_label(node: onnx.NodeProto, index: int | None = None) -> str:
    """How errors name a node: its name (or its first output) and op type."""
    name = node.name or (node.output[0] if node.output else f"#{index}")
    return f"node '{name}' ({node.op_type})"


def attribute(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            value = onnx.helper.get_attribute_value(attr)
            return value.decode(errors="replace") if isinstance(value, bytes) else value  # untrusted bytes
    return default


@dataclass(frozen=True, eq=False)
class GraphView:
    model: onnx.ModelProto
    initializers: Mapping[str, np.ndarray]
    producer: Mapping[str, onnx.NodeProto]
    consumers: Mapping[str, tuple[onnx.NodeProto, ...]]
    dynamic: frozenset[str]  # tensors that depend on the data input
    input_name: str
    output_name: str

    @classmethod
    def of(cls, model: onnx.ModelProto) -> "GraphView":
        graph = model.graph
        inits = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        producer: dict[str, onnx.NodeProto] = {}
        consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for out in node.output:
                producer[out] = node
            for inp in dict.fromkeys(node.input):  # a node using a tensor twice consumes it once
                if inp:
                    consumers.setdefault(inp, []).append(node)
        input_name = graph_inputs(model)[0].name
        dynamic = {input_name}
        for node in graph.node:  # ONNX requires topological order
            if any(inp in dynamic for inp in node.input):
                dynamic.update(node.output)
        return cls(model, inits, producer, {k: tuple(v) for k, v in consumers.items()},
                   frozenset(dynamic), input_name, graph_outputs(model)[0].name)

    def const(self, name: str) -> np.ndarray | None:
        """The value of a constant tensor, or None if it is not (simply) constant."""
        if name in self.initializers:
            return self.initializers[name]
        node = self.producer.get(name)
        if node is None or name in self.dynamic:
            return None
        if node.op_type == "Constant":
            value = attribute(node, "value")
            if value is None:
                return None
            return numpy_helper.to_array(value)
        if node.op_type in ("Identity", "Cast", "Transpose", "Reshape"):
            inner = self.const(node.input[0])
            if inner is None:
                return None
            if node.op_type == "Transpose":
                return np.transpose(inner, attribute(node, "perm"))
            if node.op_type == "Reshape":
                shape = self.const(node.input[1])
                return None if shape is None else inner.reshape([int(s) for s in shape])
            if node.op_type == "Cast":
                return inner.astype(onnx.helper.tensor_dtype_to_np_dtype(attribute(node, "to")))
            return inner
        return None

    def require_const(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
        name = node.input[index] if index < len(node.input) else ""
        value = self.const(name) if name else None
        if value is None:
            raise ModelError(f"{node_label(node)}: {what} (input {index} '{name}') must be a constant; "
                             "qmlp only folds constant parameters")
        return value

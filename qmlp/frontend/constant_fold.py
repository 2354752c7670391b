"""Pass: fold arithmetic on constants (e.g. the ``Pow``/``Sqrt`` of a TensorNorm's running
variance in FINN's bnn_pynq models) into initializers before the chain is read.

Each folded node is evaluated by onnxruntime on its own, exactly as qonnx ``execute_onnx``
evaluates a standard node, so the folded value is bit-identical to what the float reference
computes at run time."""

from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ModelError
from .graph import node_label

__all__ = ["FOLDABLE_OPS", "fold_constants"]

# Elementwise arithmetic that a model may compute on its parameters; never quantizers (the chain
# reads weights through their Quant nodes) and nothing that touches the data input.
FOLDABLE_OPS = frozenset({"Pow", "Sqrt", "Reciprocal", "Neg", "Abs", "Exp", "Log", "Add", "Sub", "Mul", "Div",
                          "Cast"})


def _constant_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None and value.ByteSize():
                values[node.output[0]] = numpy_helper.to_array(value)
    return values


def _evaluate(node: onnx.NodeProto, inputs: list[np.ndarray], opset: int) -> list[np.ndarray]:
    """One node run by onnxruntime, as qonnx ``execute_node`` runs a standard node."""
    import onnxruntime as ort

    graph = helper.make_graph(
        [node], "fold",
        [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
         for name, value in zip(node.input, inputs)],
        [helper.make_empty_tensor_value_info(name) for name in node.output])
    single = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    single.ir_version = min(single.ir_version, 10)  # what the installed onnxruntime reads
    try:
        session = ort.InferenceSession(single.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, dict(zip(node.input, inputs)))
    except Exception as error:  # onnxruntime raises its own types for invalid nodes
        raise ModelError(f"{node_label(node)}: cannot evaluate this constant expression "
                         f"({str(error).splitlines()[0]}); simplify the model before export") from None


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Expects a ModelProto. Guarantees a copy in which every node of ``FOLDABLE_OPS`` whose
    inputs are all constant is replaced by an initializer holding its output; the input model is
    not changed, and a model without such nodes comes back as an equal copy."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    values = _constant_values(model)
    kept, folded = [], {}
    for node in model.graph.node:
        inputs = [name for name in node.input if name]
        if (node.op_type in FOLDABLE_OPS and node.domain in ("", "ai.onnx") and inputs
                and len(inputs) == len(node.input) and all(name in values for name in inputs)):
            outputs = _evaluate(node, [values[name] for name in inputs], opset)
            for name, value in zip(node.output, outputs):
                values[name] = folded[name] = np.asarray(value)
        else:
            kept.append(node)
    if not folded:
        return copy.deepcopy(model)
    result = copy.deepcopy(model)
    del result.graph.node[:]
    result.graph.node.extend(kept)
    result.graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in folded.items())
    return result

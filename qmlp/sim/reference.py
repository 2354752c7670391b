"""The float reference: qonnx ``execute_onnx`` on the original model, plus the integer levels
each quantizer produced, mapped onto the IR's layers so they compare directly with
``SimResult.activations`` (levels are unaffected by the IR's channel negation, and the IR's
activation values are ``count + bias`` = the quantizer's integer level)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from ..errors import ModelError
from ..frontend.chain import QuantStep, extract_chain, check_supported_ops
from ..frontend.load import graph_inputs, load_model
from ..frontend.lower import LayerSpec, split_layers, uniform_scale

__all__ = ["Reference", "run_reference", "CHUNK"]

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
    for value in (graph_inputs(proto)[0], proto.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = batch
    return ModelWrapper(proto).transform(InferShapes())


def run_reference(model: str | Path | onnx.ModelProto, x: np.ndarray) -> Reference:
    """Run ``execute_onnx`` on ``x`` (float, shaped (batch, *input_shape)) in chunks of CHUNK and
    read every quantizer's integer levels from the execution context."""
    from qonnx.core.onnx_exec import execute_onnx

    proto = model if isinstance(model, onnx.ModelProto) else load_model(model)
    chain = extract_chain(check_supported_ops(proto))
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
        context = execute_onnx(wrappers[chunk.shape[0]], {chain.input_name: chunk}, return_full_exec_context=True)
        inputs.append(_levels(context, in_quant))
        outputs.append(np.asarray(context[chain.output_name], dtype=np.float32))
        for index, spec in enumerate(specs):
            acts[index].append(_levels(context, spec.out_quant) if spec.out_quant is not None
                               else _raw_accumulators(context, spec))
    return Reference(inputs=np.concatenate(inputs), activations=tuple(np.concatenate(a) for a in acts),
                     outputs=np.concatenate(outputs))

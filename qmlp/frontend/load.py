"""Reading an ONNX file and the checks that need nothing but the file itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ModelError

__all__ = ["load_model", "graph_inputs", "graph_outputs", "check_single_io", "check_finite_constants"]


def load_model(path: str | Path) -> onnx.ModelProto:
    """Read ``path`` as an ONNX model.

    Expects: a path. Guarantees: a parsed ModelProto with at least one node and exactly one
    data input and one output, or a ModelError naming the file and the fix."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a directory; pass the path of a QONNX model (.onnx)")
    if not path.is_file():
        raise ModelError(f"{path}: no such file; pass the path of a QONNX model exported with brevitas")
    if _is_torch_checkpoint(path):
        raise ModelError(f"{path}: a PyTorch checkpoint, not an ONNX model; export the Brevitas model with "
                         "brevitas.export.export_qonnx(model, input_t=x, export_path='model.onnx', dynamo=False)")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises several unrelated types for corrupt bytes
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{path}: not a readable ONNX model ({reason}); re-export it with brevitas export_qonnx") from None
    if not model.graph.node:
        raise ModelError(f"{path}: ONNX graph has no nodes; is this really an exported model?")
    check_single_io(model, str(path))
    check_finite_constants(model, str(path))
    return model


def check_finite_constants(model: onnx.ModelProto, where: str) -> onnx.ModelProto:
    """Expects a ModelProto. Guarantees every float initializer and Constant value is finite
    (else ModelError naming the tensor): NaN weights or BatchNorm statistics would otherwise
    lower to thresholds computed from NaN."""
    tensors = [(init.name, init) for init in model.graph.initializer]
    tensors += [(node.output[0] if node.output else node.name, attr.t) for node in model.graph.node
                if node.op_type == "Constant" for attr in node.attribute if attr.name == "value"]
    for name, tensor in tensors:
        try:
            values = numpy_helper.to_array(tensor)
        except Exception as exc:  # onnx raises several types for inconsistent tensor data
            raise ModelError(f"{where}: initializer '{name}' cannot be read ({type(exc).__name__}); re-export the model") from None
        if values.dtype.kind in "fc" and not np.all(np.isfinite(values)):
            bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
            raise ModelError(f"{where}: initializer '{name}' holds {bad} NaN or infinite values; retrain or "
                             "re-export the model (qmlp refuses non-finite parameters)")
    return model


def _is_torch_checkpoint(path: Path) -> bool:
    """torch.save writes a zip archive (PK header) or, in the legacy format, a pickle (0x80
    protocol byte); an ONNX file is a protobuf and starts with neither."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return head == b"PK\x03\x04" or (path.suffix in (".pt", ".pth", ".ckpt") and head[:1] == b"\x80")


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The real data inputs: Brevitas' legacy exporter also lists every initializer as an input."""
    initializers = {init.name for init in model.graph.initializer}
    return [inp for inp in model.graph.input if inp.name not in initializers]


def graph_outputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The computed outputs: Brevitas' legacy exporter of binary activations also lists some
    constant tensors (initializers no node computes) as graph outputs."""
    produced = {out for node in model.graph.node for out in node.output}
    return [out for out in model.graph.output if out.name in produced]


def check_single_io(model: onnx.ModelProto, where: str) -> onnx.ModelProto:
    """Expects a ModelProto. Guarantees exactly one data input and one output (else ModelError)."""
    inputs = [inp.name for inp in graph_inputs(model)]
    outputs = [out.name for out in graph_outputs(model)]
    if len(inputs) != 1:
        raise ModelError(f"{where}: model has {len(inputs)} data inputs {inputs}; qmlp needs exactly one")
    if len(outputs) != 1:
        raise ModelError(f"{where}: model has {len(outputs)} outputs {outputs}; qmlp needs exactly one")
    return model

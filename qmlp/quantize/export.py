"""QONNX export (Brevitas ``export_qonnx``, TorchScript path) with metadata, and test vectors whose
expected outputs come from qonnx's ``execute_onnx`` (the float reference the compiler checks against)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

__all__ = ["export_model", "reference_outputs", "write_test_vectors", "read_metadata"]


def export_model(model: torch.nn.Module, path: str | Path, in_features: int, metadata: Mapping[str, str]) -> None:
    """Write ``model`` (eval mode, batch 1 input) to ``path`` with ``metadata`` as ONNX metadata_props."""
    import warnings

    import onnx

    with warnings.catch_warnings():  # brevitas warns on import about an optional CUDA-only package
        warnings.simplefilter("ignore", UserWarning)
        from brevitas.export import export_qonnx

    path = Path(path)
    model.eval()
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        # dynamo=False: the TorchScript exporter is much faster here and emits MatMul, which the
        # frontend lowers directly (see DESIGN.md, dependency quirks).
        export_qonnx(model, torch.zeros(1, in_features), tmp, dynamo=False)
        proto = onnx.load(tmp)
        del proto.metadata_props[:]
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = str(key), str(value)
        onnx.save(proto, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def reference_outputs(path: str | Path, x: np.ndarray) -> np.ndarray:
    """qonnx ``execute_onnx`` on each row of ``x`` (the exported graph has batch size 1)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    # cleanup (shape inference + constant folding) only annotates the graph; it is what execute_onnx needs.
    wrapper = cleanup_model(ModelWrapper(str(path)))
    name_in = wrapper.graph.input[0].name
    name_out = wrapper.graph.output[0].name
    rows = [execute_onnx(wrapper, {name_in: x[i:i + 1].astype(np.float32)})[name_out] for i in range(x.shape[0])]
    return np.concatenate(rows).astype(np.float32)


def write_test_vectors(model_path: str | Path, x: np.ndarray, y: np.ndarray, out: str | Path) -> None:
    """``out`` (.npz): inputs ``x``, labels ``y``, ``expected`` = execute_onnx float outputs."""
    np.savez_compressed(out, x=x.astype(np.float32), y=y.astype(np.int64), expected=reference_outputs(model_path, x))

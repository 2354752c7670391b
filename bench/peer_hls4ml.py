"""Runs inside .venv-peers: convert a QONNX model with hls4ml, build its C simulation with g++,
predict the given inputs. Usage: peer_hls4ml.py MODEL.onnx INPUTS.npy OUT_DIR PRECISION
Writes OUT_DIR/outputs.npy and OUT_DIR/timing.json (convert+compile seconds, predict seconds)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def main(model_path: str, inputs_path: str, out_dir: str, precision: str) -> None:
    import hls4ml
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = cleanup_model(ModelWrapper(model_path))
    model = model.transform(ConvertToChannelsLastAndClean()).transform(GemmToMatMul())
    model = cleanup_model(model)
    config = hls4ml.utils.config.config_from_onnx_model(
        model, granularity="name", backend="Vitis", default_precision=precision)
    hls_model = hls4ml.converters.convert_from_onnx_model(
        model, output_dir=str(out / "prj"), io_type="io_parallel", backend="Vitis", hls_config=config)
    hls_model.compile()
    compiled = time.perf_counter()
    x = np.load(inputs_path).astype(np.float32)
    y = np.asarray(hls_model.predict(np.ascontiguousarray(x)), dtype=np.float32)
    done = time.perf_counter()
    np.save(out / "outputs.npy", y)
    (out / "timing.json").write_text(json.dumps({
        "hls4ml_version": hls4ml.__version__,
        "convert_and_compile_s": compiled - start,
        "predict_s": done - compiled,
        "samples": int(x.shape[0]),
    }))


if __name__ == "__main__":
    main(*sys.argv[1:5])

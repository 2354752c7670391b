"""Run finn-plus's Vivado-free build steps on a qmlp-written FINN build directory.

This file is executed by the FINN environment's Python (``.venv-finn/bin/python``, ``make finn``),
never imported by qmlp: finn-plus pins brevitas/onnx/protobuf versions that clash with qmlp's.
It uses only the standard library, numpy and finn-plus.

    python finn_runner.py BUILD_DIR [--crosscheck INPUT.npy OUTPUT.npz]

Runs FINN's ``hw_codegen_dataflow_steps`` (``step_qonnx_to_finn`` ... ``step_hw_codegen``) on
``BUILD_DIR/model.onnx`` with ``BUILD_DIR/dataflow_build_config.json`` through the Python API,
outputs in ``BUILD_DIR/output``, and writes ``output/qmlp_finn_run.json`` (steps, seconds, error).
With ``--crosscheck`` it then executes FINN's hardware-layer graph in Python mode on the inputs
and saves the graph outputs and the integers entering the dataflow partition.

finn-plus 1.6.1 workarounds (DESIGN.md): FINN_BUILD_DIR is set before importing the builder;
``finn.xsi.SimEngine`` (Vivado's simulator, needs $XILINX_VIVADO) is bound to None before the
builder imports it; the steps are called one by one, so ``exit_buildflow`` (which asks for the
Vivado root) never runs."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

REPORT = "qmlp_finn_run.json"


def _import_finn(build_dir: Path):
    os.environ.setdefault("FINN_BUILD_DIR", str(build_dir / "output" / "finn_tmp"))
    Path(os.environ["FINN_BUILD_DIR"]).mkdir(parents=True, exist_ok=True)
    import finn.xsi

    finn.xsi.SimEngine = None  # no Vivado: rtlsim is not used by the steps run here
    from finn.builder import build_dataflow_config as config
    from finn.builder.build_dataflow_steps import build_dataflow_step_lookup

    return config, build_dataflow_step_lookup


def run_steps(build_dir: Path) -> dict:
    """FINN's steps through step_hw_codegen; a summary dict (also written as output/REPORT)."""
    start = time.perf_counter()
    os.chdir(build_dir)  # FINN resolves verify_input_npy & co. against the current directory
    config, lookup = _import_finn(build_dir)
    from qonnx.core.modelwrapper import ModelWrapper

    import_s = time.perf_counter() - start
    cfg = config.DataflowBuildConfig.construct_from(Path("dataflow_build_config.json"))
    cfg.output_dir = str(build_dir / "output")
    cfg.steps = list(config.hw_codegen_dataflow_steps)
    cfg.generate_outputs = [config.DataflowOutputType.ESTIMATE_REPORTS]
    steps_dir = Path(cfg.output_dir) / "intermediate_models"
    steps_dir.mkdir(parents=True, exist_ok=True)
    result = {"finn_import_s": round(import_s, 2), "steps": [], "error": None}
    model = ModelWrapper("model.onnx")
    for name in cfg.steps:
        t = time.perf_counter()
        try:
            model = lookup[name](model, cfg)
        except Exception as error:  # FINN raises many types; report the step and the message
            result["error"] = f"{name}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            result["traceback"] = traceback.format_exc()
            break
        model.save(str(steps_dir / f"{name}.onnx"))
        result["steps"].append({"name": name, "seconds": round(time.perf_counter() - t, 3)})
    result["total_s"] = round(time.perf_counter() - start, 2)
    (Path(cfg.output_dir) / REPORT).write_text(json.dumps(result, indent=2) + "\n")
    return result


def crosscheck(build_dir: Path, inputs: Path, out: Path) -> None:
    """Execute FINN's hardware-layer graph (after step_minimize_bit_width: every node a FINN HW
    op, folded and with minimized bit widths; specialised ops mapped back to their generic
    Python forms) on ``inputs``, one sample at a time; save the graph outputs and each HW
    node's output (``node_<i>``, with ``op_types`` naming them)."""
    import numpy as np

    _import_finn(build_dir)
    from qonnx.core.modelwrapper import ModelWrapper
    from finn.core.onnx_exec import execute_onnx

    model = ModelWrapper(str(build_dir / "output" / "intermediate_models" / "step_minimize_bit_width.onnx"))
    for node in model.graph.node:  # specialised nodes (MVAU_hls, Thresholding_rtl) simulate only in
        if node.domain.endswith((".hls", ".rtl")):  # cppsim/rtlsim: map them back to the generic op
            node.domain = node.domain.rsplit(".", 1)[0]
            node.op_type = node.op_type.rsplit("_", 1)[0]
    x = np.load(inputs)
    name_in, name_out = model.graph.input[0].name, model.graph.output[0].name
    nodes = list(model.graph.node)
    outputs, per_node = [], [[] for _ in nodes]
    for row in x:
        context = execute_onnx(model, {name_in: row[None]}, return_full_exec_context=True)
        outputs.append(np.asarray(context[name_out], dtype=np.float32))
        for index, node in enumerate(nodes):
            per_node[index].append(np.asarray(context[node.output[0]]).reshape(1, -1))
    np.savez(out, outputs=np.concatenate(outputs), op_types=np.array([n.op_type for n in nodes]),
             **{f"node_{i}": np.concatenate(values) for i, values in enumerate(per_node)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--crosscheck", nargs=2, type=Path, metavar=("INPUT_NPY", "OUTPUT_NPZ"))
    parser.add_argument("--skip-build", action="store_true", help="only the cross-check (steps ran before)")
    args = parser.parse_args(argv)
    build_dir = args.build_dir.resolve()
    if not args.skip_build:
        result = run_steps(build_dir)
        if result["error"]:
            print(f"finn: {result['error']}", file=sys.stderr)
            return 1
    if args.crosscheck:
        crosscheck(build_dir, args.crosscheck[0].resolve(), args.crosscheck[1].resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())

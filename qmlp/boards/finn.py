"""``--backend finn``: hand the same model to FINN as a "simple mode" build directory.

The directory holds ``model.onnx`` (the QONNX model after qonnx ``cleanup_model``),
``dataflow_build_config.json`` (a DataflowBuildConfig in FINN's field names), and
``folding_config.json`` when a folding is given instead of a target fps. Where FINN is importable
``finn.builder.build_dataflow.build_dataflow_directory`` runs it; elsewhere the exact command for
FINN's Docker container is printed and written to ``run_finn.sh``.

FINN facts used here, read from the FINN sources (github.com/Xilinx/finn, main branch):
``src/finn/builder/build_dataflow_config.py`` (DataflowBuildConfig fields, DataflowOutputType and
ShellFlowType values), ``src/finn/util/basic.py`` (``pynq_part_map``: FINN's board names and parts),
``docs/finn/command_line.rst`` (directory layout: ``model.onnx`` + ``dataflow_build_config.json``,
relative paths resolved in the directory, ``./run-docker.sh build_dataflow <dir>``)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .. import __version__
from ..errors import ConfigError, ModelError
from ..ir import Dataflow
from .board import Board, get_board

__all__ = ["FINN_CONFIG_FIELDS", "FINN_REQUIRED_FIELDS", "FINN_OUTPUT_TYPES", "FINN_SHELL_FLOWS",
           "FINN_VERIFY_STEPS", "FINN_ZYNQ_BOARDS", "FinnBuild", "finn_importable", "model_layer_dims",
           "finn_folding", "finn_build_config", "write_finn_build"]

# DataflowBuildConfig fields (build_dataflow_config.py).
FINN_CONFIG_FIELDS = frozenset({
    "output_dir", "synth_clk_period_ns", "generate_outputs", "specialize_layers_config_file",
    "folding_config_file", "target_fps", "folding_two_pass_relaxation", "verify_steps", "verify_input_npy",
    "verify_expected_output_npy", "verify_save_full_context", "verify_save_rtlsim_waveforms",
    "stitched_ip_gen_dcp", "signature", "mvau_wwidth_max", "standalone_thresholds", "minimize_bit_width",
    "board", "shell_flow_type", "fpga_part", "auto_fifo_depths", "split_large_fifos", "auto_fifo_strategy",
    "force_python_rtlsim", "large_fifo_mem_style", "fifosim_input_throttle", "fifosim_save_waveform",
    "hls_clk_period_ns", "default_swg_exception", "vitis_platform", "vitis_floorplan_file",
    "vitis_opt_strategy", "save_intermediate_models", "enable_hw_debug", "enable_build_pdb_debug",
    "verbose", "steps", "start_step", "stop_step", "max_multithreshold_bit_width", "rtlsim_batch_size",
    "rtlsim_use_vivado_comps", "input_range_info",
})
FINN_REQUIRED_FIELDS = ("output_dir", "synth_clk_period_ns", "generate_outputs")
# DataflowOutputType / ShellFlowType / VerificationStepType values (the JSON form of the enums).
FINN_OUTPUT_TYPES = frozenset({"stitched_ip", "estimate_reports", "out_of_context_synth", "rtlsim_performance",
                               "bitfile", "pynq_driver", "deployment_package"})
FINN_SHELL_FLOWS = frozenset({"vivado_zynq", "vitis_alveo"})
FINN_VERIFY_STEPS = frozenset({"finn_onnx_python", "initial_python", "streamlined_python", "folded_hls_cppsim",
                               "node_by_node_rtlsim", "stitched_ip_rtlsim"})
# pynq_part_map: FINN board name -> part.
FINN_ZYNQ_BOARDS = {
    "Ultra96": "xczu3eg-sbva484-1-e", "Ultra96-V2": "xczu3eg-sbva484-1-i", "Pynq-Z1": "xc7z020clg400-1",
    "Pynq-Z2": "xc7z020clg400-1", "ZCU102": "xczu9eg-ffvb1156-2-e", "ZCU104": "xczu7ev-ffvc1156-2-e",
    "ZCU111": "xczu28dr-ffvg1517-2-e", "RFSoC2x2": "xczu28dr-ffvg1517-2-e", "RFSoC4x2": "xczu48dr-ffvg1517-2-e",
    "KV260_SOM": "xck26-sfvc784-2LV-c", "AUP-ZU3_8GB": "xczu3eg-sfvc784-2-e",
}
# The outputs a board user wants; FINN runs the steps they need.
OUTPUTS = ("estimate_reports", "stitched_ip", "bitfile", "pynq_driver", "deployment_package")
# FINN verifies these (pure Python) steps against expected_output.npy computed by qonnx here.
VERIFY = ("finn_onnx_python", "initial_python", "streamlined_python")
# Folding attributes FINN's ApplyConfig understands on MVAU nodes; qmlp-only keys are dropped.
_FINN_NODE_ATTRS = {"PE", "SIMD", "ram_style", "resType", "mem_mode", "runtime_writeable_weights",
                    "inFIFODepths", "outFIFODepths", "depth", "impl_style", "ram_style_thresholds",
                    "preferred_impl_style"}
_FINN_NODE_NAME = re.compile(r"^(MVAU|MatrixVectorActivation|Thresholding|StreamingFIFO|StreamingDataWidthConverter|"
                             r"VVAU|LabelSelect|ChannelwiseOp|IODMA)(_hls|_rtl)?_\d+$")


@dataclass(frozen=True)
class FinnBuild:
    directory: Path
    command: str  # how to run the build inside FINN's container
    ran: bool  # build_dataflow was called here
    status: int | None  # its return value (0 = success) when it ran


def finn_importable() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("finn.builder.build_dataflow") is not None
    except (ImportError, ValueError):  # the PyPI 'finn' placeholder has no finn.builder
        return False


def _load_clean(model_path: Path):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    try:
        return cleanup_model(ModelWrapper(str(model_path)))
    except Exception as error:  # onnx/qonnx raise many types for unreadable files
        raise ModelError(f"{model_path}: qonnx cannot load and clean this model ({error})") from None


def model_layer_dims(model) -> list[tuple[int, int]]:
    """(MH outputs, MW inputs) of every MatMul/Gemm in graph order: FINN's MVAU dimensions."""
    dims = []
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        shape = model.get_tensor_shape(node.input[1])
        if shape is None or len(shape) != 2:
            raise ModelError(f"node {node.name} ({node.op_type}): weight shape unknown; cannot derive the FINN folding")
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        mw, mh = (shape[1], shape[0]) if trans_b else (shape[0], shape[1])
        dims.append((int(mh), int(mw)))
    return dims


def _largest_divisor(n: int, at_most: int) -> int:
    return max(d for d in range(1, max(1, min(n, at_most)) + 1) if n % d == 0)


def finn_folding(folding: Mapping[str, Any] | Dataflow, dims: list[tuple[int, int]],
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """A FINN folding config (``{"Defaults": {}, "MVAU_hls_<i>": {"PE", "SIMD"}, ...}``).

    Accepts a folded Dataflow or a folding dict; qmlp layer names are mapped in order to FINN's
    node names after ``step_specialize_layers`` (``MVAU_hls_<i>``), FINN-named entries are kept.
    FINN cannot zero-pad, so PE/SIMD are lowered to the largest divisors of MH/MW when needed."""
    if isinstance(folding, Dataflow):
        entries = [(layer.name, {"PE": layer.folding.pe, "SIMD": layer.folding.simd})
                   for layer in folding.layers if layer.folding is not None]
        if len(entries) != len(folding.layers):
            raise ConfigError(f"dataflow {folding.name!r} is not folded; fold it or pass target_fps")
    else:
        entries = [(k, v) for k, v in folding.items() if k != "Defaults"]
    config: dict[str, Any] = {"Defaults": dict(folding.get("Defaults", {})) if isinstance(folding, Mapping) else {}}
    mvau = 0
    for name, attrs in entries:
        if not isinstance(attrs, Mapping):
            raise ConfigError(f"folding entry {name!r} must be an object of node attributes")
        if _FINN_NODE_NAME.match(name):
            config[name] = dict(attrs)
            continue
        if mvau >= len(dims):
            raise ConfigError(f"folding has more layers than the model's {len(dims)} MatMul/Gemm nodes (at {name!r})")
        mh, mw = dims[mvau]
        entry = {k: v for k, v in attrs.items() if k in _FINN_NODE_ATTRS}
        for key, size in (("PE", mh), ("SIMD", mw)):
            want = int(entry.get(key, 1))
            legal = _largest_divisor(size, want)
            if legal != want:
                log(f"finn: {name} {key}={want} does not divide {size} (FINN cannot pad); using {legal}")
            entry[key] = legal
        config[f"MVAU_hls_{mvau}"] = entry
        mvau += 1
    return config


def finn_build_config(board: Board, *, clock_mhz: float, target_fps: float | None,
                      folding_file: str | None, verify: bool) -> dict[str, Any]:
    """The dataflow_build_config.json document (FINN's field names and enum values)."""
    if board.finn_board is None:
        raise ConfigError(f"board {board.name}: no 'finn_board' in {board.source}; FINN needs one of "
                          f"{', '.join(sorted(FINN_ZYNQ_BOARDS))}")
    config: dict[str, Any] = {
        "output_dir": "output",
        "synth_clk_period_ns": round(1000.0 / clock_mhz, 6),
        "board": board.finn_board,
        "shell_flow_type": "vivado_zynq",
        "generate_outputs": list(OUTPUTS),
        "save_intermediate_models": True,
        "enable_build_pdb_debug": False,  # a batch build must fail, not wait in the debugger
    }
    if target_fps is not None:
        config["target_fps"] = int(target_fps)
    if folding_file is not None:
        config["folding_config_file"] = folding_file
    if verify:
        config.update(verify_steps=list(VERIFY), verify_input_npy="input.npy",
                      verify_expected_output_npy="expected_output.npy")
    return config


def _docker_command(directory: Path) -> str:
    return f"./run-docker.sh build_dataflow {directory.resolve()}"


def write_finn_build(model_path: str | Path, board: Board | str, out_dir: str | Path, *, clock_mhz: float,
                     target_fps: float | None = None, folding: Mapping[str, Any] | Dataflow | str | Path | None = None,
                     run: bool | None = None, log: Callable[[str], None] = print) -> FinnBuild:
    """Write a FINN build directory for the QONNX model at ``model_path``; run FINN when it is
    importable (``run=None``) or when ``run=True``; otherwise print how to run it.

    Exactly one of ``target_fps`` and ``folding`` (a FINN/qmlp folding JSON path, dict, or a folded
    Dataflow) must be given."""
    board = get_board(board) if isinstance(board, str) else board
    model_path = Path(model_path)
    if not clock_mhz > 0:
        raise ConfigError(f"clock {clock_mhz!r} MHz: must be a positive frequency")
    if (target_fps is None) == (folding is None):
        raise ConfigError("FINN build: give exactly one of target_fps or folding")
    if target_fps is not None and not target_fps > 0:
        raise ConfigError(f"target_fps {target_fps!r}: must be positive")
    if not model_path.is_file():
        raise ConfigError(f"model {model_path} does not exist")
    model = _load_clean(model_path)
    out_dir = Path(out_dir)
    work = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        model.save(str(work / "model.onnx"))
        folding_file = None
        if folding is not None:
            if isinstance(folding, (str, Path)):
                try:
                    folding = json.loads(Path(folding).read_text())
                except (OSError, json.JSONDecodeError) as error:
                    raise ConfigError(f"folding {folding}: cannot read it as JSON ({error})") from None
                if not isinstance(folding, dict):
                    raise ConfigError("folding JSON must be an object of node names")
            config = finn_folding(folding, model_layer_dims(model), log)
            (work / "folding_config.json").write_text(json.dumps(config, indent=2) + "\n")
            folding_file = "folding_config.json"
        verify = _write_verification(model, work)
        build = finn_build_config(board, clock_mhz=clock_mhz, target_fps=target_fps,
                                  folding_file=folding_file, verify=verify)
        (work / "dataflow_build_config.json").write_text(json.dumps(build, indent=2) + "\n")
        command = _docker_command(out_dir)
        # The script finds its own folder: `qmlp compile` builds in a temporary sibling and renames it.
        (work / "run_finn.sh").write_text(
            f"#!/bin/sh\n# Generated by qmlp {__version__}. Run from the root of a FINN checkout (needs Docker and\n"
            f"# Vivado/Vitis as FINN documents); outputs go to output/ beside this script.\n"
            f"here=$(cd \"$(dirname \"$0\")\" && pwd)\n./run-docker.sh build_dataflow \"$here\"\n")
        (work / "run_finn.sh").chmod(0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        work.rename(out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    should_run = finn_importable() if run is None else run
    if not should_run:
        log(f"finn: FINN is not importable here; build {out_dir} inside FINN's container, from a FINN checkout:\n"
            f"  {command}")
        return FinnBuild(out_dir, command, False, None)
    from finn.builder.build_dataflow import build_dataflow_directory

    status = build_dataflow_directory(str(out_dir))
    log(f"finn: build_dataflow returned {status}; outputs in {out_dir / 'output'}")
    return FinnBuild(out_dir, command, True, int(status) if status is not None else None)


def _write_verification(model, work: Path) -> bool:
    """input.npy / expected_output.npy from qonnx execute_onnx on one random input (the float
    reference FINN compares its Python-level steps with). False if the input shape is unknown."""
    from qonnx.core.onnx_exec import execute_onnx

    graph_in, graph_out = model.graph.input[0].name, model.graph.output[0].name
    shape = model.get_tensor_shape(graph_in)
    if not shape or any(not isinstance(d, int) or d < 1 for d in shape):
        return False
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = execute_onnx(model, {graph_in: x})[graph_out]
    np.save(work / "input.npy", x)
    np.save(work / "expected_output.npy", y)
    return True

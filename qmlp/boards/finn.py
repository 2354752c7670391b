"""``--backend finn``: hand the same model to FINN (finn-plus 1.6.1, ``make finn``) as a build directory.

The directory holds ``model.onnx`` (the QONNX model after qonnx ``cleanup_model``),
``dataflow_build_config.json`` (a DataflowBuildConfig in finn-plus's field names),
``folding_config.json`` (qmlp's folding in FINN's node names, or none with ``target_fps``),
``input.npy``/``expected_output.npy`` for FINN's Python-level verification, and ``run_finn.sh``:
``finn build -s --batch dataflow_build_config.json model.onnx`` run from the directory (the full
flow: finn-plus's CLI demands $XILINX_VIVADO before it starts). Where a FINN environment exists (:func:`finn_python`), qmlp runs FINN's
Vivado-free steps through ``step_hw_codegen`` in it (``finn_runner.py``, a subprocess: finn-plus's
pins clash with qmlp's) and :func:`finn_reports` reads FINN's estimates.

FINN facts used here were read from finn-plus 1.6.1 (``finn/builder/build_dataflow_config.py``:
DataflowBuildConfig fields and enum values; ``finn/util/basic.py``: ``pynq_part_map``;
``finn/interface/run_finn.py``: the ``finn build`` entry point)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .. import __version__
from ..errors import ConfigError, ModelError, ToolError
from ..ir import Dataflow
from .board import Board, get_board

__all__ = ["FINN_VERSION", "FINN_CONFIG_FIELDS", "FINN_REQUIRED_FIELDS", "FINN_OUTPUT_TYPES", "FINN_SHELL_FLOWS",
           "FINN_VERIFY_STEPS", "FINN_ZYNQ_BOARDS", "FINN_COMMAND", "FinnBuild", "finn_python", "model_layer_dims",
           "finn_folding", "finn_build_config", "write_finn_build", "run_finn", "finn_reports"]

FINN_VERSION = "finn-plus 1.6.1"
# DataflowBuildConfig fields of finn-plus 1.6.1 (it rejects any other key: forbid_extra_keys).
FINN_CONFIG_FIELDS = frozenset({
    "auto_fifo_depths", "auto_fifo_strategy", "board", "config_path", "console_log_level", "cpp_driver_version",
    "debug_fifo", "enable_build_pdb_debug", "enable_exception_snapshots", "enable_hw_debug",
    "enable_instrumentation", "experiments_config_path", "fifo_config_file", "fifosim_comm_mode",
    "fifosim_mpi_args", "fifosim_mpi_hosts", "fifosim_mpi_launcher", "fifosim_mpi_oversubscribe",
    "fifosim_save_waveform", "folding_config_file", "folding_two_pass_relaxation", "fpga_memory", "fpga_part",
    "functional_simulation", "generate_outputs", "hls_clk_period_ns", "infer_shuffle_skip_first",
    "inject_steps_after", "inject_steps_before", "instrumentation_avg_n", "instrumentation_no_dma",
    "large_fifo_mem_style", "layouts_config_file", "loop_body_hierarchy", "loop_body_range",
    "max_multithreshold_bit_width", "minimize_bit_width", "mlo", "model_path", "multi_dnn_config_path",
    "mvau_wwidth_max", "output_dir", "partitioning_configuration", "requant_bitwidth_threshold",
    "save_intermediate_models", "shell_flow_type", "signature", "specialize_layers_config_file",
    "standalone_thresholds", "start_step", "steps", "stitched_ip_gen_dcp", "stop_step", "synth_clk_period_ns",
    "target_fps", "validation_dataset", "verbose", "verification_atol", "verification_mean_atol",
    "verification_mean_rtol", "verification_rtol", "verify_expected_output_npy", "verify_input_npy",
    "verify_nodewise_report", "verify_rtlsim_behavioral", "verify_save_full_context",
    "verify_save_rtlsim_waveforms", "verify_steps", "vitis_floorplan_file", "vitis_iodma_intf_max_width",
    "vitis_opt_strategy", "vitis_platform", "vivado_power_simulate_activity", "vivado_power_simulation_type",
})
FINN_REQUIRED_FIELDS = ("output_dir", "synth_clk_period_ns", "generate_outputs")
# DataflowOutputType / ShellFlowType / VerificationStepType values (the JSON form of the enums).
FINN_OUTPUT_TYPES = frozenset({"stitched_ip", "estimate_reports", "out_of_context_synth", "rtlsim_performance",
                               "bitfile", "pynq_driver", "cpp_driver", "deployment_package"})
FINN_SHELL_FLOWS = frozenset({"vivado_zynq", "vitis_alveo"})
FINN_VERIFY_STEPS = frozenset({"finn_onnx_python", "initial_python", "streamlined_python", "folded_hls_cppsim",
                               "node_by_node_rtlsim", "stitched_ip_rtlsim", "passes_frontend"})
# The whole flow (needs Vivado), run from the build directory; -s: no dependency updates (no git
# clones), --batch: no setup wizard on a first run.
FINN_ARGS = "build -s --batch dataflow_build_config.json model.onnx"
FINN_COMMAND = f"finn {FINN_ARGS}"
RUNNER = Path(__file__).with_name("finn_runner.py")
RUN_TIMEOUT_S = 1800  # FINN's Vivado-free steps take seconds per MLP; bound a stuck run
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
    command: str  # the full FINN flow (needs Vivado), run from ``directory``
    ran: bool  # FINN's Vivado-free steps ran here
    status: int | None  # the runner's exit status (0 = success) when it ran
    error: str | None = None  # FINN's failing step and message


def finn_python() -> str | None:
    """The Python interpreter of a FINN environment: $QMLP_FINN_PYTHON, else ``.venv-finn`` in the
    current directory or in the qmlp checkout (``make finn``), else this Python if it imports
    finn-plus's builder; None if there is none."""
    explicit = os.environ.get("QMLP_FINN_PYTHON")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root / ".venv-finn" / "bin" / "python"
        if (root / ".venv-finn" / ".installed").is_file() and candidate.is_file():
            return str(candidate)
    try:
        import importlib.util

        if importlib.util.find_spec("finn.builder.build_dataflow_steps") is not None:
            return sys.executable
    except (ImportError, ValueError):  # the PyPI 'finn' placeholder has no finn.builder
        pass
    return None


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


def _divisor_at_least(n: int, want: int) -> int:
    """The smallest divisor of ``n`` that is >= ``want`` (``n`` itself if ``want`` exceeds it)."""
    return min(d for d in range(min(max(1, want), n), n + 1) if n % d == 0)


def finn_folding(folding: Mapping[str, Any] | Dataflow, dims: list[tuple[int, int]],
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """A FINN folding config (``{"Defaults": {}, "MVAU_hls_<i>": {"PE", "SIMD"}, ...}``).

    Accepts a folded Dataflow or a folding dict; qmlp layer names are mapped in order to FINN's
    node names after ``step_specialize_layers`` (``MVAU_hls_<i>``), FINN-named entries are kept.
    FINN folds by exact divisors only (no zero padding), so a PE/SIMD that does not divide MH/MW is
    raised to the next divisor: never slower than the folding asked for."""
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
            legal = _divisor_at_least(size, want)
            if legal != want:
                log(f"finn: {name} {key}={want} does not divide {size} (FINN folds by exact divisors); "
                    f"using {legal}, the next divisor up")
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
        "console_log_level": "ERROR",
    }
    if target_fps is not None:
        config["target_fps"] = math.ceil(target_fps)  # FINN takes an int; never below the request
    if folding_file is not None:
        config["folding_config_file"] = folding_file
    if verify:
        config.update(verify_steps=list(VERIFY), verify_input_npy="input.npy",
                      verify_expected_output_npy="expected_output.npy")
    return config


def write_finn_build(model_path: str | Path, board: Board | str, out_dir: str | Path, *, clock_mhz: float,
                     target_fps: float | None = None, folding: Mapping[str, Any] | Dataflow | str | Path | None = None,
                     run: bool | None = None, log: Callable[[str], None] = print) -> FinnBuild:
    """Write a FINN build directory for the QONNX model at ``model_path``; run FINN's Vivado-free
    steps where a FINN environment exists (``run=None``) or when ``run=True``, else say how to get one.

    Exactly one of ``target_fps`` and ``folding`` (a FINN/qmlp folding JSON path, dict, or a folded
    Dataflow) must be given. The directory is complete before FINN runs; a FINN failure is
    reported in the returned FinnBuild, not raised (qmlp's own build does not depend on FINN)."""
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
        # The script finds its own folder: `qmlp compile` builds in a temporary sibling and renames it.
        (work / "run_finn.sh").write_text(
            f"#!/bin/sh\n# Generated by qmlp {__version__}: FINN's whole flow for this folder with {FINN_VERSION}\n"
            f"# (`make finn` in the qmlp checkout installs it; bitfiles need Vivado). Outputs go to output/.\n"
            f"# FINN=/path/to/.venv-finn/bin/finn picks one that is not on PATH.\n"
            f"cd \"$(dirname \"$0\")\" && exec \"${{FINN:-finn}}\" {FINN_ARGS}\n")
        (work / "run_finn.sh").chmod(0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        work.rename(out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if run is False:
        return FinnBuild(out_dir, FINN_COMMAND, False, None)
    python = finn_python()
    if python is None and run:
        raise ConfigError("FINN build: run=True but no FINN environment; `make finn` builds .venv-finn")
    if python is None:
        log("finn: no FINN environment here; `make finn` in the qmlp checkout builds .venv-finn (finn-plus 1.6.1)")
        return FinnBuild(out_dir, FINN_COMMAND, False, None)
    return run_finn(out_dir, python, log=log)


def _command(python: str) -> str:
    """FINN's whole-flow command with the FINN environment's own ``finn`` where there is one."""
    finn = Path(python).parent / "finn"
    return f"{finn} {FINN_ARGS}" if finn.is_file() else FINN_COMMAND


def run_finn(directory: Path, python: str, *, log: Callable[[str], None] = print,
             crosscheck: tuple[Path, Path] | None = None, skip_build: bool = False) -> FinnBuild:
    """Run finn_runner.py with the FINN environment's ``python`` on a build directory written by
    write_finn_build (FINN's steps through step_hw_codegen, optionally the cross-check); its
    console output goes to ``output/finn_runner.log``."""
    command = [python, "-P", str(RUNNER), str(directory.resolve())]  # -P: not qmlp/boards/finn.py as `finn`
    if crosscheck is not None:
        command += ["--crosscheck", str(crosscheck[0].resolve()), str(crosscheck[1].resolve())]
    if skip_build:
        command.append("--skip-build")
    (directory / "output").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        done = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log(f"finn: FINN did not finish in {RUN_TIMEOUT_S} s; see {directory / 'output'}")
        return FinnBuild(directory, _command(python), True, None, f"timeout after {RUN_TIMEOUT_S} s")
    except OSError as error:
        raise ToolError(f"FINN environment {python}: cannot start it ({error}); rebuild it with `make finn`") from None
    (directory / "output" / "finn_runner.log").write_text(done.stdout + done.stderr)
    error = None
    report = directory / "output" / "qmlp_finn_run.json"
    if report.is_file():
        error = json.loads(report.read_text()).get("error")
    if done.returncode and error is None:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        error = lines[-1] if lines else f"exit status {done.returncode}"
    log(f"finn: FINN {'failed: ' + error if error else 'ran through step_hw_codegen'}; outputs in {directory / 'output'}")
    return FinnBuild(directory, _command(python), True, done.returncode, error)


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

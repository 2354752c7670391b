"""A compiled output folder (OUT) as one value: ``Build`` spells every path of the folder and is
the only loader of it (the CLI, verify, profile and the Python API open OUT through it).

The layout (docs/cli.md, "qmlp compile"): ``dataflow.json`` (the folded IR), ``rtl/``, ``ip/``,
``vivado/``, ``driver/``, ``deploy/``, ``report/`` and ``final_hw_config.json``, plus
``model.onnx`` when compiled from an ONNX model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .errors import ConfigError
from .interface import TOP_MODULE
from .ir import Dataflow, load
from .untrusted import all_finite, finite_floats

if TYPE_CHECKING:  # pragma: no cover
    from .api import Model
    from .sim.verify_rtl import VerifyReport

__all__ = ["Build", "Performance", "Reports", "DATAFLOW", "float_inputs"]

DATAFLOW = "dataflow.json"  # the one spelling of the IR's file name inside OUT
TOP_VERILOG = f"{TOP_MODULE}.v"  # and of the generated top level inside OUT/rtl


def float_inputs(df: Dataflow, x: np.ndarray, where: str) -> np.ndarray:
    """Float inputs handed to the Python API, checked like ``--input``: shaped ``(batch, *input
    shape)`` with batch >= 1, then qmlp's one rule for non-finite numbers (NaN, inf, beyond float32:
    refused, ``untrusted.finite_floats``). Returns float32."""
    x = np.asarray(x)
    if x.ndim != len(df.input_shape) + 1 or x.shape[1:] != tuple(df.input_shape) or x.shape[0] < 1:
        raise ConfigError(f"{where}: input shape {x.shape} does not match (batch, {', '.join(map(str, df.input_shape))})")
    if x.dtype == np.float32 and x.flags.c_contiguous and all_finite(x):
        return x  # the common case in one pass, no copy (predict's hot path)
    return finite_floats(x, f"{where}: x")


@dataclass(frozen=True)
class Performance:
    """``report/estimate_network_performance.json``: the analytical cycle model's figures."""

    latency_cycles: int
    ii_cycles: float
    throughput_fps: float
    clock_mhz: float
    bottleneck: str
    layer_cycles: dict[str, int]


@dataclass(frozen=True)
class Reports:
    """The reports of a build (None where not written yet): the estimate's performance and
    per-layer resources, Yosys counts (``--synth``) and the last ``qmlp profile`` report."""

    performance: Performance | None
    layer_resources: dict[str, dict[str, Any]] | None
    synth: dict[str, Any] | None
    profile: dict[str, Any] | None


def _json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: unreadable report ({error}); recompile") from None


@dataclass(frozen=True, eq=False)
class Build:
    """An OUT folder written by ``qmlp compile`` and its folded Dataflow. Open with ``Build.open``."""

    root: Path
    dataflow: Dataflow

    # --- the layout: every path of OUT, spelled once ------------------------------------------
    @property
    def dataflow_path(self) -> Path:
        return self.root / DATAFLOW

    @property
    def model_path(self) -> Path:
        """The source ONNX model (absent when compiled from a dataflow.json)."""
        return self.root / "model.onnx"

    @property
    def rtl_dir(self) -> Path:
        return self.root / "rtl"

    @property
    def top_verilog(self) -> Path:
        return self.rtl_dir / TOP_VERILOG

    @property
    def ip_dir(self) -> Path:
        return self.root / "ip"

    @property
    def vivado_dir(self) -> Path:
        return self.root / "vivado"

    @property
    def driver_dir(self) -> Path:
        return self.root / "driver"

    @property
    def deploy_dir(self) -> Path:
        return self.root / "deploy"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def hw_config_path(self) -> Path:
        return self.root / "final_hw_config.json"

    def report(self, name: str) -> Path:
        """``report/<name>``: estimate_network_performance.json, estimate_layer_resources.json,
        synth_resources.json, summary.md, profile.json, ..."""
        return self.report_dir / name

    # --- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, folded: bool = True) -> "Build":
        """Open OUT. Raises ConfigError naming the folder when it is not a compiled output
        folder, its IR is unreadable, or (``folded``) the IR carries no folding."""
        root = Path(path)
        ir_path = root / DATAFLOW
        if not root.is_dir() or not ir_path.is_file():
            raise ConfigError(f"{root}: no {DATAFLOW}; pass the output folder of 'qmlp compile'")
        df = load(ir_path)  # untrusted: InputError naming the file and the field
        if folded and (df.stream is None or df.clock_mhz is None or any(l.folding is None for l in df.layers)):
            raise ConfigError(f"{ir_path}: the dataflow is not folded (no stream format / clock); "
                              "recompile with 'qmlp compile'")
        return cls(root=root, dataflow=df)

    def require_rtl(self) -> Path:
        """``rtl/`` (ConfigError when qmlp_top.v is missing)."""
        if not self.top_verilog.is_file():
            raise ConfigError(f"{self.rtl_dir}: no {TOP_VERILOG}; re-run 'qmlp compile' to generate the RTL")
        return self.rtl_dir

    # --- what a build can do -------------------------------------------------------------------
    @property
    def model(self) -> "Model":
        """The design as a Model (bit-accurate predictions, tracing)."""
        from .api import Model

        return Model(dataflow=self.dataflow, path=self.model_path if self.model_path.is_file() else self.dataflow_path)

    @property
    def reports(self) -> Reports:
        perf = _json(self.report("estimate_network_performance.json"))
        performance = None if perf is None else Performance(
            latency_cycles=int(perf["latency_cycles"]), ii_cycles=float(perf["ii_cycles"]),
            throughput_fps=float(perf["estimated_throughput_fps"]), clock_mhz=float(perf["clock_mhz"]),
            bottleneck=str(perf["max_cycles_node_name"]), layer_cycles=dict(perf["layer_cycles"]))
        return Reports(performance=performance, layer_resources=_json(self.report("estimate_layer_resources.json")),
                       synth=_json(self.report("synth_resources.json")), profile=_json(self.report("profile.json")))

    def predict(self, x: np.ndarray, *, level: str = "ir") -> np.ndarray:
        """Float inputs ``(batch, *input shape)`` -> float outputs like ``execute_onnx``:
        ``level="ir"`` through the bit-accurate simulator, ``"rtl"`` through the emitted Verilog
        under Verilator (a design compiled with argmax returns class indices at ``rtl``)."""
        from .sim.bitaccurate import dequantize_output, quantize_input, simulate_outputs

        df = self.dataflow
        x = float_inputs(df, x, f"build {self.root}")
        if level == "ir":
            return simulate_outputs(df, x)
        if level != "rtl":
            raise ConfigError(f"level {level!r}: choose 'ir' or 'rtl'")
        from .sim.rtl import simulate_rtl

        q = quantize_input(df.input, x.reshape(len(x), -1))
        outputs = np.asarray(simulate_rtl(df, self.require_rtl(), q, backpressure=False, seed=0).outputs, dtype=np.int64)
        if df.argmax:
            return outputs.reshape(len(x))
        return dequantize_output(df, outputs).reshape((len(x), *df.output_shape))

    def verify(self, samples: int = 1000, *, seed: int = 0,
               log: Callable[[str], None] | None = None) -> "VerifyReport":
        """QONNX reference (when OUT has model.onnx) == simulator == RTL; ``report.ok``."""
        from .sim.verify_rtl import verify_compiled

        return verify_compiled(self, samples=samples, seed=seed, log=log)

    def profile(self, target: str = "sim", *, log: Callable[[str], None] | None = None,
                **options: Any) -> dict[str, Any]:
        """``qmlp profile`` (options as ``qmlp.profile.run.ProfileOptions``); returns profile.json."""
        from .profile.run import ProfileOptions, profile

        return profile(ProfileOptions(out_dir=self.root, target=target, **options), log=log or (lambda line: None))

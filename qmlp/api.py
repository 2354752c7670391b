"""qmlp's Python API (docs/api.md): ``load`` a model, ``predict`` / ``trace`` it, ``compile`` it
into a ``Build``. The CLI commands are thin layers over these functions.

    import qmlp
    model = qmlp.load("examples/digits_ternary.onnx")
    y = model.predict(x)                       # bit-accurate, like qonnx execute_onnx
    build = qmlp.compile(model, board="zcu104", target_fps="100k", out="build/digits")
    build.verify().ok                          # QONNX == simulator == RTL
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .build import DATAFLOW, Build, float_inputs
from .errors import ConfigError
from .ir import Dataflow
from .sim.bitaccurate import predict_checked

if TYPE_CHECKING:  # pragma: no cover
    from .sim.bitaccurate import SimResult
    from .sim.reference import Agreement
    from .sim.trace import Trace

__all__ = ["Model", "load", "compile", "parse_rate"]

_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)\s*([kKmMgG]?)\s*$")
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


def parse_rate(value: str | float | int) -> float | str:
    """A target rate in inferences/s: a positive number, a string like ``"10k"``, ``"1.5M"``,
    ``"2G"``, ``"1e6"``, or ``"max"`` (fully parallel). ConfigError otherwise."""
    if isinstance(value, str):
        if value.strip() == "max":
            return "max"
        match = _RATE.match(value)
        if match is None:
            raise ConfigError(f"target rate {value!r}: not a number of inferences/s; write e.g. 10k, 1.5M, 1e6 or max")
        rate = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        rate = float(value)
    else:
        raise ConfigError(f"target rate {value!r}: not a number of inferences/s; write e.g. 10k, 1.5M, 1e6 or max")
    if not (rate > 0 and np.isfinite(rate)):
        raise ConfigError(f"target rate {value!r}: must be a positive number of inferences/s")
    return rate


@dataclass(frozen=True, eq=False)
class Model:
    """A lowered model: the Dataflow IR plus where it came from (``path``: the ONNX model or
    dataflow.json; None for an IR built in memory)."""

    dataflow: Dataflow
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.dataflow.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.dataflow.input_shape)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.dataflow.output_shape)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Float inputs ``(batch, *input_shape)`` -> float32 outputs ``(batch, *output_shape)``,
        bit-accurate (the values qonnx ``execute_onnx`` gives)."""
        return predict_checked(self.dataflow, self._inputs(x), finite=True)

    def simulate(self, x: np.ndarray) -> "SimResult":
        """Every integer stage: quantized inputs, per-layer accumulators and output values."""
        from .sim.bitaccurate import simulate

        return simulate(self.dataflow, self._inputs(x))

    def trace(self, x: np.ndarray) -> "Trace":
        """Ranges, clipping, unused codes and dead channels on ``x`` (``qmlp trace``);
        ``print(model.trace(x).summary())``."""
        from .sim.trace import trace

        return trace(self.dataflow, self._inputs(x))

    def info(self) -> dict[str, Any]:
        """Layers, data types, sparsity and MACs (``qmlp info --json``)."""
        from .commands.info import summarize

        return summarize(self.dataflow)

    def verify(self, samples: int = 1000, *, seed: int = 0) -> "Agreement":
        """QONNX ``execute_onnx`` on the source model vs the simulator (``qmlp verify MODEL``)."""
        if self.path is None or self.path.suffix != ".onnx":
            raise ConfigError(f"model {self.name}: verify needs the ONNX model it was loaded from")
        from .commands.verify import verify_model

        return verify_model(self.path, samples, seed)

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        return float_inputs(self.dataflow, x, f"model {self.name}")


def load(path: str | Path) -> Model:
    """A QONNX model (.onnx), a lowered dataflow.json, or a compiled OUT folder -> Model."""
    path = Path(path)
    if path.is_dir():
        return Build.open(path, folded=False).model
    if path.suffix == ".json":
        from .ir import load as load_ir

        if not path.is_file():
            raise ConfigError(f"model {path} does not exist")
        return Model(dataflow=load_ir(path), path=path)  # untrusted: InputError naming the file and field
    from .frontend import import_model

    return Model(dataflow=import_model(path), path=path)


def compile(model: Model | str | Path | None = None, *, board: str = "zcu104",  # noqa: A001
            out: str | Path | None = None, target_fps: str | float | None = None, clock_mhz: float | None = None,
            folding: str | Path | None = None, argmax: bool = False, synth: bool = False, backend: str = "native",
            stop_after: str | None = None, start_from: str | Path | None = None,
            allow_overfit: bool = False, force: bool = False, log: Callable[[str], None] | None = None) -> Build:
    """Compile ``model`` (a Model or a path to .onnx / dataflow.json) for ``board`` into ``out``
    (default ``build/<model name>``) exactly as ``qmlp compile`` does; returns the Build.
    ``target_fps``: inferences/s as a number or ``"10k"``, ``"1.5M"``, ``"max"`` (None: the
    default rule, docs/cli.md); exclusive with ``folding`` (a final_hw_config.json).

    Every step's IR is saved as ``OUT/intermediate/<NN>_<step>.json``. ``stop_after`` ends the
    build after that step (``import``, ``fold``, ``estimate``, ``write-ir``, ``rtl``, ...); the
    folder then holds what the steps so far wrote. ``start_from`` (an OUT folder) continues such
    a build with its remaining steps and its saved options; the other arguments except ``out``,
    ``stop_after`` and ``log`` are ignored then. ``allow_overfit`` builds a design whose
    calibrated estimate exceeds the board's part (FitError otherwise). ``force`` replaces a
    non-empty ``out`` that qmlp did not write (never one holding the model)."""
    from . import pipeline_steps
    from .hwgen.pipeline import CompileOptions, run_build

    with tempfile.TemporaryDirectory(prefix="qmlp-api-") as scratch:
        if start_from is not None:
            options, steps = pipeline_steps.resume(Path(start_from), Path(out) if out is not None else None)
        elif model is None:
            raise ConfigError("compile needs a model (or start_from, an OUT folder of a stopped build)")
        else:
            source = _source_path(model, Path(scratch))
            default_out = Path("build") / (model.name if isinstance(model, Model) else source.stem)
            options = CompileOptions(model=source, board=board, out=Path(out) if out is not None else default_out,
                                     clock_mhz=clock_mhz, target_fps=None if target_fps is None else parse_rate(target_fps),
                                     folding=None if folding is None else Path(folding), argmax=argmax, synth=synth,
                                     backend=backend, allow_overfit=allow_overfit, force=force)
            steps = None
        state = run_build(options, log=log or (lambda line: None),
                          steps=pipeline_steps.recorded(options, steps, stop_after))
    if not (state.work_dir / DATAFLOW).is_file():  # stopped before "write-ir"
        return Build(root=state.work_dir, dataflow=state.df)
    return Build.open(state.work_dir, folded=False)


def _source_path(model: Model | str | Path, scratch: Path) -> Path:
    """The file the compile pipeline reads: the model's own file, or its IR saved to ``scratch``."""
    if not isinstance(model, Model):
        return Path(model)
    if model.path is not None and model.path.is_file() and model.path.suffix in (".onnx", ".json"):
        return model.path
    from .ir import save

    path = scratch / f"{model.name}.json"
    save(model.dataflow, path)
    return path

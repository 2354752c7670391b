"""What one Ray task does: the existing qmlp stages, called in order on one configuration.

* ``train_rung``: train only (successive halving), return the best validation accuracy.
* ``run_trial``: train (``qmlp train``'s pipeline) -> export -> lower -> check the simulator
  against ``execute_onnx`` (``qmlp verify``) -> accuracy of the bit-accurate simulator on the
  test split -> ``estimate_designs`` at every target.
* ``estimate_designs``: fold and estimate (``qmlp compile``'s first steps) at each target, and
  the power model's energy per inference.
* ``check_design``: compile the whole output folder, Yosys, the RTL check; returns the folder as
  a tar archive, so the driver can keep it even when the task ran on another machine.

Every function returns plain rows for the results store and never raises for a trial's own
failure: the reason goes into the row (``status`` ``failed``) and the sweep goes on. All files
are written under a temporary folder of the worker; what the driver keeps travels back as bytes.
"""

from __future__ import annotations

import io
import json
import math
import os
import socket
import tarfile
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..errors import QmlpError
from .spec import FrontOptions, Target, TrialConfig

__all__ = ["train_rung", "run_trial", "estimate_designs", "estimate_model", "check_design", "one_line", "TRIAL_FILES"]

# files of a trial that travel back to the driver: name in the worker -> name in OUT/trials/<key>/
TRIAL_FILES = {"model.onnx": "model.onnx", "model.json": "train.json", "model.png": "train.png"}


def one_line(error: BaseException) -> str:
    """A failure reason for the store: the message of a QmlpError, else the exception's type
    and message (a bug or a tool crash) with the innermost qmlp frame, on one line."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, QmlpError):
        return text[:500]
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "qmlp" in f.filename]
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}: {text}{where}"[:500]


@contextmanager
def _stage(row: dict[str, Any], name: str) -> Iterator[None]:
    """Run one stage; on failure mark ``row`` failed with 'stage: reason' and stop the trial."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - every failure of a trial is data for the store
        row.update(status="failed", reason=f"{name}: {one_line(error)}")
        raise _Stop from None


class _Stop(Exception):
    """A stage failed and recorded why."""


def _train_options(cfg: TrialConfig, output: Path):
    from ..quantize.pipeline import TrainOptions

    return TrainOptions(
        dataset=cfg.dataset, output=output, weights=cfg.weights, acts=cfg.acts, input_bits=cfg.input_bits,
        hidden=cfg.hidden, epochs=cfg.epochs, float_epochs=cfg.float_epochs, batch_size=cfg.batch_size, lr=cfg.lr,
        patience=cfg.patience, seed=cfg.seed, data=Path(cfg.data) if cfg.data else None,
        can_duration=cfg.can_duration, can_stride=cfg.can_stride, threads=1, vectors=0, progress=False,
        command=f"qmlp explore trial {cfg.key}")


def _where() -> dict[str, Any]:
    """Which machine and Ray node ran this (several nodes may share a host name)."""
    node = None
    try:
        import ray
        if ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()[:12]
    except ImportError:  # run outside Ray (a direct call)
        pass
    return {"host": socket.gethostname(), "node": node, "pid": os.getpid()}


def _best_val(report: dict[str, Any]) -> float:
    return max((epoch["val_acc"] for epoch in report["history"]), default=0.0)


def train_rung(cfg: TrialConfig) -> dict[str, Any]:
    """Train ``cfg`` (its epochs are the rung's) and report the best validation accuracy."""
    from ..quantize.pipeline import run_training

    row: dict[str, Any] = {"key": cfg.key, "epochs": cfg.epochs, "status": "done", "reason": "",
                           "val_accuracy": None, **_where()}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="qmlp-rung-") as tmp:
        try:
            with _stage(row, "train"):
                outcome = run_training(_train_options(cfg, Path(tmp) / "model.onnx"), log=lambda line: None)
                row["val_accuracy"] = _best_val(outcome.report)
        except _Stop:
            pass
    row["seconds"] = round(time.monotonic() - start, 2)
    return row


def _fits(lut: int, ff: int, bram36: float, dsp: int, board) -> str:  # noqa: ANN001 - a qmlp.boards.Board
    """'' when the estimate fits the board's part, else the reason."""
    r = board.resources
    for name, used, available in (("LUT", lut, r.lut), ("FF", ff, r.ff), ("BRAM36", bram36, r.bram36),
                                  ("DSP", dsp, r.dsp)):
        if used > available:
            return f"does not fit {board.name}: ~{used:,.0f} {name} estimated, the part has {available:,}"
    return ""


def _energy(report_dir: Path, board, clock_mhz: float, ii_cycles: float) -> tuple[float, float, float]:  # noqa: ANN001
    """(total W, dynamic J, total J) per inference from the power model, with the resources read
    from the estimate report the way ``qmlp profile`` reads them and XPE's default toggle rate."""
    from ..profile.power_model import DEFAULT_TOGGLE, Activity, estimate_power, model_for_part, resources_from_report

    path = report_dir / "estimate_layer_resources.json"
    resources = resources_from_report(json.loads(path.read_text()), source="estimate", path=path.name)
    activity = Activity(DEFAULT_TOGGLE, DEFAULT_TOGGLE, 1.0, 1.0, source=f"XPE default {DEFAULT_TOGGLE:g} (assumption)")
    power = estimate_power(resources, activity, clock_mhz=clock_mhz, ii_cycles=max(1, math.ceil(ii_cycles)),
                           model=model_for_part(board.part))
    return power.total_w, power.e_dyn_j, power.e_total_j


def estimate_designs(model: Path, trial_key: str, targets: tuple[Target, ...]) -> list[dict[str, Any]]:
    """Fold and estimate ``model`` at each target with the compile pipeline's own steps (board,
    import, fold, estimate); one design row each, ``failed`` with the reason where it cannot be
    folded or does not fit the board."""
    from ..hwgen.pipeline import CompileOptions, build_steps, run_build

    rows = []
    for target in targets:
        row: dict[str, Any] = {"key": target.key(trial_key), "trial": trial_key, "board": target.board,
                               "target_fps": str(target.fps), "clock_mhz": target.clock_mhz, "status": "done",
                               "reason": ""}
        with tempfile.TemporaryDirectory(prefix="qmlp-est-") as tmp:
            options = CompileOptions(model=model, board=target.board, out=Path(tmp) / "out",
                                     clock_mhz=target.clock_mhz, target_fps=target.fps,
                                     allow_overfit=True)  # a design that does not fit is a row with its reason
            steps = [step for step in build_steps(options) if step[0] in ("board", "import", "fold", "estimate")]
            try:
                with _stage(row, "estimate"):
                    state = run_build(options, log=lambda line: None, steps=steps)
                    est, board = state.estimate, state.board
                    watts, e_dyn, e_total = _energy(state.work_dir / "report", board, est.clock_mhz, est.ii_cycles)
                    row.update(
                        clock_mhz=est.clock_mhz, lut=est.lut, ff=est.ff, bram36=est.bram36, dsp=est.dsp,
                        ii_cycles=est.ii_cycles, fps=est.throughput_fps, latency_cycles=est.latency_cycles,
                        latency_ns=est.latency_ns, power_w=watts, energy_j=e_dyn, energy_total_j=e_total,
                        folding=", ".join(f"{l.pe}x{l.simd}" for l in est.layers))
                    reason = _fits(est.lut, est.ff, est.bram36, est.dsp, board)
                    if reason:
                        row.update(status="failed", reason=reason)
            except _Stop:
                pass
        rows.append(row)
    return rows


def estimate_model(model_bytes: bytes, trial_key: str, targets: tuple[Target, ...]) -> list[dict[str, Any]]:
    """``estimate_designs`` for a stored model (a finished trial meeting targets added later)."""
    with tempfile.TemporaryDirectory(prefix="qmlp-est-") as tmp:
        model = Path(tmp) / "model.onnx"
        model.write_bytes(model_bytes)
        return estimate_designs(model, trial_key, targets)


def _hardware_accuracy(cfg: TrialConfig, model: Path) -> float:
    """Accuracy of the bit-accurate simulator (what the RTL computes) on the whole test split."""
    import numpy as np

    from ..frontend import import_model
    from ..quantize.pipeline import training_data
    from ..sim.bitaccurate import simulate_outputs

    data = training_data(_train_options(cfg, model))
    df = import_model(model)
    scores = simulate_outputs(df, data.x_test.reshape((len(data.y_test), *df.input_shape)))
    return float(np.mean(np.argmax(scores.reshape(len(data.y_test), -1), axis=1) == data.y_test))


def run_trial(cfg: TrialConfig, targets: tuple[Target, ...], verify_samples: int) -> dict[str, Any]:
    """One trial end to end. Returns ``{"trial": row, "designs": rows, "files": {name: bytes}}``."""
    from ..commands.verify import verify_model
    from ..quantize.pipeline import run_training

    row: dict[str, Any] = {"key": cfg.key, "status": "done", "reason": "", **_where()}
    designs: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="qmlp-trial-") as tmp:
        model = Path(tmp) / "model.onnx"
        try:
            with _stage(row, "train"):
                outcome = run_training(_train_options(cfg, model), log=lambda line: None)
                row.update(train_accuracy=outcome.accuracy, float_accuracy=outcome.float_accuracy,
                           val_accuracy=_best_val(outcome.report), train_seconds=outcome.report["seconds"])
                files = {TRIAL_FILES[p.name]: p.read_bytes() for p in outcome.files if p.name in TRIAL_FILES}
            with _stage(row, "verify"):
                agreement = verify_model(model, verify_samples, cfg.seed)
                row.update(verify_ok=bool(agreement.ok), verify_samples=agreement.samples,
                           verify_mismatches=sum(l.unexplained for l in agreement.layers) + agreement.input_mismatches)
                if not agreement.ok:
                    raise QmlpError(f"simulator disagrees with execute_onnx on {row['verify_mismatches']} values")
            with _stage(row, "accuracy"):
                row["accuracy"] = _hardware_accuracy(cfg, model)
            designs = estimate_designs(model, cfg.key, targets)
        except _Stop:
            pass
    row["seconds"] = round(time.monotonic() - start, 2)
    return {"trial": row, "designs": designs, "files": files}


def _tar(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname=".")
    return buffer.getvalue()


def check_design(model_bytes: bytes, target: Target, design_key: str, front: FrontOptions) -> dict[str, Any]:
    """Compile the full output folder for ``target``, then (as ``front`` asks) Yosys and the RTL
    check (``qmlp verify OUT``). Returns ``{"row": updates for the design row, "tar": bytes}``;
    ``tar`` is empty when the compile itself failed."""
    from ..hwgen.pipeline import CompileOptions, run_build

    row: dict[str, Any] = {"key": design_key, "check_status": "done", "check_reason": ""}
    archive = b""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="qmlp-check-") as tmp:
        model = Path(tmp) / "model.onnx"
        model.write_bytes(model_bytes)
        out = Path(tmp) / "design"
        stage_row: dict[str, Any] = {}
        try:
            with _stage(stage_row, "compile"):
                state = run_build(CompileOptions(model=model, board=target.board, out=out, clock_mhz=target.clock_mhz,
                                                 target_fps=target.fps), log=lambda line: None)
            if front.synth:
                with _stage(stage_row, "synth"):
                    row.update(_synth(out, state.board, state.df.clock_mhz, front.synth_timeout_s))
            if front.rtl:
                with _stage(stage_row, "rtl"):
                    row.update(_rtl_check(out, front.samples))
        except _Stop:
            row.update(check_status="failed", check_reason=stage_row["reason"])
        if out.is_dir():
            archive = _tar(out)
    row["check_seconds"] = round(time.monotonic() - start, 2)
    return {"row": row, "tar": archive}


def _synth(out: Path, board, clock_mhz: float, timeout: float) -> dict[str, Any]:  # noqa: ANN001
    """Yosys on OUT/rtl (as ``qmlp compile --synth``), report into OUT/report; the fit check last
    so a design too large for the board still has its counts recorded."""
    from ..hwgen.synth import FitError, check_fit, synthesize, write_synth_report

    result = synthesize(out / "rtl", family=board.family, timeout=timeout)
    write_synth_report(result, out / "report" / "synth_resources.json", clock_mhz=clock_mhz, part=board.part)
    row = {"synth_lut": result.lut_sites, "synth_ff": result.ff,
           "synth_bram36": result.bram36 + result.bram18 / 2, "synth_dsp": result.dsp,
           "fmax_mhz": result.fmax_estimate_mhz, "synth_seconds": result.seconds}
    try:
        check_fit(result, board)
    except FitError as error:
        row.update(check_status="failed", check_reason=f"synth: {error}")
    return row


def _rtl_check(out: Path, samples: int) -> dict[str, Any]:
    """``qmlp verify OUT``: reference == simulator == RTL (Verilator), and measured timing."""
    from ..sim.verify_rtl import verify_compiled

    report = verify_compiled(out, samples=samples, log=None)
    row = {"rtl_ok": bool(report.ok), "rtl_mismatches": report.rtl_mismatches, "rtl_samples": samples,
           "rtl_latency_cycles": report.rtl_latency, "rtl_ii": report.rtl_ii}
    if not report.ok:
        row.update(check_status="failed", check_reason=f"rtl: {report.rtl_mismatches} of {samples} vectors differ")
    return row

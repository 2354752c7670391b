"""The profiling flow behind ``qmlp profile``: measure, model or estimate, then write the report.

Steps, top to bottom: load the compiled OUT -> connect to the target (``sim`` = the virtual board,
an in-process agent running the RTL under Verilator; ``tcp://`` = a board agent) -> fabric latency
(batch-1 calls, cycles) -> accelerator call (modelled on the virtual board, timed by the agent on a
board) -> end to end (host driver work timed here + the call) -> throughput at batch N -> energy
(rail trace on a board, power-model estimate otherwise) -> files in ``OUT/report``.

Every output file is written to a scratch folder first and moved into ``OUT/report`` only when
everything succeeded, so a failed run leaves no half-written report behind.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .. import __version__
from ..errors import ConfigError
from ..build import DATAFLOW
from ..ir import Dataflow
from ..packing import pack, unpack
from ..sim.bitaccurate import dequantize_output, quantize_input
from ..untrusted import quote_name
from . import report
from .energy import MIN_PHASE_SECONDS, RailTrace, energy_per_inference, phase_stats, read_rail_csv, write_rail_csv
from .latency import MIN_RUNS, DmaModel, cycles_to_seconds, latency_stats, model_call, throughput, time_calls
from .plots import latency_histogram, power_trace_plot
from .power_model import DEFAULT_TOGGLE, Activity, estimate_power, model_for_part, resources_from_report

__all__ = ["ProfileOptions", "profile", "load_out", "host_steps", "estimate_cycles"]


@dataclass(frozen=True)
class ProfileOptions:
    out_dir: Path
    target: str = "sim"
    power: bool = False
    runs: int = MIN_RUNS
    warmup: int = 20
    batch: int = 1024
    token_file: Path | None = None
    phase_seconds: float = MIN_PHASE_SECONDS
    measure_activity: bool = True
    activity_vectors: int = 64
    seed: int = 0


def load_out(out_dir: Path) -> Dataflow:
    """The folded Dataflow of a compiled OUT (ConfigError naming the file otherwise)."""
    from ..build import Build

    return Build.open(out_dir).dataflow


def host_steps(df: Dataflow) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray], int]:
    """The driver's host work as two functions: float batch -> packed input beats, and packed
    output beats -> float outputs; plus the output element count per vector. They do exactly what
    the IR and docs/interfaces.md prescribe (quantize, pack / unpack, dequantize)."""
    from ..boards.stream import stream_layout

    layout = stream_layout(df)
    n_out = layout.output.elems

    def to_fabric(x: np.ndarray) -> np.ndarray:
        q = quantize_input(df.input, x.reshape(x.shape[0], -1))
        return pack(q, layout.input.dtype, layout.input.elems_per_beat)

    def from_fabric(beats: np.ndarray) -> np.ndarray:
        out = unpack(beats, layout.output.dtype, layout.output.elems_per_beat, n_out)
        return out if df.argmax else dequantize_output(df, out)

    return to_fabric, from_fabric, n_out


def estimate_cycles(out_dir: Path) -> tuple[int | None, int | None, Path | None]:
    """(latency cycles, II cycles) from report/estimate_network_performance.json, if present."""
    path = out_dir / "report" / "estimate_network_performance.json"
    if not path.is_file():
        return None, None, None
    data = json.loads(path.read_text())
    return int(data["latency_cycles"]), int(data["ii_cycles"]), path


def _board_of(df: Dataflow):  # noqa: ANN202 - a qmlp.boards.Board or None
    name = df.metadata.get("board")
    if not name:
        return None
    from ..boards import get_board

    return get_board(name)


def _driver(out_dir: Path):  # noqa: ANN202 - the generated driver's Accelerator, or None
    """The generated driver (``OUT/driver/qmlp_driver``) with a stand-in overlay, or None when OUT
    has no driver. Loaded under a private module name so several OUTs can be profiled in one
    process; only its host arithmetic and its DMA transfer plan are used here."""
    import hashlib as _hashlib
    import importlib.util
    import sys
    from types import SimpleNamespace

    package = out_dir / "driver" / "qmlp_driver"
    if not (package / "__init__.py").is_file():
        return None
    name = "qmlp_profiled_driver_" + _hashlib.sha256(str(package.resolve()).encode()).hexdigest()[:12]
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                      submodule_search_locations=[str(package)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    config = module.load_config()
    overlay = SimpleNamespace(**{config["dma_name"]: None, config["ip_name"]: None})
    return module.Accelerator(root=out_dir / "driver", overlay=overlay)


def _driver_host_steps(acc) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, int], np.ndarray]]:  # noqa: ANN001
    """The driver's own host work: float batch -> packed bytes, raw S2MM bytes -> outputs."""

    def to_fabric(x: np.ndarray) -> np.ndarray:
        return acc.pack(acc.quantize(x))

    def from_fabric(raw: np.ndarray, batch: int) -> np.ndarray:
        out = acc.unpack(raw, batch)
        return out if acc.config["argmax"] else acc.dequantize(out)

    return to_fabric, from_fabric


DEFAULT_CHUNK = 1024  # the driver's default batch_size, for an OUT without a driver


def transfer_plan(out_dir: Path, batch: int) -> tuple[list[tuple[int, int]], str]:
    """The DMA transfers of a driver call of ``batch`` vectors: the generated driver's own
    ``transfer_plan`` (chunks, zero padding) when OUT has a driver, else chunks of
    DEFAULT_CHUNK without padding; and which of the two it is."""
    acc = _driver(out_dir)
    if acc is not None:
        return [(int(n), int(p)) for n, p in acc.transfer_plan(batch)], "OUT/driver/qmlp_driver transfer_plan"
    plan = [(min(DEFAULT_CHUNK, batch - start), min(DEFAULT_CHUNK, batch - start))
            for start in range(0, batch, DEFAULT_CHUNK)]
    return plan, f"OUT has no driver/: chunks of {DEFAULT_CHUNK}, no padding assumed"


def _time_host(df: Dataflow, out_dir: Path, runs: int, warmup: int, batch: int,
               seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Seconds of the host work per call at batch 1 (``warmup + runs`` samples) and at ``batch``,
    and which code did it: the generated driver when OUT has one, else qmlp's own functions."""
    from ..boards.stream import stream_layout

    layout = stream_layout(df)
    acc = _driver(out_dir)
    if acc is not None:
        to_fabric, from_raw = _driver_host_steps(acc)
        source = "OUT/driver/qmlp_driver (quantize + pack, unpack + dequantize)"
    else:
        to_fabric, from_beats, _ = host_steps(df)
        source = "qmlp.sim.bitaccurate + qmlp.packing (OUT has no driver/)"

        def from_raw(raw: np.ndarray, n: int) -> np.ndarray:
            return from_beats(raw.reshape(n, layout.output.beats, layout.output.beat_bytes))
    rng = np.random.default_rng(seed)
    scale = df.input.scale.astype(np.float64)

    def host_call(n: int) -> Callable[[], object]:
        x = (rng.uniform(df.input.qmin, df.input.qmax, size=(n, df.input.features)) * scale).astype(np.float32)
        x = x.reshape((n, *df.input_shape))
        raw = rng.integers(0, 256, size=n * layout.output.beats * layout.output.beat_bytes, dtype=np.uint8)
        return lambda: (to_fabric(x), from_raw(raw, n))

    single = time_calls(host_call(1), runs=runs, warmup=warmup)
    batched = time_calls(host_call(batch), runs=max(5, min(50, runs // 20)), warmup=2)
    return single, batched[2:], source


def profile(options: ProfileOptions, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the flow; write profile.json, the raw samples, the PNGs (and trace) into OUT/report."""
    if options.runs < MIN_RUNS:
        raise ConfigError(f"--runs {options.runs}: the latency distribution needs at least {MIN_RUNS} runs")
    if options.batch < 1:
        raise ConfigError(f"--batch {options.batch}: must be >= 1")
    from ..hil.client import parse_target

    parse_target(options.target)  # a malformed --target fails before any work
    out_dir = Path(options.out_dir)
    df = load_out(out_dir)
    board = _board_of(df)
    report_dir = out_dir / "report"
    report_dir.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".profile-", dir=out_dir))
    try:
        data = _profile(options, df, board, scratch, log)
        for name in sorted(os.listdir(scratch)):
            os.replace(scratch / name, report_dir / name)
        data["files"] = {key: report.file_entry(report_dir / Path(entry["path"]).name, report_dir)
                         if entry.get("scratch") else {k: v for k, v in entry.items() if k != "scratch"}
                         for key, entry in data["files"].items()}
        report.write_json(data, report_dir / "profile.json")
        return data
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass(frozen=True, eq=False)
class _Measured:
    """What the target reported: everything later steps compute from."""

    engine: str
    fabric_cycles: np.ndarray  # LAST_LATENCY per batch-1 run (warm-up dropped)
    call_wall_s: np.ndarray | None  # board: agent's timer per batch-1 call
    batch_cycles: int | None  # virtual board: simulated cycles of one batch-N call
    call_batch_s: float | None  # board: median BENCH time of one batch-N call
    trace: dict[str, Any] | None  # board with --power: the recorded trace file, N and T


def _measure(options: ProfileOptions, df: Dataflow, remote: bool, scratch: Path,
             log: Callable[[str], None]) -> _Measured:
    """Talk to the target: batch-1 latency counters, (board) BENCH timings, one batch-N call and
    (board, --power) the rail recording."""
    with _open_target(options, df) as client:
        hello = client.hello()
        client.load(Path(options.out_dir))
        engine = str(hello.get("engine") or hello.get("backend") or "board")
        log(f"profile: {df.name} on {options.target} ({engine}), {options.runs} batch-1 runs + {options.warmup} warm-up")
        # LAST_LATENCY = cycles from the first input beat to the last output beat (the counter in
        # qmlp_control, read through AXI-Lite on both targets).
        fabric_cycles = _counter_latencies(client, df, options)
        call_wall_s = None
        if remote:  # the accelerator call, timed by the agent around the driver's DMA call
            bench = client.bench(warmup=options.warmup, iterations=options.runs, batch=1, seed=options.seed,
                                 max_seconds=600.0)
            if len(bench.wall_s) < options.runs:
                raise ConfigError(f"target {options.target} ran {len(bench.wall_s)} of {options.runs} runs within its "
                                  f"time limit; lower --runs")
            call_wall_s = np.asarray(bench.wall_s[: options.runs], dtype=np.float64)
        q = np.random.default_rng(options.seed + 1).integers(df.input.qmin, df.input.qmax + 1,
                                                            size=(options.batch, df.input.features))
        if df.input.dtype.kind == "BIPOLAR":
            q = np.where(q >= 0, 1, -1)
        # Only the virtual board reports the cycles of a whole call (reset release to last output
        # beat); on a board the batch-N call is timed by BENCH.
        cycles = client.run(q=q).timings.get("cycles")
        call_batch_s = None
        if remote:
            call_batch_s = float(np.median(client.bench(warmup=2, iterations=20, batch=options.batch,
                                                        seed=options.seed).wall_s))
        trace = _record_power(client, options, scratch, log) if options.power and remote else None
    return _Measured(engine=engine, fabric_cycles=fabric_cycles, call_wall_s=call_wall_s,
                     batch_cycles=None if cycles is None else int(cycles), call_batch_s=call_batch_s, trace=trace)


def _call(m: _Measured, df: Dataflow, dma: DmaModel, out_dir: Path, batch: int, latency: float,
          ii: float):  # noqa: ANN202 - a CallModel
    """The modelled driver call of ``batch`` vectors (virtual board)."""
    from ..boards.stream import stream_layout

    layout = stream_layout(df)
    plan, _ = transfer_plan(out_dir, batch)
    return model_call(latency_cycles=latency, ii_cycles=ii, plan=plan, in_beats=layout.input.beats,
                      out_beats=layout.output.beats, in_beat_bytes=layout.input.beat_bytes,
                      out_beat_bytes=layout.output.beat_bytes, clock_mhz=float(df.clock_mhz), dma=dma)


def _call_layer(m: _Measured, df: Dataflow, dma: DmaModel, out_dir: Path,
                ii: float) -> tuple[np.ndarray, str, list[str]]:
    """Per-run accelerator-call seconds, how they were obtained, and the assumptions."""
    if m.call_wall_s is not None:
        return m.call_wall_s, "measured: agent timer around the driver call", [
            "timed on the board around the driver's DMA call (includes PYNQ's Python DMA overhead)"]
    clock = float(df.clock_mhz)
    median_cycles = float(np.median(m.fabric_cycles))
    call = _call(m, df, dma, out_dir, 1, median_cycles, ii)
    _, plan_source = transfer_plan(out_dir, 1)
    # Per run: that run's fabric time + the model's padding, DMA stretch and fixed costs (run-independent).
    extra = call.seconds - cycles_to_seconds(median_cycles, clock)
    return (m.fabric_cycles / (clock * 1e6) + extra, "modelled: RTL cycles + DMA model",
            dma.assumptions() + [f"batch-1 call sends {call.vectors_sent} vector(s) ({plan_source})"])


def _throughput(m: _Measured, df: Dataflow, dma: DmaModel, out_dir: Path, batch: int, host_batch_s: float,
                latency: float, ii: float | None) -> tuple[float | None, float | None, float | None]:
    """(fabric, call, end-to-end) inferences per second of one call of ``batch`` vectors."""
    fabric_ips, call_s = None, m.call_batch_s
    if m.batch_cycles is not None:
        fabric_ips = throughput(batch, cycles_to_seconds(m.batch_cycles, float(df.clock_mhz)))
        if call_s is None and ii is not None:
            call_s = _call(m, df, dma, out_dir, batch, latency, ii).seconds
    if call_s is None:
        return fabric_ips, None, None
    return fabric_ips, throughput(batch, call_s), throughput(batch, call_s + host_batch_s)


def _profile(options: ProfileOptions, df: Dataflow, board, scratch: Path, log: Callable[[str], None]) -> dict[str, Any]:  # noqa: ANN001
    from ..hil.client import parse_target

    out_dir = Path(options.out_dir)
    remote = parse_target(options.target) is not None
    clock = float(df.clock_mhz)
    files: dict[str, dict[str, Any]] = {}
    est_latency, est_ii, est_path = estimate_cycles(out_dir)
    if est_path is not None:
        files["estimate"] = report.file_entry(est_path, out_dir / "report")

    m = _measure(options, df, remote, scratch, log)
    fabric_kind = "measured: LAST_LATENCY counter" + (" (board)" if remote else " (RTL simulation)")
    fabric_s = m.fabric_cycles / (clock * 1e6)
    dma = DmaModel(port_bits=int(board.dma.width_bits) if board is not None else 128)
    latency_median = float(np.median(m.fabric_cycles))
    measured_ii = None if remote else _measured_ii(m.batch_cycles, options.batch, latency_median)
    # the batch-1 model needs an II only for the driver's padding vectors: measured, else estimated
    call_s, call_kind, call_assumptions = _call_layer(m, df, dma, out_dir, float(measured_ii or est_ii or 0))
    host_all, host_n, host_source = _time_host(df, out_dir, options.runs, options.warmup, options.batch, options.seed)
    host_1 = host_all[options.warmup:]  # warm-up calls dropped here, as the agent drops its own
    e2e_s = call_s + host_1
    stats = {name: replace(latency_stats(values), warmup=options.warmup)
             for name, values in (("fabric", fabric_s), ("call", call_s), ("end_to_end", e2e_s), ("host", host_1))}

    samples_path = scratch / "profile_latency_samples.csv"
    report.write_samples_csv(samples_path, {"fabric_cycles": m.fabric_cycles, "fabric_s": fabric_s, "call_s": call_s,
                                            "host_s": host_1, "end_to_end_s": e2e_s}, warmup=0,
                             note=f"{options.target}, clock {clock:g} MHz; {options.warmup} warm-up calls already "
                                  f"discarded; end_to_end_s = call_s + host_s")
    files["latency_samples"] = {"path": samples_path.name, "scratch": True}

    fabric_ips, call_ips, e2e_ips = _throughput(m, df, dma, out_dir, options.batch, float(np.median(host_n)),
                                                latency_median, measured_ii)
    energy = _energy(options, df, board, scratch, files, m.trace, est_ii, measured_ii, remote, log)
    fabric_q = np.percentile(m.fabric_cycles, [50, 90, 99])
    host_machine = f"this host ({platform.machine()})"
    data: dict[str, Any] = {
        "schema": report.SCHEMA, "schema_version": report.SCHEMA_VERSION, "qmlp_version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "design": {"name": df.name, "out_dir": str(out_dir), "clock_mhz": clock,
                   "dataflow_sha256": hashlib.sha256((out_dir / DATAFLOW).read_bytes()).hexdigest(),
                   "board": None if board is None else board.name, "part": None if board is None else board.part},
        "target": {"kind": "board" if remote else "virtual board", "address": options.target, "engine": m.engine},
        "latency": {
            "fabric": {"kind": fabric_kind, "seconds": stats["fabric"].to_json(),
                       "cycles": {"p50": float(fabric_q[0]), "p90": float(fabric_q[1]), "p99": float(fabric_q[2]),
                                  "max": float(m.fabric_cycles.max())},
                       "estimate_cycles": est_latency},
            "call": {"kind": call_kind, "seconds": stats["call"].to_json(), "assumptions": call_assumptions},
            "end_to_end": {"kind": f"call + host work timed on {host_machine}", "seconds": stats["end_to_end"].to_json(),
                           "host_seconds": stats["host"].to_json(), "host_code": host_source,
                           "host_machine": host_machine},
        },
        "throughput": {"batch": options.batch, "fabric_ips": fabric_ips, "call_ips": call_ips,
                       "end_to_end_ips": e2e_ips, "cycles": m.batch_cycles, "ii_cycles": measured_ii,
                       "estimate_ii_cycles": est_ii},
        "energy": energy,
        "files": files,
    }
    topology = [df.input.features] + [layer.out_features for layer in df.layers]
    data["seed_comparison"] = report.seed_comparison(
        topology, stats["end_to_end"].p50_s, energy.get("e_total_j"), energy["kind"],
        latency_how=f"call {'measured on the board' if remote else 'modelled'} + host work timed on {host_machine}"
                    + ("" if remote else ", not on a board's ARM cores"))
    latency_histogram({"fabric": fabric_s, "call": call_s, "end_to_end": e2e_s}, scratch / "profile_latency.png",
                      title=f"{quote_name(df.name)}: batch-1 latency, {options.runs} runs ({options.target})",
                      labels={"fabric": f"fabric ({fabric_kind})", "call": f"accelerator call ({call_kind})",
                              "end_to_end": f"end to end (call + host work timed on {host_machine})"})
    return data


class _LocalBoard:
    """The virtual board's backend called in-process: the same RTL engine the agent would run,
    without a TCP round trip per call (which adds nothing to any simulated number)."""

    def __init__(self, df: Dataflow) -> None:
        from ..hil.sim import SimBackend

        self._backend = SimBackend()
        self._df = df

    def hello(self) -> dict[str, Any]:
        return dict(self._backend.describe())

    def load(self, out_dir: Path) -> dict[str, Any]:
        return self._backend.load(Path(out_dir), self._df)

    def run(self, *, q: np.ndarray):  # noqa: ANN201 - a hil RunOutput (timings, counters)
        return self._backend.run(np.asarray(q, dtype=np.int64))


@contextmanager
def _open_target(options: ProfileOptions, df: Dataflow) -> Iterator[Any]:
    from ..hil.client import open_board, parse_target

    if parse_target(options.target) is None:
        yield _LocalBoard(df)
        return
    with open_board(options.target, token_file=options.token_file) as client:
        yield client


def _measured_ii(batch_cycles: int | None, batch: int, latency_cycles: float | None) -> int | None:
    """Initiation interval from one call of ``batch`` vectors: the last output leaves about
    ``latency + (batch - 1) * II`` cycles after the first input."""
    if not batch_cycles or batch < 2 or latency_cycles is None:
        return None
    return max(1, round((batch_cycles - latency_cycles) / (batch - 1)))


def _counter_latencies(client, df: Dataflow, options: ProfileOptions) -> np.ndarray:  # noqa: ANN001
    """Batch-1 RUNs reading the LAST_LATENCY counter (a board whose BENCH reports no cycles)."""
    rng = np.random.default_rng(options.seed)
    values = []
    for index in range(options.warmup + options.runs):
        q = rng.integers(df.input.qmin, df.input.qmax + 1, size=(1, df.input.features))
        reply = client.run(q=np.where(q >= 0, 1, -1) if df.input.dtype.kind == "BIPOLAR" else q)
        cycles = reply.counters.get("last_latency_cycles")
        if cycles is None:
            raise ConfigError(f"target {options.target} reports neither cycles nor the LAST_LATENCY counter; "
                              "update the agent and driver ('qmlp compile' writes both)")
        if index >= options.warmup:
            values.append(float(cycles))
    return np.asarray(values, dtype=np.float64)


def _trace_from_frame(frame, label: str) -> RailTrace:  # noqa: ANN001 - a hil Frame
    """The POWER stop reply (qmlp.hil.pynq_backend) as a RailTrace: header ``rails`` and arrays
    ``t_s`` (seconds), ``mark`` (DataRecorder Mark) and ``power_w`` (samples x rails)."""
    rails = tuple(str(r) for r in frame.header.get("rails", ()))
    times, marks, power = frame.array("t_s"), frame.array("mark"), frame.array("power_w")
    if not rails or times is None or marks is None or power is None or power.shape != (len(times), len(rails)):
        raise ConfigError(f"agent's POWER stop reply has no usable trace (rails {list(rails)}); update the agent")
    t = np.asarray(times, dtype=np.float64)
    return RailTrace(rails=rails, times=t - t[0], marks=np.asarray(marks, dtype=np.int64),
                     power=np.asarray(power, dtype=np.float64), metadata={"label": label})


def _record_power(client, options: ProfileOptions, scratch: Path, log: Callable[[str], None]) -> dict[str, Any]:  # noqa: ANN001
    """Idle phase (Mark 0), mark, a burst of BENCH calls for >= phase_seconds (Mark 1), stop."""
    log(f"power: idle {options.phase_seconds:g} s, then a burst of batch-{options.batch} calls for "
        f">= {options.phase_seconds:g} s")
    client.power("start", label="idle", interval_s=0.1)
    time.sleep(options.phase_seconds + 1.0)  # +1 s: the settling window dropped by phase_stats
    client.power("mark", label="active")
    inferences, start = 0, time.perf_counter()
    while time.perf_counter() - start < options.phase_seconds + 1.0:
        reply = client.bench(warmup=0, iterations=100, batch=options.batch, seed=options.seed,
                             max_seconds=options.phase_seconds + 5.0)
        inferences += int(reply.info.get("iterations", len(reply.wall_s))) * options.batch
    active = time.perf_counter() - start
    stop = client.power("stop")
    trace = _trace_from_frame(stop, "qmlp profile --power")
    path = scratch / "power_trace.csv"
    write_rail_csv(trace, path, {"synthetic": "no - recorded by the board agent", "inferences": str(inferences),
                                 "active_seconds": repr(active), "batch": str(options.batch),
                                 "target": options.target})
    return {"path": path, "inferences": inferences, "active_seconds": active}


def _energy(options: ProfileOptions, df: Dataflow, board, scratch: Path, files: dict[str, dict[str, Any]],  # noqa: ANN001
            trace_info: dict[str, Any] | None, est_ii: int | None, measured_ii: int | None, remote: bool,
            log: Callable[[str], None]) -> dict[str, Any]:
    """Measured energy from the rail trace (board + --power), else the power-model estimate
    (virtual board), else nothing (board without --power)."""
    settle = 1.0
    if remote and trace_info is not None:
        trace = read_rail_csv(trace_info["path"])
        idle, active = phase_stats(trace, 0, settle_s=settle), phase_stats(trace, 1, settle_s=settle)
        result = energy_per_inference(idle, active, inferences=trace_info["inferences"],
                                      active_seconds=trace_info["active_seconds"])
        short = [f"{name} phase recorded for {phase.seconds:.1f} s, below the {MIN_PHASE_SECONDS:g} s minimum: "
                 "the means are less certain" for name, phase in (("idle", idle), ("active", active))
                 if phase.seconds < MIN_PHASE_SECONDS]
        files["rail_trace"] = {"path": trace_info["path"].name, "scratch": True}
        power_trace_plot(trace, scratch / "profile_power.png", title=f"{quote_name(df.name)}: rails, idle then batch-{options.batch} burst")
        return {"kind": "measured", "rails": list(result.rails), "settle_s": settle, "p_idle_w": result.p_idle_w,
                "p_active_w": result.p_active_w, "e_dyn_j": result.e_dyn_j, "e_total_j": result.e_total_j,
                "e_dyn_stderr_j": result.e_dyn_stderr_j, "inferences": result.inferences,
                "active_seconds": result.active_seconds, "per_rail": result.per_rail,
                "phase_samples": {"idle": idle.samples, "active": active.samples},
                "phase_seconds": {"idle": idle.seconds, "active": active.seconds},
                "assumptions": [f"E_dyn = (P_active - P_idle) * T / N, E_total = P_active * T / N over rails "
                                f"{'+'.join(result.rails)}", f"first {settle:g} s of each phase dropped", *short]}
    if remote:
        return {"kind": "not requested", "e_dyn_j": None, "e_total_j": None, "assumptions": ["use --power on a board"]}
    if options.power:
        log("power: the virtual board has no rails; reporting the power-model ESTIMATE instead")
    return _estimate_energy(options, df, board, scratch, files, est_ii, measured_ii, log)


def _estimate_energy(options: ProfileOptions, df: Dataflow, board, scratch: Path, files: dict[str, dict[str, Any]],  # noqa: ANN001
                     est_ii: int | None, measured_ii: int | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Power-model estimate: resources (synth, else analytical), toggle rates (measured, else
    XPE's default), the part's coefficients; energy per inference at the measured II."""
    out_dir = Path(options.out_dir)
    synth = out_dir / "report" / "synth_resources.json"
    est = out_dir / "report" / "estimate_layer_resources.json"
    if synth.is_file():
        res_path, source = synth, "synth (Yosys netlist counts)"
    elif est.is_file():
        res_path, source = est, "estimate (analytical model; run 'qmlp compile --synth' for netlist counts)"
    else:
        raise ConfigError(f"{out_dir}/report: neither synth_resources.json nor estimate_layer_resources.json; recompile")
    resources = resources_from_report(json.loads(res_path.read_text()), source=source,
                                      path=res_path.relative_to(out_dir).as_posix())
    files["resources"] = report.file_entry(res_path, out_dir / "report")
    if options.measure_activity:
        from .activity import measure_activity

        rng = np.random.default_rng(options.seed + 2)
        q = rng.integers(df.input.qmin, df.input.qmax + 1, size=(options.activity_vectors, df.input.features))
        if df.input.dtype.kind == "BIPOLAR":
            q = np.where(q >= 0, 1, -1)
        log(f"energy: measuring toggle rates of {options.activity_vectors} streamed vectors (verilator --coverage-toggle)")
        toggles = measure_activity(df, out_dir / "rtl", q)
        split = toggles.register_rate is not None
        activity = Activity(logic_toggle=toggles.net_rate if split else toggles.rate,
                            register_toggle=toggles.register_rate if split else toggles.rate,
                            bram_enable=1.0, dsp_enable=1.0,
                            source=f"measured: Verilator toggle coverage, {toggles.vectors} random vectors streamed "
                                   f"back to back, {toggles.bits} signal bits over {toggles.cycles} cycles"
                                   + (f" ({toggles.register_bits} register bits found by Yosys)" if split
                                      else " (registers not identified: one rate for all bits)"),
                            details=toggles.to_json())
    else:
        activity = Activity(DEFAULT_TOGGLE, DEFAULT_TOGGLE, 1.0, 1.0,
                            source=f"not measured: XPE default {DEFAULT_TOGGLE:g} toggle rate (assumption)")
    act_path = scratch / "profile_activity.json"
    act_path.write_text(json.dumps({"source": activity.source, "logic_toggle": activity.logic_toggle,
                                    "register_toggle": activity.register_toggle, "bram_enable": activity.bram_enable,
                                    "dsp_enable": activity.dsp_enable, "details": dict(activity.details)}, indent=2) + "\n")
    files["activity"] = {"path": act_path.name, "scratch": True}
    part = board.part if board is not None else "xczu7ev"
    ii = measured_ii if measured_ii else (est_ii or 1)
    estimate = estimate_power(resources, activity, clock_mhz=float(df.clock_mhz), ii_cycles=int(ii),
                              model=model_for_part(part))
    data = estimate.to_json()
    data.update(kind="estimate", part_number=part,
                note="ESTIMATE from a power model, not a measurement; see assumptions")
    data["assumptions"] = list(estimate.assumptions) + [
        "BRAM and DSP blocks assumed enabled every cycle while streaming (upper bound)",
        "FF nets toggle at the measured rate of flip-flop outputs; LUT nets at the measured rate of all other "
        "signal bits (RTL-level nets stand in for the mapped LUT outputs)",
        f"II = {ii} cycles, from the RTL batch run: (cycles - batch-1 latency) / (N - 1)" if measured_ii
        else f"II = {ii} cycles, from the estimator"]
    if board is None:
        data["assumptions"].append("dataflow.json names no board: xczu7ev (ZCU104) power model used")
    return data

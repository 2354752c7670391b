"""Simulator throughput on the seed topology 40-256-128-64-32-4 (INT2 weights, 2-bit activations,
8-bit input): qmlp's bit-accurate simulator vs qonnx ``execute_onnx`` vs onnxruntime on the QCDQ
export of the same network, all on one core, in the same run.

Reproduce: ``.venv/bin/python -m bench.sim_throughput`` (writes the "Simulator throughput"
section of BENCHMARKS.md; ``--no-write`` only prints)."""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # one core for every contender; set before numpy loads BLAS

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from qmlp.sim.engine import CHUNK, SMALL_ROWS  # noqa: E402

ort.set_default_logger_severity(3)  # Brevitas lists initializers as inputs; ORT warns per session

ROOT = Path(__file__).resolve().parent.parent
QMLP_FAST = "qmlp Model.predict (bit-accurate; onnxruntime engine)"
QCDQ = "onnxruntime, QCDQ export"
BATCHES = (1, 256, 1024, 16384, 65536)
BUDGET = 1.5  # seconds of repeated calls per measurement (best of the repetitions counts)


def _zoo():
    spec = importlib.util.spec_from_file_location("qmlp_bench_zoo", ROOT / "tests" / "zoo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["qmlp_bench_zoo"] = module
    spec.loader.exec_module(module)
    return module


def _one_thread_sessions() -> None:
    """qonnx builds an onnxruntime session per node; give those one thread too."""
    from qonnx.core import onnx_exec

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1

    class _Runtime:
        @staticmethod
        def InferenceSession(model, **kwargs):  # noqa: N802 - mirrors onnxruntime's name
            return ort.InferenceSession(model, sess_options=options, **kwargs)

    onnx_exec.rt = _Runtime


def rate(fn, batch: int, budget: float = BUDGET) -> float:
    """Inferences per second of ``fn()`` processing ``batch`` inputs: best single call."""
    fn()  # warm up (kernel caches, session creation)
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < budget:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return batch / best


def _dynamic_batch(path: Path) -> bytes:
    model = onnx.load(str(path))
    del model.graph.value_info[:]
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    return model.SerializeToString()


def build_models(directory: Path) -> tuple[Path, Path]:
    zoo = _zoo()
    spec = zoo.SPECS["seed_w2a2"]
    net = zoo.make_network(spec)
    qonnx_path = zoo.export(net, spec, directory / "seed_qonnx.onnx")
    qcdq_spec = type(spec)(**{**spec.__dict__, "export": "qcdq"})
    qcdq_path = zoo.export(net, qcdq_spec, directory / "seed_qcdq.onnx")
    return qonnx_path, qcdq_path


def measure(qonnx_path: Path, qcdq_path: Path) -> tuple[list[tuple[str, int, float]], dict]:
    from qmlp.api import Model
    from qmlp.frontend import import_model
    from qmlp.sim.bitaccurate import simulate, simulate_outputs
    from qmlp.sim.engine import engine_for
    from qmlp.sim.reference import _batched_model, run_reference, sample_inputs
    from qonnx.core.onnx_exec import execute_onnx

    _one_thread_sessions()
    df = import_model(qonnx_path)
    x_all = sample_inputs(df, 65536, seed=0)
    # the benchmarked model is the right one: simulator == execute_onnx and == QCDQ in onnxruntime
    ref = run_reference(qonnx_path, x_all[:2000])
    sim = simulate(df, x_all[:2000])
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = session_options.inter_op_num_threads = 1
    session = ort.InferenceSession(_dynamic_batch(qcdq_path), sess_options=session_options)
    in_name = session.get_inputs()[0].name
    qcdq_out = session.run(None, {in_name: x_all[:2000]})[0]
    checks = {
        "integer mismatches vs execute_onnx": int(sum(np.sum(a != b) for a, b in zip(ref.activations, sim.activations))),
        "max |sim - execute_onnx|": float(np.abs(ref.outputs - sim.outputs).max()),
        "max |sim - onnxruntime QCDQ|": float(np.abs(qcdq_out - sim.outputs).max()),
        "max |output|": float(np.abs(ref.outputs).max()),
    }
    rows: list[tuple[str, int, float]] = []
    model = Model(dataflow=df, path=qonnx_path)
    fast = model.predict(x_all)
    checks["output mismatches, onnxruntime engine vs numpy path (65536 inputs)"] = int(
        np.sum(fast != simulate_outputs(df, x_all, engine="numpy")))
    checks["engine"] = engine_for(df)
    for batch in BATCHES:  # the two contenders interleaved, batch by batch
        x = x_all[:batch]
        rows.append((QMLP_FAST, batch, rate(lambda: model.predict(x), batch)))
        rows.append((QCDQ, batch, rate(lambda: session.run(None, {in_name: x}), batch)))
    for batch in (1, 256, 16384):
        x = x_all[:batch]
        rows.append(("qmlp simulate_outputs, numpy engine", batch,
                     rate(lambda: simulate_outputs(df, x, engine="numpy"), batch)))
    for batch in (1, 16384):
        x = x_all[:batch]
        rows.append(("qmlp simulate (every layer's integers kept)", batch, rate(lambda: simulate(df, x), batch)))
    name = onnx.load(str(qonnx_path)).graph.input[0].name
    one = _batched_model(onnx.load(str(qonnx_path)), 1)
    rows.append(("qonnx execute_onnx", 1, rate(lambda: execute_onnx(one, {name: x_all[:1]}), 1)))
    big = _batched_model(onnx.load(str(qonnx_path)), 16384)
    rows.append(("qonnx execute_onnx (batch axis set to the batch)", 16384,
                 rate(lambda: execute_onnx(big, {name: x_all[:16384]}), 16384, budget=3.0)))
    return rows, checks


def report(rows, checks) -> str:
    rate_of = {(name, batch): value for name, batch, value in rows}
    best_qmlp = max(r for name, _, r in rows if name == QMLP_FAST)
    exec_one = rate_of[("qonnx execute_onnx", 1)]
    exec_big = next(r for name, b, r in rows if name.startswith("qonnx execute_onnx ("))
    lines = ["| engine | batch | inferences/s |", "|---|---:|---:|"]
    lines += [f"| {name} | {batch} | {value:,.0f} |" for name, batch, value in rows]
    ratios = [rate_of[(QMLP_FAST, b)] / rate_of[(QCDQ, b)] for b in BATCHES]
    lines += ["", "| batch | " + " | ".join(str(b) for b in BATCHES) + " |",
              "|---|" + "---:|" * len(BATCHES),
              "| qmlp predict / onnxruntime QCDQ | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |"]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    engine = checks["engine"]
    summary = [
        "",
        f"Against onnxruntime on the QCDQ export, same run, batch by batch: {min(ratios):.2f}x at worst "
        f"(batch {BATCHES[int(np.argmin(ratios))]}), {max(ratios):.2f}x at best. Goal: >= 1.0x at every batch.",
        "",
        f"Best qmlp: {best_qmlp:,.0f} inferences/s = {best_qmlp / exec_one:,.0f}x execute_onnx per sample, "
        f"{best_qmlp / exec_big:,.1f}x execute_onnx batched.",
        "",
        f"Same run, correctness of the benchmarked model on 2000 inputs: "
        f"{checks['integer mismatches vs execute_onnx']} integer mismatches vs execute_onnx, max |sim - execute_onnx| "
        f"{checks['max |sim - execute_onnx|']:.2g}, max |sim - onnxruntime QCDQ| "
        f"{checks['max |sim - onnxruntime QCDQ|']:.2g} (outputs up to {checks['max |output|']:.3g}); "
        f"{checks['output mismatches, onnxruntime engine vs numpy path (65536 inputs)']} output mismatches between "
        "`Model.predict` (onnxruntime engine) and the numpy path on all 65536 inputs.",
        "",
        f"Both sides: onnxruntime {ort.__version__}, CPU provider, one thread (intra/inter-op 1; OMP/OPENBLAS/MKL=1, "
        "also inside execute_onnx), default graph optimisation (all). QCDQ is called as a user would "
        "(`session.run(None, {input: x})`, one call per batch); `Model.predict` includes its input checks, its "
        f"NaN test and the output dequantization. {cpu}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) at the end of the run"
        + (": other jobs were running, so absolute numbers are below what an idle core gives; the ratios compare "
           "calls made seconds apart. " if load[0] > 1.0 else ". ")
        + "Each rate is the best single call of repeated calls. qmlp's engine (qmlp/sim/engine.py) runs the "
        f"integer IR as one ONNX graph of {len(engine.activations)} uint8 layers (activations: "
        f"{', '.join(engine.activations)}): a QuantizeLinear input quantizer, per layer one u8 x s8 QGemm whose "
        "output stage rounds each channel's threshold staircase as one line (an integer offset and a float32 slope, "
        "proven at both ends of every plateau) and a uint8 Clip, the output dequantized by a table lookup; up to "
        f"{SMALL_ROWS} rows a variant (float32 QGemm sums then a QuantizeLinear, u8 x u8 GEMMs, no memory arena) "
        f"through bound buffers, which costs less per call; from {CHUNK + 1} rows, blocks of {CHUNK} rows (their "
        "scratch stays in the caches; onnxruntime QCDQ runs a batch in one call). `simulate` also hands out int64 copies "
        "of every layer's accumulators and activations, hence its lower rate. "
        "Reproduce: `.venv/bin/python -m bench.sim_throughput`.",
    ]
    return "\n".join(lines + summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows, checks = measure(*build_models(Path(tmp)))
    text = report(rows, checks)
    print(text)
    if not args.no_write:
        sys.path.insert(0, str(ROOT))
        from bench.benchmarks_md import update_section

        update_section("Simulator throughput", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peers side by side, same machine, same run: qmlp vs finn-plus 1.6.1 vs hls4ml 1.3.0 on the same
QONNX models at the same target rate and clock (100,000 inferences/s, 200 MHz, ZCU104).

Per model: qmlp's estimate and Yosys netlist counts, II, latency and time from ONNX to RTL, and a
`qmlp verify` of QONNX == simulator == Verilator RTL; FINN's own estimates (its analytical
LUT/BRAM/DSP models; FINN estimates no FF), II and latency at its own folding for the same
target, its time from ONNX through step_hw_codegen, and its hardware graph executed in Python
mode against qmlp (FINN cross-check); hls4ml's time from ONNX to a compiled C simulation and its
agreement with qmlp's simulator (== execute_onnx). FINN runs in .venv-finn (`make finn`), hls4ml
in .venv-peers (`make peers-venv`); a missing one is skipped with a note.

    .venv/bin/python bench/peers.py [--samples N] [--update-benchmarks] [--results bench/results/peers.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchmarks_md import update_section  # noqa: E402
from qmlp.boards.finn import FINN_VERSION, finn_python, write_finn_build  # noqa: E402
from qmlp.boards.finn_check import finn_crosscheck  # noqa: E402
from qmlp.boards.finn_report import read_finn_estimate  # noqa: E402
from qmlp.frontend import import_model  # noqa: E402
from qmlp.sim.bitaccurate import simulate  # noqa: E402
from qmlp.sim.reference import sample_inputs  # noqa: E402

PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
SHIPPED = ("can_ids_w2a2", "can_ids_ternary", "digits_ternary")
FINN_EXAMPLES = ("tfc_w1a1", "tfc_w2a2", "unsw_mlp_w2a2")  # tests/finn_zoo.py, random weights
TARGET_FPS, CLOCK_MHZ, BOARD = 100_000, 200.0, "zcu104"
# hls4ml needs a fixed-point type for everything it does not infer from the QONNX quantizers.
PRECISION = "fixed<32,16>"  # the wide one: hls4ml's default fixed<16,6> overflows on these models


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def ours(model: Path, work: Path, samples: int) -> dict:
    qmlp = [sys.executable, "-m", "qmlp"]
    out, synth = work / f"{model.stem}_qmlp", work / f"{model.stem}_qmlp_synth"
    common = ["--board", BOARD, "--target-fps", str(TARGET_FPS), "--clock-mhz", str(CLOCK_MHZ)]
    compile_s = _timed(qmlp + ["compile", str(model), "-o", str(out), *common])
    verify = subprocess.run(qmlp + ["verify", str(out), "--samples", str(samples)], capture_output=True, text=True)
    _timed(qmlp + ["compile", str(model), "-o", str(synth), "--synth", *common])
    perf = json.loads((out / "report" / "estimate_network_performance.json").read_text())
    est = json.loads((out / "report" / "estimate_layer_resources.json").read_text())["total"]
    yosys = json.loads((synth / "report" / "synth_resources.json").read_text())
    return {"compile_s": compile_s, "verify_pass": verify.returncode == 0, "perf": perf, "estimate": est,
            "yosys": {k: yosys[k] for k in ("LUT", "FF", "BRAM36", "DSP")}}


def finn(model: Path, work: Path, samples: int) -> dict | None:
    """FINN's Vivado-free flow at FINN's own folding for the same target, and its cross-check."""
    python = finn_python()
    if python is None:
        return None
    build = write_finn_build(model, BOARD, work / f"{model.stem}_finn", clock_mhz=CLOCK_MHZ, target_fps=TARGET_FPS,
                             log=lambda line: None)
    if build.error:
        return {"error": build.error}
    run = json.loads((build.directory / "output" / "qmlp_finn_run.json").read_text())
    est = read_finn_estimate(build.directory / "output" / "report")
    agreement = finn_crosscheck(model, import_model(model), build.directory, python, samples=samples)
    host = sum(layer.lut for layer in est.layers if not layer.node.startswith("MVAU"))
    return {"seconds": run["total_s"], "lut": est.lut, "lut_mvau": est.lut - host, "bram18": est.bram18,
            "dsp": est.dsp, "ii": est.max_cycles, "latency": est.latency_cycles, "fps": est.throughput_fps,
            "crosscheck": agreement.one_line(), "agrees_except_ties": agreement.agrees_except_ties,
            "input_tie_samples": agreement.input_tie_samples, "samples": agreement.samples}


def hls4ml(model: Path, x: np.ndarray, work: Path, precision: str) -> tuple[dict, np.ndarray]:
    tag = precision.replace("<", "_").replace(">", "").replace(",", "_")
    out = work / f"{model.stem}_hls4ml_{tag}"
    np.save(work / "x.npy", x)
    start = time.perf_counter()
    subprocess.run([str(PEERS_PYTHON), str(ROOT / "bench" / "peer_hls4ml.py"), str(model), str(work / "x.npy"),
                    str(out), precision], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    timing = json.loads((out / "timing.json").read_text())
    timing["wall_s"] = time.perf_counter() - start
    return timing, np.load(out / "outputs.npy")


def agreement(ours_y: np.ndarray, theirs_y: np.ndarray) -> dict:
    if len(ours_y) == 0:  # a model without shipped test vectors
        return {"bit_exact_vectors": 0, "max_abs_diff": None, "argmax_agree": 0}
    theirs_y = theirs_y.reshape(ours_y.shape)
    return {
        "bit_exact_vectors": int(np.all(ours_y == theirs_y, axis=1).sum()),
        "max_abs_diff": float(np.abs(ours_y - theirs_y).max()),
        "argmax_agree": int((ours_y.argmax(axis=1) == theirs_y.argmax(axis=1)).sum()),
    }


def _models(work: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    import finn_zoo  # noqa: E402  (FINN's own example MLPs, built with random weights)

    shipped = [ROOT / "examples" / f"{name}.onnx" for name in SHIPPED]
    return shipped + [finn_zoo.build(name, work) for name in FINN_EXAMPLES]


def run(samples: int, results: Path) -> list[dict]:
    """Measure every model; each finished row is saved to ``results`` at once, and rows already
    there (same sample count) are reused, so an interrupted run resumes."""
    done = {row["model"]: row for row in json.loads(results.read_text())} if results.exists() else {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for model in _models(work):
            if model.stem in done and done[model.stem]["samples"] == samples:
                rows.append(done[model.stem])
                continue
            df = import_model(model)
            # Two input sets: random over the whole input-quantizer range (clip edges, rounding
            # ties), and the model's own held-out test vectors where it ships them (real data).
            x_range = sample_inputs(df, samples, seed=1).reshape((samples, *df.input_shape))
            vectors = model.with_suffix(".npz")
            x_data = (np.load(vectors)["x"].reshape((-1, *df.input_shape)) if vectors.exists()
                      else np.zeros((0, *df.input_shape), np.float32))
            x = np.concatenate([x_range, x_data]).astype(np.float32)
            y_ours = simulate(df, x).outputs.reshape(len(x), -1)
            row = {"model": model.stem, "samples": samples, "qmlp": ours(model, work, samples),
                   "finn": finn(model, work, min(samples, 200)), "hls4ml": None}
            if PEERS_PYTHON.exists():
                timing, y_hls = hls4ml(model, x, work, PRECISION)
                y_hls = y_hls.reshape(len(x), -1)
                row["hls4ml"] = {**timing, **agreement(y_ours[:samples], y_hls[:samples]), "test_vectors": len(x_data),
                                 **{f"data_{k}": v for k, v in agreement(y_ours[samples:], y_hls[samples:]).items()}}
            print(json.dumps(row, indent=1), flush=True)
            rows.append(row)
            done[row["model"]] = row
            results.write_text(json.dumps(list(done.values()), indent=1) + "\n")
    return rows


def markdown(rows: list[dict], command: str) -> str:
    lines = [
        f"Command: `{command}` (same machine, same run). Target {TARGET_FPS:,} inferences/s at {CLOCK_MHZ:g} MHz "
        f"on {BOARD} for every tool. tfc_* and unsw_mlp_w2a2 are FINN's own example MLPs (bnn_pynq TFC, the "
        "UNSW-NB15 MLP) with random weights (tests/finn_zoo.py). Seconds are wall time on a 2-core machine "
        "shared with other jobs: compare them within a row, roughly.", "",
        "**Resources and timing.** qmlp: its estimate and Yosys 0.70 `synth_xilinx` netlist counts; FINN "
        f"({FINN_VERSION}): its own analytical estimates at its own folding for the same target (no FF model; "
        "'MVAU' = its layers without the input quantizer and output scaling, which qmlp runs on the host). "
        "Neither is a Vivado result.", "",
        "| model | qmlp est. LUT / FF / BRAM36 / DSP | qmlp Yosys LUT / FF / BRAM36 / DSP | qmlp II / latency (cycles) "
        "| FINN est. LUT (MVAU) / BRAM18 / DSP | FINN II / latency (cycles) | qmlp ONNX -> RTL (s) | FINN ONNX -> "
        "estimates + HLS/RTL code (s) |",
        "|---|---|---|---|---|---|---:|---:|",
    ]
    for row in rows:
        q, f = row["qmlp"], row["finn"]
        e, y, p = q["estimate"], q["yosys"], q["perf"]
        finn_res = finn_time = "-"
        if f and "error" not in f:
            finn_res = f"{f['lut']:,.0f} ({f['lut_mvau']:,.0f}) / {f['bram18']:g} / {f['dsp']:g}"
            finn_time = f"{f['ii']:,} / {f['latency']:,}"
        elif f:
            finn_res = f"FINN failed: {f['error']}"
        lines.append(
            f"| {row['model']} | {e['LUT']:,} / {e['FF']:,} / {e['BRAM36']:g} / {e['DSP']} | {y['LUT']:,} / {y['FF']:,} / "
            f"{y['BRAM36']:g} / {y['DSP']} | {p['ii_cycles']:g} / {p['latency_cycles']:,} | {finn_res} | {finn_time} | "
            f"{q['compile_s']:.1f} | {f['seconds'] if f and 'seconds' in f else '-'} |")
    lines += ["", "**Exactness against QONNX `execute_onnx`.** qmlp: `qmlp verify OUT` (reference == simulator == "
              "Verilator RTL); FINN: its hardware graph in Python mode vs qmlp's simulator (FINN cross-check); "
              "hls4ml: its C simulation vs qmlp's simulator, *range* = random inputs over the input quantizer's range, "
              "*data* = the model's shipped test vectors.", "",
              "| model | qmlp verify | FINN cross-check | hls4ml range: bit-exact / argmax agrees | hls4ml data: "
              "bit-exact / argmax agrees | hls4ml ONNX -> C sim (s) |", "|---|---|---|---|---|---:|"]
    for row in rows:
        f, h = row["finn"], row["hls4ml"]
        check = "not run (no .venv-finn)" if f is None else f.get("crosscheck", f.get("error", "-"))
        hls = ("not run (no .venv-peers)", "-", "-") if h is None else (
            f"{h['bit_exact_vectors']}/{row['samples']} / {h['argmax_agree']}/{row['samples']}",
            f"{h['data_bit_exact_vectors']}/{h['test_vectors']} / {h['data_argmax_agree']}/{h['test_vectors']}"
            if h["test_vectors"] else "- (no shipped vectors)",
            f"{h['convert_and_compile_s']:.1f}")
        lines.append(f"| {row['model']} | {'PASS' if row['qmlp']['verify_pass'] else 'FAIL'} | {check} | "
                     f"{hls[0]} | {hls[1]} | {hls[2]} |")
    lines += ["", f"hls4ml precision `{PRECISION}` for what it does not infer from the quantizers; hls4ml gives no "
              "resource figures without Vitis HLS. FINN's input-quantizer differences are rounding ties "
              "(x/scale = k + 0.5 exactly, e.g. 0.5 at scale 1/255), which FINN's thresholds round up and QONNX rounds "
              "half to even; its layers agree with qmlp's when fed the same integers. Published FINN figures on "
              "Vivado (seed design, UNSW-NB15 MLP) stay in *Hardware quality* as a second reference."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--update-benchmarks", action="store_true")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "peers.json",
                        help="per-model results, saved as they finish; a rerun reuses them")
    args = parser.parse_args()
    rows = run(args.samples, args.results)
    text = markdown(rows, f"python bench/peers.py --samples {args.samples}")
    print(text)
    if args.update_benchmarks:
        update_section("Peers side by side: qmlp, finn-plus, hls4ml", text)


if __name__ == "__main__":
    main()

"""Peers side by side, same machine, same run: qmlp vs hls4ml 1.3.0 on the same QONNX models.

For each example model: our time from ONNX to verified RTL (`qmlp compile` + `qmlp verify OUT`,
which includes a Verilator RTL run) against hls4ml's time from ONNX to a compiled C simulation;
and whether hls4ml's C simulation agrees with our bit-accurate simulator (which itself equals
QONNX execute_onnx and the RTL). hls4ml runs in its own venv (.venv-peers, `make peers-venv`).

    .venv/bin/python bench/peers.py [--samples N] [--update-benchmarks]
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
from qmlp.frontend import import_model  # noqa: E402
from qmlp.sim.bitaccurate import simulate  # noqa: E402
from qmlp.sim.reference import sample_inputs  # noqa: E402

PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
MODELS = ("can_ids_w2a2", "can_ids_ternary", "digits_ternary")
# hls4ml needs a fixed-point type for everything it does not infer from the QONNX quantizers;
# its default and a wide one show whether the disagreement is a precision choice.
PRECISIONS = ("fixed<16,6>", "fixed<32,16>")


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def ours(model: Path, work: Path, samples: int) -> dict:
    qmlp = [sys.executable, "-m", "qmlp"]
    out = work / f"{model.stem}_qmlp"
    compile_s = _timed(qmlp + ["compile", str(model), "--board", "zcu104", "-o", str(out)])
    verify_s = _timed(qmlp + ["verify", str(out), "--samples", str(samples)])
    return {"compile_s": compile_s, "verify_s": verify_s, "total_s": compile_s + verify_s}


def finn_backend(model: Path, work: Path) -> dict:
    """Our --backend finn output for the same model: what a FINN user would hand to FINN."""
    out = work / f"{model.stem}_finn"
    seconds = _timed([sys.executable, "-m", "qmlp", "compile", str(model), "--board", "zcu104", "-o", str(out),
                      "--backend", "finn"])
    config = json.loads((out / "finn" / "dataflow_build_config.json").read_text())
    folding = json.loads((out / "finn" / "folding_config.json").read_text())
    return {"seconds": seconds, "files": sorted(p.name for p in (out / "finn").iterdir()),
            "board": config["board"], "clock_ns": config["synth_clk_period_ns"],
            "mvau_layers": sum(1 for key in folding if key.startswith("MVAU"))}


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
    theirs_y = theirs_y.reshape(ours_y.shape)
    return {
        "bit_exact_vectors": int(np.all(ours_y == theirs_y, axis=1).sum()),
        "max_abs_diff": float(np.abs(ours_y - theirs_y).max()),
        "argmax_agree": int((ours_y.argmax(axis=1) == theirs_y.argmax(axis=1)).sum()),
    }


def run(samples: int) -> list[dict]:
    if not PEERS_PYTHON.exists():
        sys.exit("bench/peers.py: no .venv-peers; run `make peers-venv` first")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in MODELS:
            model = ROOT / "examples" / f"{name}.onnx"
            if not model.exists():
                print(f"{name}: not shipped yet, skipped")
                continue
            df = import_model(model)
            # Two input sets: random over the whole input-quantizer range (clip edges, rounding
            # ties), and the model's own held-out test vectors (real data).
            x_range = sample_inputs(df, samples, seed=1).reshape((samples, *df.input_shape))
            x_data = np.load(model.with_suffix(".npz"))["x"].reshape((-1, *df.input_shape))
            x = np.concatenate([x_range, x_data]).astype(np.float32)
            y_ours = simulate(df, x).outputs.reshape(len(x), -1)
            row = {"model": name, "samples": samples, "qmlp": ours(model, work, samples), "hls4ml": {},
                   "finn_backend": finn_backend(model, work)}
            for precision in PRECISIONS:
                timing, y_hls = hls4ml(model, x, work, precision)
                y_hls = y_hls.reshape(len(x), -1)
                row["hls4ml"][precision] = {**timing, **agreement(y_ours[:samples], y_hls[:samples]),
                                            "test_vectors": len(x_data),
                                            **{f"data_{k}": v for k, v in agreement(y_ours[samples:], y_hls[samples:]).items()}}
            print(json.dumps(row, indent=1))
            rows.append(row)
    return rows


def markdown(rows: list[dict], command: str) -> str:
    lines = [
        f"Command: `{command}` (same machine, same run; hls4ml {rows[0]['hls4ml'][PRECISIONS[0]]['hls4ml_version'] if rows else '?'}).",
        "",
        "hls4ml's C simulation against qmlp's simulator (which equals QONNX `execute_onnx` and the RTL): "
        "*range* = random inputs over the whole input-quantizer range, *data* = the model's held-out test vectors.",
        "",
        "| model | qmlp: ONNX -> verified RTL (s) | hls4ml: ONNX -> C sim (s) | hls4ml precision | range: bit-exact | range: argmax agrees | range: max abs diff | data: bit-exact | data: argmax agrees | data: max abs diff |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for precision, h in row["hls4ml"].items():
            lines.append(
                f"| {row['model']} | {row['qmlp']['total_s']:.1f} | {h['convert_and_compile_s']:.1f} | `{precision}` | "
                f"{h['bit_exact_vectors']}/{row['samples']} | {h['argmax_agree']}/{row['samples']} | {h['max_abs_diff']:.3g} | "
                f"{h['data_bit_exact_vectors']}/{h['test_vectors']} | {h['data_argmax_agree']}/{h['test_vectors']} | "
                f"{h['data_max_abs_diff']:.3g} |")
    lines += ["", "FINN cannot run here (Docker image + Vivado/Vitis); its published numbers stand beside ours in "
              "*Hardware quality*. What `qmlp compile --backend finn` hands to FINN for the same models:", "",
              "| model | FINN build dir | board | clock | MVAU layers in folding config | seconds |",
              "|---|---|---|---|---:|---:|"]
    for row in rows:
        f = row["finn_backend"]
        lines.append(f"| {row['model']} | {', '.join(f['files'])} | {f['board']} | {f['clock_ns']} ns | "
                     f"{f['mvau_layers']} | {f['seconds']:.1f} |")
    lines += ["", "Simulator throughput against qonnx `execute_onnx` and onnxruntime (QCDQ): see *Simulator throughput*.",
              "", "qmlp's time covers lowering, folding, RTL, IP-XACT, Vivado scripts, driver, and a bit-exact "
              "QONNX == simulator == Verilator RTL check; hls4ml's covers conversion and the g++ build of its C "
              "simulation only (no RTL: that needs Vitis HLS)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--update-benchmarks", action="store_true")
    args = parser.parse_args()
    rows = run(args.samples)
    text = markdown(rows, f"python bench/peers.py --samples {args.samples}")
    print(text)
    if args.update_benchmarks:
        update_section("Peers side by side: hls4ml", text)


if __name__ == "__main__":
    main()

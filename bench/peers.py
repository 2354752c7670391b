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
            x = sample_inputs(df, samples, seed=1).reshape((samples, *df.input_shape))
            y_ours = simulate(df, x).outputs.reshape(samples, -1)
            row = {"model": name, "samples": samples, "qmlp": ours(model, work, samples), "hls4ml": {}}
            for precision in PRECISIONS:
                timing, y_hls = hls4ml(model, x, work, precision)
                row["hls4ml"][precision] = {**timing, **agreement(y_ours, y_hls.reshape(samples, -1))}
            print(json.dumps(row, indent=1))
            rows.append(row)
    return rows


def markdown(rows: list[dict], command: str) -> str:
    lines = [
        f"Command: `{command}` (same machine, same run; hls4ml {rows[0]['hls4ml'][PRECISIONS[0]]['hls4ml_version'] if rows else '?'}).",
        "",
        "| model | qmlp: ONNX -> verified RTL (s) | hls4ml: ONNX -> C sim (s) | hls4ml precision | vectors bit-exact vs qmlp | argmax agrees | max abs diff |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        for precision, h in row["hls4ml"].items():
            lines.append(
                f"| {row['model']} | {row['qmlp']['total_s']:.1f} | {h['convert_and_compile_s']:.1f} | `{precision}` | "
                f"{h['bit_exact_vectors']}/{row['samples']} | {h['argmax_agree']}/{row['samples']} | {h['max_abs_diff']:.3g} |")
    lines += ["", "qmlp's time covers lowering, folding, RTL, IP-XACT, Vivado scripts, driver, and a bit-exact "
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

"""Profile benchmark: `qmlp profile --target sim` on the example models, next to the seed design.

For each example model and folding (the compiler's default target, and 1 M inferences/s; the
fully parallel CAN design is ~180k LUT, too large for a quick toggle-coverage build): `qmlp
compile` (with `--synth` unless told otherwise, so the power estimate uses Yosys netlist counts),
then `qmlp profile OUT --target sim --json` (1,000 batch-1 runs, throughput at batch 1,024, toggle
rates measured in Verilator). Results go to ``bench/results/profile_examples.json`` and the
"Profile (virtual board)" section of BENCHMARKS.md; other sections are left untouched.

    .venv/bin/python bench/profile_examples.py               # every example, both foldings (minutes)
    .venv/bin/python bench/profile_examples.py --no-synth --no-write
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.benchmarks_md import update_section  # noqa: E402
from qmlp.cli import main as qmlp  # noqa: E402
from qmlp.profile.report import SEED, _fmt_j, _fmt_s  # noqa: E402

TITLE = "Profile (virtual board)"
RESULTS = ROOT / "bench" / "results" / "profile_examples.json"
FOLDINGS = {"default": [], "1M-per-s": ["--target-fps", "1000000"]}


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = qmlp(argv)
    return status, out.getvalue()


def profile_case(model: Path, folding: str, *, synth: bool, work: Path) -> dict:
    out = work / f"{model.stem}-{folding}"
    start = time.perf_counter()
    status, log = _run(["compile", str(model), "--board", "zcu104", "-o", str(out), *FOLDINGS[folding],
                        *(["--synth"] if synth else [])])
    if status != 0:
        raise SystemExit(f"compile {model} ({folding}) failed:\n{log}")
    compiled = time.perf_counter() - start
    status, text = _run(["profile", str(out), "--target", "sim", "--json"])
    if status != 0:
        raise SystemExit(f"profile {model} ({folding}) failed")
    data = json.loads(text)
    lat, tp, energy = data["latency"], data["throughput"], data["energy"]
    return {
        "model": model.name, "folding": folding, "compile_s": round(compiled, 1),
        "profile_s": round(time.perf_counter() - start - compiled, 1),
        "fabric_cycles_p50": lat["fabric"]["cycles"]["p50"], "estimate_cycles": lat["fabric"]["estimate_cycles"],
        "fabric_p50_s": lat["fabric"]["seconds"]["p50_s"], "call_p50_s": lat["call"]["seconds"]["p50_s"],
        "e2e_p50_s": lat["end_to_end"]["seconds"]["p50_s"], "e2e_p99_s": lat["end_to_end"]["seconds"]["p99_s"],
        "host_p50_s": lat["end_to_end"]["host_seconds"]["p50_s"], "batch": tp["batch"],
        "fabric_ips": tp["fabric_ips"], "call_ips": tp["call_ips"], "e2e_ips": tp["end_to_end_ips"],
        "ii_cycles": tp["ii_cycles"], "resources": energy["resources"], "activity": {
            k: energy["activity"][k] for k in ("register_toggle", "logic_toggle", "source")},
        "dynamic_w": energy["dynamic_w"], "static_w": energy["static_w"],
        "e_dyn_j": energy["e_dyn_j"], "e_total_j": energy["e_total_j"],
    }


def render(rows: list[dict]) -> str:
    lines = [
        "`qmlp profile OUT --target sim` (bench/profile_examples.py), ZCU104 at 200 MHz. Fabric = "
        "LAST_LATENCY in the RTL simulation; call = **modelled** DMA (docs/profile.md); end to end = call + the "
        "generated driver's host work timed on the benchmark machine (not the board's CPU). Energy is an "
        "**estimate** of the accelerator alone (power model, toggle rates measured in Verilator), not a rail "
        "measurement; the seed's figure is board power x a Python-timed call, so the two are not like for like.",
        "",
        "| model | folding | fabric p50 | (cycles, estimator) | call p50 | end to end p50 / p99 | batch-1024 fabric / e2e "
        "| II | LUT / FF (source) | toggle reg / net | P_dyn | E_dyn / E_total per inference |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        res = r["resources"]
        src = "yosys" if res["source"].startswith("synth") else "estimate"
        lines.append(
            f"| {r['model']} | {r['folding']} | {_fmt_s(r['fabric_p50_s'])} | {r['fabric_cycles_p50']:g}, "
            f"{r['estimate_cycles']} | {_fmt_s(r['call_p50_s'])} | {_fmt_s(r['e2e_p50_s'])} / "
            f"{_fmt_s(r['e2e_p99_s'])} | {r['fabric_ips'] / 1e3:,.0f} k/s / {r['e2e_ips'] / 1e3:,.0f} k/s | "
            f"{r['ii_cycles']} | {res['lut']:,} / {res['ff']:,} ({src}) | {r['activity']['register_toggle']:.3f} / "
            f"{r['activity']['logic_toggle']:.3f} | {r['dynamic_w'] * 1e3:.3g} mW | {_fmt_j(r['e_dyn_j'])} / "
            f"{_fmt_j(r['e_total_j'])} |")
    lines += ["", f"{SEED['name'][0].upper()}{SEED['name'][1:]}: {SEED['latency_s'] * 1e3:g} ms and {SEED['energy_j'] * 1e3:g} mJ "
              f"per inference ({SEED['method']}); it applies to the CAN models only (the seed's "
              f"{'-'.join(map(str, SEED['topology']))} topology), not to digits. Call = the driver's DMA transfers "
              "(one MM2S + one S2MM per chunk, qmlp_tlast_batch), modelled. E_total includes the part's static power (an assumed "
              "0.6 W for the XCZU7EV) over one initiation interval; E_dyn is the accelerator's switching alone."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", type=Path, help="ONNX models (default: examples/*.onnx)")
    parser.add_argument("--foldings", nargs="*", default=list(FOLDINGS), choices=list(FOLDINGS))
    parser.add_argument("--no-synth", action="store_true", help="use the analytical resource estimate")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--from-results", action="store_true", help=f"re-render {RESULTS.name} without profiling")
    args = parser.parse_args()
    models = args.models or sorted((ROOT / "examples").glob("*.onnx"))
    rows = json.loads(RESULTS.read_text()) if args.from_results else []
    with tempfile.TemporaryDirectory(prefix="qmlp-bench-profile-") as tmp:
        for model in [] if args.from_results else models:
            for folding in args.foldings:
                row = profile_case(model, folding, synth=not args.no_synth, work=Path(tmp))
                print(f"{model.name} {folding}: compile {row['compile_s']} s, profile {row['profile_s']} s", flush=True)
                rows.append(row)
    text = render(rows)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(rows, indent=1) + "\n")
        update_section(TITLE, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
